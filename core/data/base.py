"""What every dataset reader produces: a :class:`Dataset` of :class:`ImageRecord` rows.

A record has an id (unique in the dataset, written to ``predictions.csv``), a class
label and a way to open the image. Readers that keep images somewhere other than a
file or an in-memory array (tar members, parquet rows, torchvision objects) subclass
:class:`Dataset` and override :meth:`Dataset.open`, :meth:`Dataset.content_hash` and
:meth:`Dataset.source`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
from PIL import Image

from core.data.images import BadImage, open_image


def printable(name: str) -> str:
    """A file name that can be written to UTF-8 CSV/JSON: undecodable bytes become \\xNN, and a
    backslash of the name itself is doubled, so a raw 0xFF byte and the four characters ``\\xff``
    never share an id (the mapping is injective)."""
    if "\\" in name:
        name = name.replace("\\", "\\\\")
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def drop_duplicate_ids(dataset: "Dataset") -> "Dataset":
    """Keep the first image of each id; later ones go to ``problems`` (an id names one image in
    predictions.csv and flips, so two images must never share one)."""
    seen: dict[str, ImageRecord] = {}
    keep: list[ImageRecord] = []
    for r in dataset.records:
        first = seen.setdefault(r.id, r)
        if first is r:
            keep.append(r)
        else:
            where = f" ({r.path})" if r.path is not None else ""
            dataset.problems.append((r.id, f"same image id as another image{where}; rename one of them"))
    if len(keep) < len(dataset.records):
        dataset.records = keep
    return dataset


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class DatasetOptions:
    """How to read a source; only the readers a field concerns look at it."""

    allow_absolute: bool = False  # manifests: allow absolute image paths
    split: Optional[str] = None  # Hugging Face / torchvision split (default: the test split)
    image_column: Optional[str] = None  # Hugging Face / parquet: the image column
    label_column: Optional[str] = None  # Hugging Face / parquet: the label column
    data_root: Optional[str] = None  # torchvision: where datasets are (or are downloaded to)
    download: Optional[bool] = None  # torchvision / hf: None = when online


@dataclass
class ImageRecord:
    id: str  # relative path (or "<batch>/<filename>" for CIFAR); unique in the dataset
    label: str
    path: Optional[Path] = None  # absolute file path; None for array-backed images
    row: int = -1  # row in the array source


@dataclass
class Dataset:
    root: Path
    kind: str  # the reader's name: imagefolder | manifest | cifar | webdataset | huggingface | torchvision …
    records: list[ImageRecord]
    classes: list[str]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (id, reason) found while listing
    empty_classes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # usable but worth a look (links leaving the folder)
    _array: Optional[np.ndarray] = field(default=None, repr=False)  # array-backed images: N x H x W x 3 uint8

    def __len__(self) -> int:
        return len(self.records)

    def open(self, i: int) -> Image.Image:
        """The i-th image as RGB, or BadImage."""
        r = self.records[i]
        if r.path is not None:
            return open_image(r.path)
        return Image.fromarray(self._array[r.row], "RGB")

    def content_hash(self, i: int) -> str:
        """SHA-256 of the image's content (the file bytes, or the array row): the cache key."""
        r = self.records[i]
        if r.path is None:
            return hashlib.sha256(self._array[r.row].tobytes()).hexdigest()
        return sha256_file(r.path)

    def source(self, i: int) -> dict:
        """A small picklable description of record ``i`` that :func:`open_source` opens anywhere."""
        r = self.records[i]
        if r.path is not None:
            return {"kind": "file", "path": os.fsdecode(r.path), "offset": 0, "size": 0, "raw": b""}
        arr = self._array[r.row]
        return {"kind": "array", "path": "", "offset": 0, "size": 0,
                "raw": np.ascontiguousarray(arr).tobytes() + bytes(str(arr.shape), "ascii").rjust(32)}

    def class_counts(self) -> dict[str, int]:
        return class_counts(self.records, self.classes)

    def describe(self) -> str:
        return f"{self.kind} dataset at {self.root}: {len(self.records)} images in {len(self.classes)} classes"


# ---------------------------------------------------------------- image sources

SourceOpener = Callable[[dict], Image.Image]
_OPENERS: dict[str, SourceOpener] = {}


def register_source(kind: str, opener: SourceOpener) -> None:
    """Let :func:`open_source` open descriptions of ``kind`` (one per reader that needs it)."""
    _OPENERS[kind] = opener


def _open_array(src: dict) -> Image.Image:
    raw = bytes(src["raw"])
    shape = tuple(int(x) for x in raw[-32:].decode("ascii").strip(" ()").split(",") if x.strip())
    return Image.fromarray(np.frombuffer(raw[:-32], dtype=np.uint8).reshape(shape), "RGB")


register_source("file", lambda src: open_image(src["path"]))
register_source("array", _open_array)


def open_source(src: dict) -> Image.Image:
    """The image a :meth:`Dataset.source` description points at, as RGB, or BadImage."""
    opener = _OPENERS.get(src["kind"])
    if opener is None:
        raise BadImage(f"unknown image source '{src['kind']}'")
    return opener(src)


DEFAULT_SPLITS = ("test", "validation", "valid", "val")


def choose_name(available: Sequence[str], wanted: Optional[str], preferred: Iterable[str], *, noun: str,
                listed_as: str, where, field: str, missing: Callable[[str], str],
                fallback: Callable[[list[str]], Optional[str]] = lambda available: None) -> str:
    """A split or a column: ``wanted`` if available, else the first of ``preferred`` (any case),
    else ``fallback(available)``; an InputError naming ``where`` and what was found otherwise."""
    from core.util.errors import InputError

    available = list(available)
    listed = ", ".join(available) or "none"
    if wanted:
        if wanted not in available:
            raise InputError(f"no {noun} '{wanted}' ({listed_as}: {listed})", file=where, field=field)
        return wanted
    lower = {a.lower(): a for a in available}
    for p in preferred:
        if p.lower() in lower:
            return lower[p.lower()]
    got = fallback(available)
    if got is None:
        raise InputError(missing(listed), file=where, field=field)
    return got


def choose_split(available: list[str], wanted: str | None, where, field: str = "split") -> str:
    """``wanted`` if available; else test, then validation, then the only split (InputError otherwise)."""
    return choose_name(available, wanted, DEFAULT_SPLITS, noun="split", listed_as="splits", where=where, field=field,
                       missing=lambda listed: f"no test or validation split; choose one with --split ({listed})",
                       fallback=lambda available: available[0] if len(available) == 1 else None)


def class_list(labels: Iterable[str], names: Optional[Sequence[str]] = None) -> tuple[list[str], list[str]]:
    """(classes, classes without images) of a reader's labels: ``names`` in their order (then any
    other label seen), else the labels seen, sorted as numbers when every one is an integer."""
    counts = Counter(labels)
    if names is not None:
        classes = list(names) + sorted(set(counts) - set(names))
    elif counts and all(re.fullmatch(r"-?\d+", c) for c in counts):
        classes = sorted(counts, key=int)
    else:
        classes = sorted(counts)
    return classes, [c for c in classes if not counts[c]]


def class_counts(records, classes) -> dict[str, int]:
    """Images per class, every listed class present (0 when it has none), in the listed order."""
    counts = dict.fromkeys(classes, 0)
    for r in records:
        counts[r.label] = counts.get(r.label, 0) + 1
    return counts
