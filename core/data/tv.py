"""torchvision datasets by name: ``tv:CIFAR10``, ``tv:Food101``, ``tv:OxfordIIITPet``, …

The dataset is opened with torchvision's own class under ``--data-root`` (default: a
``torchvision`` folder in the user data folder, ``$SEMSCALE_DATA_DIR`` if set): a root that
already holds it is used as is (offline); otherwise it is downloaded there
(``download=True``) when the machine is online, and the error says how to bring a copy
when it is not. Class names come from the dataset object (``classes``; numbers where
torchvision has none, e.g. GTSRB, SVHN). The split is the one zero-shot benchmark papers
report (CLIP, CLIP_benchmark): ``test`` (``val`` for ImageNet and Imagenette), or the
whole dataset where torchvision defines no split (EuroSAT, SUN397); ``--split`` picks
another.

Records: datasets that keep file paths (``_image_files``, ``_images``, ``samples``,
``_samples``) become file records — read in DataLoader workers and cached on their bytes
like an ImageFolder; datasets that keep arrays (CIFAR, STL10, SVHN, MNIST) become array
records; anything else is read through the dataset object itself, row by row.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image

from core.util.errors import InputError
from core.data.images import BadImage
from core.data.base import Dataset, DatasetOptions, ImageRecord
from core.data.registry import Reader, register

PREFIX = "tv:"
DATA_ENV = "SEMSCALE_DATA_DIR"


@dataclass(frozen=True)
class TvSpec:
    """How benchmark papers open one torchvision dataset."""

    split: Optional[str]  # default split; None: torchvision has no split argument (the whole dataset)
    splits: tuple[str, ...] = ()
    split_arg: str = "split"  # "split", or "train" for the train=True/False datasets
    extra: tuple[tuple[str, Any], ...] = ()


SPECS: dict[str, TvSpec] = {
    "CIFAR10": TvSpec("test", ("train", "test"), "train"),
    "CIFAR100": TvSpec("test", ("train", "test"), "train"),
    "MNIST": TvSpec("test", ("train", "test"), "train"),
    "FashionMNIST": TvSpec("test", ("train", "test"), "train"),
    "KMNIST": TvSpec("test", ("train", "test"), "train"),
    "STL10": TvSpec("test", ("train", "test")),
    "SVHN": TvSpec("test", ("train", "test", "extra")),
    "Food101": TvSpec("test", ("train", "test")),
    "OxfordIIITPet": TvSpec("test", ("trainval", "test")),
    "Flowers102": TvSpec("test", ("train", "val", "test")),
    "DTD": TvSpec("test", ("train", "val", "test")),
    "GTSRB": TvSpec("test", ("train", "test")),
    "FGVCAircraft": TvSpec("test", ("train", "val", "trainval", "test"), extra=(("annotation_level", "variant"),)),
    "Country211": TvSpec("test", ("train", "valid", "test")),
    "StanfordCars": TvSpec("test", ("train", "test")),
    "RenderedSST2": TvSpec("test", ("train", "val", "test")),
    "PCAM": TvSpec("test", ("train", "val", "test")),
    "FER2013": TvSpec("test", ("train", "test")),
    "Imagenette": TvSpec("val", ("train", "val")),
    "ImageNet": TvSpec("val", ("train", "val")),
    "EuroSAT": TvSpec(None),
    "SUN397": TvSpec(None),
}


def default_data_root() -> Path:
    """Where ``tv:`` datasets live unless ``--data-root`` says otherwise."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser() / "torchvision"
    from platformdirs import user_data_dir

    return Path(user_data_dir("semscale", appauthor=False)) / "torchvision"


def _class_name(c) -> str:
    if isinstance(c, (tuple, list)):  # ImageNet, Imagenette: (name, synonym, …)
        c = c[0]
    return str(c)


def _rgb_array(data) -> np.ndarray:
    arr = data.numpy() if hasattr(data, "numpy") else np.asarray(data)
    arr = np.asarray(arr)
    if arr.ndim == 3:  # N x H x W grey
        arr = np.repeat(arr[..., None], 3, axis=-1)
    elif arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):  # N x C x H x W
        arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr.astype(np.uint8, copy=False))


@dataclass
class TorchvisionDataset(Dataset):
    """Records read through the torchvision dataset object (datasets keeping neither paths nor arrays)."""

    tv: Any = None  # the torchvision object, kept only when images must be read through it
    source_name: str = ""  # tv:NAME (split)

    def describe(self) -> str:
        return (f"torchvision dataset {self.source_name} in {self.root}: {len(self.records)} images in "
                f"{len(self.classes)} classes")

    def open(self, i: int) -> Image.Image:
        r = self.records[i]
        if r.path is not None or self.tv is None:
            return super().open(i)
        try:
            img = self.tv[r.row][0]
        except Exception as e:
            raise BadImage(f"cannot read row {r.row} ({type(e).__name__}: {e})") from None
        if not isinstance(img, Image.Image):
            raise BadImage(f"row {r.row} is not a PIL image")
        return img.convert("RGB")

    def content_hash(self, i: int) -> str:
        r = self.records[i]
        if r.path is not None or self.tv is None:
            return super().content_hash(i)
        img = self.open(i)
        return hashlib.sha256(f"{img.size}{img.mode}".encode() + img.tobytes()).hexdigest()

    def source(self, i: int) -> dict:
        r = self.records[i]
        if r.path is not None or self.tv is None:
            return super().source(i)
        arr = np.asarray(self.open(i))
        return {"kind": "array", "path": "", "offset": 0, "size": 0,
                "raw": arr.tobytes() + bytes(str(arr.shape), "ascii").rjust(32)}


