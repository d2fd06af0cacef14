"""Class lists: presets (ImageNet, CIFAR), text/CSV/JSON files, dataset folders; word lists."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Optional, Union

from core.labels.presets import CIFAR10_CLASSES, CIFAR100_CLASSES  # noqa: F401  (re-exported)
from core.util.errors import InputError
from core.labels.labelset import LabelSet, labels_from_classes
from core.util.tables import parse_user_json, read_user_text
from core.synonyms.neighbours import _prepare_vocabulary


CLASS_LIST_PRESETS = ("imagenet", "cifar10", "cifar100")
# open_clip's cleaned ImageNet names repeat two names; ImageNet's own first lemma tells them apart.
_IMAGENET_RENAMES = {744: "projectile", 836: "sunglass"}


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names open_clip uses (unique; two repeats disambiguated)."""
    import open_clip

    names = list(open_clip.IMAGENET_CLASSNAMES)
    for i, n in _IMAGENET_RENAMES.items():
        if i < len(names):
            names[i] = n
    return names


def _unique_classes(items: Iterable[tuple[str, Optional[int]]], path) -> list[str]:
    out: dict[str, Optional[int]] = {}
    for name, line in items:
        name = str(name).strip()
        if not name:
            continue
        if name in out:
            first = out[name]
            raise InputError(f"class '{name}' is listed twice" + (f" (first on line {first})" if first else ""),
                             file=path, line=line, field="class")
        out[name] = line
    if not out:
        raise InputError("no class names found (the list is empty)", file=path)
    return list(out)


_HEADER_WORDS = {"class", "classname", "class_name", "name", "label", "category"}


def load_class_list(path_or_preset: Union[str, Path]) -> LabelSet:
    """Class names (one name each, source ``class``) from a preset or a file.

    Presets: ``imagenet`` (open_clip's ImageNet-1k names), ``cifar10``, ``cifar100``,
    ``clip_benchmark:NAME`` (:mod:`core.labels.presets`).
    Files: text (one class per line, ``#`` comments), CSV (a ``class`` column or the
    first column), JSON (a list of names, ``{"0": "tench", ...}``, ImageNet's
    ``{"0": ["n01440764", "tench"]}`` or a labels object), or a dataset folder
    (ImageFolder sub-folders, or a CIFAR folder's label names).
    """
    spec = str(path_or_preset)
    from core.labels.presets import is_preset, preset_labels

    if is_preset(spec) and not Path(spec).exists():
        return preset_labels(spec)
    key = spec.strip().lower().replace("-", "")
    if key in CLASS_LIST_PRESETS and not Path(spec).exists():
        classes = {"imagenet": imagenet_classes, "cifar10": lambda: list(CIFAR10_CLASSES),
                   "cifar100": lambda: list(CIFAR100_CLASSES)}[key]()
        ls = labels_from_classes(classes)
        ls.path = key
        return ls
    path = Path(spec).expanduser()
    if not path.exists():
        raise InputError(f"class list not found (and not a preset: {', '.join(CLASS_LIST_PRESETS)})", file=spec,
                         field="classes")
    if path.is_dir():
        from core.data import load_dataset

        ds = load_dataset(path)
        classes = _unique_classes(((c, None) for c in ds.classes), path)
    elif path.suffix.lower() == ".json":
        classes = _classes_from_json(path)
    elif path.suffix.lower() in (".csv", ".tsv"):
        classes = _classes_from_csv(path)
    else:
        text = read_user_text(path)
        classes = _unique_classes(
            ((ln.strip(), i) for i, ln in enumerate(text.splitlines(), 1) if not ln.strip().startswith("#")), path)
    ls = labels_from_classes(classes)
    ls.path = str(path)
    return ls


def _classes_from_csv(path: Path) -> list[str]:
    text = read_user_text(path)
    delim = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    col, items, first = 0, [], True
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if first:
            first = False
            header = [c.strip().lower() for c in row]
            hits = [i for i, h in enumerate(header) if h in _HEADER_WORDS]
            if hits:
                col = header.index("class") if "class" in header else hits[0]
                continue
        if col >= len(row) or not row[col].strip():
            raise InputError("missing class name", file=path, line=line, field="class")
        items.append((row[col], line))
    return _unique_classes(items, path)


def _classes_from_json(path: Path) -> list[str]:
    from core.labels.labelset import _json_line

    text = read_user_text(path)
    data = parse_user_json(text, path)
    if isinstance(data, list):
        if not all(isinstance(x, str) for x in data):
            raise InputError("expected a list of class names (strings)", file=path, line=1)
        return _unique_classes(((x, None) for x in data), path)
    if not isinstance(data, dict):
        raise InputError('expected a list of names or an object {"class": ...}', file=path, line=1)
    keys = list(data)
    indexed = keys and all(k.strip().isdigit() for k in keys)
    if indexed:
        items = []
        for k in sorted(keys, key=lambda k: int(k)):
            v = data[k]
            if isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v):
                v = v[1]  # imagenet_class_index.json: [wnid, name]
            if not isinstance(v, str):
                raise InputError("expected a class name (string)", file=path, line=_json_line(text, k), field=k)
            items.append((v, _json_line(text, k)))
        return _unique_classes(items, path)
    return _unique_classes(((k, _json_line(text, k)) for k in keys), path)


def load_vocabulary(path: Union[str, Path]) -> list[str]:
    """A word list for neighbour ranking: one word or phrase per line, ``#`` comments."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError("vocabulary file not found", file=path, field="vocabulary")
    names, _ = _prepare_vocabulary(
        ln.strip() for ln in read_user_text(path).splitlines() if ln.strip() and not ln.strip().startswith("#"))
    if not names:
        raise InputError("the vocabulary file has no words (one word per line)", file=path, field="vocabulary")
    return names
