"""LAION CLIP_benchmark's class names and zero-shot templates as presets:
``--labels clip_benchmark:cifar10``, ``--templates clip_benchmark:cifar10``,
``semscale suggest --classes clip_benchmark:food101``.

Read from the installed ``clip_benchmark`` package (``pip install 'semscale[benchmarks]'``,
or ``pip install --no-deps clip_benchmark``: only its JSON files are read, nothing of it is
imported): ``en_classnames.json`` and ``en_zeroshot_classification_templates.json``.

CLIP_benchmark keeps names in that file for some datasets only; for the others it uses the
class names of the torchvision dataset (``food101`` and ``sun397`` with ``_`` and ``/`` as
spaces). Those come from the dataset being swept (``--dataset tv:Food101``), or from the
torchvision copy under ``--data-root``; CIFAR-10/100 and STL-10 names are fixed and need no
data. Templates fall back to ``imagenet1k``'s, as CLIP_benchmark's do. Its ``{c}``
placeholder becomes our ``{}``.

With a dataset, the preset's classes are matched to the dataset's: by name when every
dataset class is one of the preset's names (ignoring case, ``_`` and spaces), else by
position when the counts agree (the order CLIP_benchmark and torchvision share).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

from core.util.names import compact_key
from core.util.errors import InputError
from core.labels.base import LabelSet

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = tuple(
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
    "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
    "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
    "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
    "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger "
    "tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm".split()
)

PREFIX = "clip_benchmark:"
CLASSNAMES_FILE = "en_classnames.json"
TEMPLATES_FILE = "en_zeroshot_classification_templates.json"
DEFAULT_TEMPLATES = "imagenet1k"
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
# datasets whose CLIP_benchmark names are torchvision's: (torchvision class, what CLIP_benchmark replaces)
FROM_TORCHVISION = {
    "food101": ("Food101", ("_",)),
    "sun397": ("SUN397", ("_", "/")),
    "dtd": ("DTD", ()),
    "fgvc_aircraft": ("FGVCAircraft", ()),
    "cars": ("StanfordCars", ()),
    "renderedsst2": ("RenderedSST2", ()),
    "cifar10": ("CIFAR10", ()),
    "cifar100": ("CIFAR100", ()),
    "stl10": ("STL10", ()),
}


def is_preset(spec) -> bool:
    return isinstance(spec, str) and spec.strip().lower().startswith(PREFIX)


def preset_key(spec: str) -> str:
    key = spec.strip()[len(PREFIX):].strip().lower()
    if not key:
        raise InputError(f"expected {PREFIX}NAME (e.g. {PREFIX}cifar10)", file=spec)
    return key


def package_folder() -> Path:
    """The ``clip_benchmark/datasets`` folder of the installed package (not imported)."""
    frozen = Path(getattr(sys, "_MEIPASS", "")) / "clip_benchmark" / "datasets"  # the packaged app's copy
    if getattr(sys, "frozen", False) and (frozen / CLASSNAMES_FILE).is_file():
        return frozen
    spec = importlib.util.find_spec("clip_benchmark")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("CLIP_benchmark presets need the clip_benchmark package: pip install 'semscale[benchmarks]' "
                         "(or pip install --no-deps clip_benchmark)", field="clip_benchmark")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets"
    if not (folder / CLASSNAMES_FILE).is_file():
        raise InputError(f"the installed clip_benchmark has no {CLASSNAMES_FILE}", file=folder)
    return folder


@lru_cache(maxsize=4)
def _json(name: str) -> dict:
    path = package_folder() / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read ({e})", file=path) from None


def preset_names() -> list[str]:
    """Datasets with CLIP_benchmark class names (in its file, or torchvision's)."""
    return sorted(set(_json(CLASSNAMES_FILE)) | set(FROM_TORCHVISION))


def template_names() -> list[str]:
    """Datasets with CLIP_benchmark template lists ([] when clip_benchmark is not installed)."""
    try:
        table = _json(TEMPLATES_FILE)
    except InputError:
        return []
    return sorted(k for k, v in table.items() if isinstance(v, list))


def benchmark_templates(spec: str) -> list[str]:
    key = preset_key(spec) if is_preset(spec) else spec
    table = _json(TEMPLATES_FILE)
    raw = table.get(key) or table.get(DEFAULT_TEMPLATES)
    if not raw:
        raise InputError(f"no templates for '{key}' in CLIP_benchmark", file=spec, field="templates")
    if isinstance(raw, dict):  # class-specific prompts: not a template list
        raise InputError(f"CLIP_benchmark's templates for '{key}' are per class, not templates", file=spec,
                         field="templates")
    return [t.replace("{c}", "{}") for t in raw]


def _torchvision_names(key: str, data_root: Optional[str]) -> list[str]:
    tv_name, replace = FROM_TORCHVISION[key]
    if key in ("cifar10", "cifar100"):
        names = list(CIFAR10_CLASSES if key == "cifar10" else CIFAR100_CLASSES)
    elif key == "stl10":
        names = list(STL10_CLASSES)
    else:
        from core.data import load_dataset

        try:
            names = load_dataset(f"tv:{tv_name}", data_root=data_root, download=False).classes
        except InputError as e:
            raise InputError(f"CLIP_benchmark takes the class names of '{key}' from torchvision's {tv_name}, which "
                             f"is not available here ({e.message.split(';')[0]}); pass --data-root where it is, or "
                             f"sweep --dataset tv:{tv_name}", field="labels") from None
    for ch in replace:
        names = [n.replace(ch, " ") for n in names]
    return names


def benchmark_classnames(spec: str, dataset_classes: Optional[Sequence[str]] = None,
                         data_root: Optional[str] = None) -> list[str]:
    """CLIP_benchmark's class names for a dataset, in its class order."""
    key = preset_key(spec) if is_preset(spec) else spec
    table = _json(CLASSNAMES_FILE)
    if key in table:
        return [str(n) for n in table[key]]
    if key not in FROM_TORCHVISION:
        raise InputError(f"CLIP_benchmark has no class names for '{key}' (known: {', '.join(preset_names())})",
                         file=spec, field="labels")
    if dataset_classes and key not in ("cifar10", "cifar100", "stl10"):
        names = list(dataset_classes)
        for ch in FROM_TORCHVISION[key][1]:
            names = [n.replace(ch, " ") for n in names]
        return names
    return _torchvision_names(key, data_root)


def preset_labels(spec: str, dataset_classes: Optional[Sequence[str]] = None,
                  data_root: Optional[str] = None) -> LabelSet:
    """One CLIP_benchmark name per class, keyed by the dataset's classes where they can be matched."""
    names = benchmark_classnames(spec, dataset_classes, data_root)
    warnings: list[str] = []
    keys = list(names)
    if dataset_classes:
        by_norm = {compact_key(n): n for n in names}
        dc = list(dataset_classes)
        if all(compact_key(c) in by_norm for c in dc):
            pos = {n: i for i, n in enumerate(names)}
            order = sorted(range(len(dc)), key=lambda j: pos[by_norm[compact_key(dc[j])]])
            keys, names = [dc[j] for j in order], [by_norm[compact_key(dc[j])] for j in order]
        elif len(dc) == len(names):
            keys = dc
            warnings.append(f"{spec}: classes matched to CLIP_benchmark's names by position "
                            f"({dc[0]} = {names[0]}, …)")
        else:
            warnings.append(f"{spec}: {len(names)} CLIP_benchmark classes but {len(dc)} in the dataset; the names "
                            "could not be matched")
    seen: dict[str, int] = {}
    for i, k in enumerate(keys):  # a name listed for two classes (ImageNet has a few): keys stay unique
        if k in seen:
            warnings.append(f"name '{k}' appears under classes {seen[k]} and {i}")
            keys[i] = f"{k} ({i})"
        seen.setdefault(k, i)
    return LabelSet(names={k: [n] for k, n in zip(keys, names)}, sources={k: ["clip_benchmark"] for k in keys},
                    warnings=warnings, path=spec)