def _records(name: str, split: str, obj, root: Path):
    """(records, classes, array or None) from a torchvision dataset object."""
    classes = [_class_name(c) for c in getattr(obj, "classes", None) or []]
    pairs = None
    for files_attr, labels_attr in (("_image_files", "_labels"), ("_images", "_labels")):
        if hasattr(obj, files_attr) and hasattr(obj, labels_attr):
            pairs = list(zip(getattr(obj, files_attr), getattr(obj, labels_attr)))
            break
    if pairs is None:
        for attr in ("samples", "_samples"):
            if isinstance(getattr(obj, attr, None), list):
                pairs = [(p, t) for p, t in getattr(obj, attr)]
                break
    array = None
    if pairs is None and getattr(obj, "data", None) is not None and not isinstance(obj.data, (str, list)):
        targets = getattr(obj, "targets", None)
        if targets is None:
            targets = getattr(obj, "labels", None)
        if targets is not None:
            array = _rgb_array(obj.data)
            labels = [int(t) for t in (targets.tolist() if hasattr(targets, "tolist") else targets)]
            pairs = [(None, t) for t in labels]
    generic = pairs is None
    if generic:  # ask the object itself (targets only; images later)
        pairs = [(None, int(obj[i][1])) for i in range(len(obj))]
    n_classes = max([int(t) for _, t in pairs] + [len(classes) - 1]) + 1
    if len(classes) < n_classes:
        classes = classes + [str(k) for k in range(len(classes), n_classes)]
    width = len(str(max(len(pairs) - 1, 0)))
    records = []
    for i, (p, t) in enumerate(pairs):
        t = int(t)
        if not 0 <= t < len(classes):
            raise InputError(f"target {t} of image {i} is outside the {len(classes)} classes", file=f"{PREFIX}{name}")
        if p is not None:
            p = Path(p)
            try:
                rid = p.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                rid = p.as_posix()
            records.append(ImageRecord(id=rid, label=classes[t], path=p))
        else:
            records.append(ImageRecord(id=f"{name}/{split}/{i:0{width}d}", label=classes[t], row=i))
    return records, classes, array, generic


def parse_name(source: str) -> str:
    name = source[len(PREFIX):].strip()
    import torchvision.datasets as tvd

    known = {k.lower(): k for k in SPECS}
    if name.lower() in known:
        return known[name.lower()]
    if name and hasattr(tvd, name) and isinstance(getattr(tvd, name), type):
        return name
    raise InputError(f"unknown torchvision dataset '{name}' (known: {', '.join(sorted(SPECS))})",
                     file=source, field="dataset")


def _open(cls, root: Path, spec: TvSpec, split: Optional[str], download: bool):
    kw: dict[str, Any] = dict(spec.extra)
    if split is not None:
        if spec.split_arg == "train":
            kw["train"] = split == "train"
        else:
            kw["split"] = split
    return cls(str(root), download=download, **kw)


def load_torchvision(source: str, options: DatasetOptions) -> Dataset:
    import torchvision.datasets as tvd

    name = parse_name(source)
    spec = SPECS.get(name, TvSpec("test"))
    split = options.split or spec.split
    if options.split and spec.splits and options.split not in spec.splits:
        raise InputError(f"no split '{options.split}' (splits: {', '.join(spec.splits)})", file=source, field="split")
    if options.split and spec.split is None:
        raise InputError(f"torchvision's {name} has no splits; leave --split out", file=source, field="split")
    root = Path(options.data_root).expanduser() if options.data_root else default_data_root()
    cls = getattr(tvd, name)
    try:
        obj = _open(cls, root, spec, split, download=False)
    except (RuntimeError, FileNotFoundError, OSError) as first:
        if options.download is False:
            raise InputError(_missing(name, root, split, first), file=source, field="data-root") from None
        try:
            root.mkdir(parents=True, exist_ok=True)
            obj = _open(cls, root, spec, split, download=True)
        except Exception as e:
            raise InputError(_missing(name, root, split, e), file=source, field="data-root") from None
    except TypeError as e:
        raise InputError(f"cannot open torchvision's {name} ({e})", file=source, field="dataset") from None
    records, classes, array, generic = _records(name, split or "all", obj, root)
    label = f"{PREFIX}{name}" + (f" (split '{split}')" if split else "")
    kw = dict(root=root, kind="torchvision", records=records, classes=classes, _array=array)
    ds = TorchvisionDataset(**kw, tv=obj if generic else None, source_name=label)
    counts = ds.class_counts()
    ds.empty_classes = [c for c in classes if counts.get(c, 0) == 0]
    return ds


def _missing(name: str, root: Path, split: Optional[str], err: BaseException) -> str:
    why = str(err).splitlines()[0] if str(err) else type(err).__name__
    args = f"'{root}'" + (f", split='{split}'" if split else "")
    return (f"torchvision's {name} is not in {root} and could not be downloaded ({why[:120]}); on a connected "
            f"machine run python -c \"import torchvision; torchvision.datasets.{name}({args}, download=True)\" "
            f"(or semscale validate --dataset tv:{name} --data-root DIR), copy the folder here and pass --data-root")


register(Reader("torchvision", lambda s: isinstance(s, str) and s.startswith(PREFIX), load_torchvision, priority=0,
                describe="tv:NAME: a torchvision dataset by name (tv:CIFAR10, tv:Food101, …) under --data-root"))
