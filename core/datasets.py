"""Labelled image datasets in the formats researchers actually have.

* ImageFolder trees: ``root/<class>/**/<image>``.
* Manifests: CSV or Parquet with ``path,label`` columns, paths relative to the manifest.
* CIFAR-style python pickles (``batches.meta`` + ``test_batch`` / ``meta`` + ``test``),
  read with a restricted unpickler that only admits the arrays CIFAR files contain.

All of them become one :class:`Dataset`: records with an id (path relative to the root),
a class label and a way to open the image, plus the problems found while listing.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from .errors import InputError
from .images import BadImage, is_image_name, open_image

MANIFEST_SUFFIXES = (".csv", ".parquet", ".pq", ".tsv")


def printable(name: str) -> str:
    """A file name that can be written to UTF-8 CSV/JSON (undecodable bytes become \\xNN)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class ImageRecord:
    id: str  # relative path (or "<batch>/<filename>" for CIFAR); unique in the dataset
    label: str
    path: Optional[Path] = None  # absolute file path; None for array-backed images
    row: int = -1  # row in the array source


@dataclass
class Dataset:
    root: Path
    kind: str  # imagefolder | manifest | cifar
    records: list[ImageRecord]
    classes: list[str]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (id, reason) found while listing
    empty_classes: list[str] = field(default_factory=list)
    _array: Optional[np.ndarray] = field(default=None, repr=False)  # CIFAR: N x 32 x 32 x 3

    def __len__(self) -> int:
        return len(self.records)

    def open(self, i: int) -> Image.Image:
        """The i-th image as RGB, or BadImage."""
        r = self.records[i]
        if r.path is not None:
            return open_image(r.path)
        return Image.fromarray(self._array[r.row], "RGB")

    def content_hash(self, i: int) -> str:
        """SHA-256 of the image's content (the file bytes, or the array row)."""
        r = self.records[i]
        if r.path is None:
            return hashlib.sha256(self._array[r.row].tobytes()).hexdigest()
        h = hashlib.sha256()
        with open(r.path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def class_counts(self) -> dict[str, int]:
        counts = {c: 0 for c in self.classes}
        for r in self.records:
            counts[r.label] = counts.get(r.label, 0) + 1
        return counts

    def describe(self) -> str:
        return f"{self.kind} dataset at {self.root}: {len(self.records)} images in {len(self.classes)} classes"


# ---------------------------------------------------------------- ImageFolder


def load_image_folder(root: Path) -> Dataset:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise InputError("no class sub-folders found (expected <root>/<class>/<image files>)", file=root)
    records: list[ImageRecord] = []
    problems: list[tuple[str, str]] = []
    empty: list[str] = []
    for cls in classes:
        n_before = len(records)
        for dirpath, dirnames, filenames in os.walk(root / cls, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fn in sorted(filenames):
                if fn.startswith(".") or not is_image_name(fn):
                    continue
                p = Path(dirpath) / fn
                rel = printable(p.relative_to(root).as_posix())
                if p.is_symlink() and not p.exists():
                    problems.append((rel, "broken symbolic link"))
                    continue
                records.append(ImageRecord(id=rel, label=cls, path=p))
        if len(records) == n_before:
            empty.append(cls)
    return Dataset(root=root, kind="imagefolder", records=records, classes=classes, problems=problems, empty_classes=empty)


# ---------------------------------------------------------------- manifests


def load_manifest(path: Path, allow_absolute: bool = False) -> Dataset:
    import pandas as pd

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(path)
            header_offset = None
        else:
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            header_offset = 2  # row 0 is on line 2 (after the header)
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 ({e.reason} at byte {e.start})", file=path) from None
    except Exception as e:  # pandas raises many types for malformed files
        raise InputError(f"cannot read manifest ({str(e).splitlines()[0]})", file=path) from None
    cols = {c.strip().lower(): c for c in df.columns}
    for need in ("path", "label"):
        if need not in cols:
            raise InputError(
                f"missing column '{need}' (found: {', '.join(map(str, df.columns)) or 'none'})",
                file=path,
                line=1,
                field=need,
            )
    root = path.parent.resolve()
    records: list[ImageRecord] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, (p, label) in enumerate(zip(df[cols["path"]], df[cols["label"]])):
        line = (i + header_offset) if header_offset else None
        where = f"row {i + 1}" if line is None else None
        p = "" if p is None else str(p).strip()
        label = "" if label is None else str(label).strip()
        if not p:
            raise InputError("empty path" + (f" ({where})" if where else ""), file=path, line=line, field="path")
        if not label:
            raise InputError("empty label" + (f" ({where})" if where else ""), file=path, line=line, field="label")
        raw = Path(p)
        if raw.is_absolute():
            if not allow_absolute:
                raise InputError(
                    f"absolute path '{p}' not allowed (use paths relative to the manifest, or allow absolute paths)",
                    file=path, line=line, field="path",
                )
            full = raw
            rel = raw.as_posix()
        else:
            full = (root / raw)
            resolved = Path(os.path.normpath(full))
            if not allow_absolute and root not in resolved.parents and resolved != root:
                raise InputError(
                    f"path '{p}' points outside the manifest's folder", file=path, line=line, field="path"
                )
            full = resolved
            rel = Path(os.path.normpath(raw)).as_posix()
        if rel in seen:
            problems.append((rel, f"listed twice in the manifest (line {line})"))
            continue
        seen.add(rel)
        if full.is_symlink() and not full.exists():
            problems.append((rel, "broken symbolic link"))
            continue
        if not full.exists():
            problems.append((rel, "file not found"))
            continue
        records.append(ImageRecord(id=rel, label=label, path=full))
    classes = list(dict.fromkeys(str(x).strip() for x in df[cols["label"]]))
    return Dataset(root=root, kind="manifest", records=records, classes=classes, problems=problems)


# ---------------------------------------------------------------- CIFAR pickles


class _CifarUnpickler(pickle.Unpickler):
    """Admits only what CIFAR python pickles contain: dicts, lists, bytes, numpy arrays."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"'{module}.{name}' is not allowed in a CIFAR file")


def _load_cifar_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _CifarUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise InputError(f"not a CIFAR-format pickle: {e}", file=path) from None
    except Exception as e:
        raise InputError(f"not a CIFAR-format pickle ({type(e).__name__}: {e})", file=path) from None
    if not isinstance(obj, dict):
        raise InputError("not a CIFAR-format pickle (expected a dict)", file=path)
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _cifar_files(path: Path) -> tuple[Path, Path]:
    """(meta file, batch file) for a CIFAR folder or a batch file inside one."""
    folder = path if path.is_dir() else path.parent
    meta = next((folder / m for m in ("batches.meta", "meta") if (folder / m).is_file()), None)
    if meta is None:
        raise InputError("CIFAR folder has no 'batches.meta' or 'meta' file", file=folder)
    if path.is_file():
        return meta, path
    batch = next((folder / b for b in ("test_batch", "test") if (folder / b).is_file()), None)
    if batch is None:
        raise InputError("CIFAR folder has no 'test_batch' or 'test' file", file=folder)
    return meta, batch


def is_cifar_folder(path: Path) -> bool:
    folder = path if path.is_dir() else path.parent
    return any((folder / m).is_file() for m in ("batches.meta", "meta")) and any(
        (folder / b).is_file() for b in ("test_batch", "test", "data_batch_1", "train")
    )


def load_cifar(path: Path) -> Dataset:
    meta_path, batch_path = _cifar_files(path)
    meta = _load_cifar_pickle(meta_path)
    names = meta.get("label_names") or meta.get("fine_label_names")
    if names is None:
        raise InputError("no 'label_names' or 'fine_label_names' entry", file=meta_path, field="label_names")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    batch = _load_cifar_pickle(batch_path)
    data = batch.get("data")
    labels = batch.get("labels", batch.get("fine_labels"))
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        raise InputError("'data' must be an N x 3072 uint8 array", file=batch_path, field="data")
    if labels is None or len(labels) != len(data):
        raise InputError("'labels' missing or of the wrong length", file=batch_path, field="labels")
    arr = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.uint8, copy=False)
    arr = np.ascontiguousarray(arr)
    fnames = batch.get("filenames")
    records = []
    for i, lab in enumerate(labels):
        lab = int(lab)
        if not 0 <= lab < len(names):
            raise InputError(f"label {lab} of image {i} is out of range", file=batch_path, field="labels")
        fn = fnames[i].decode() if fnames is not None and isinstance(fnames[i], bytes) else f"{i:05d}.png"
        records.append(ImageRecord(id=f"{batch_path.name}/{i:05d}_{fn}", label=names[lab], row=i))
    return Dataset(root=batch_path.parent, kind="cifar", records=records, classes=names, _array=arr)


# ---------------------------------------------------------------- entry point


def load_dataset(path: str | Path, allow_absolute: bool = False) -> Dataset:
    """Open a dataset, detecting its format from what is at ``path``."""
    from .shards import is_shard_source, load_shards

    # WebDataset .tar shards: a .tar file, a folder of them, data-{000..009}.tar, a::b, or a list
    if is_shard_source(path):
        return load_shards(path)
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError("dataset not found", file=path)
    if path.is_file():
        if path.suffix.lower() in MANIFEST_SUFFIXES:
            return load_manifest(path, allow_absolute=allow_absolute)
        if is_cifar_folder(path):
            return load_cifar(path)
        raise InputError("not a dataset: expected a folder, a CSV/Parquet manifest or a CIFAR batch file", file=path)
    if is_cifar_folder(path):
        return load_cifar(path)
    for name in ("manifest.csv", "manifest.parquet"):
        if (path / name).is_file() and not any(d.is_dir() for d in path.iterdir()):
            return load_manifest(path / name, allow_absolute=allow_absolute)
    return load_image_folder(path.resolve())


# ---------------------------------------------------------------- validation


@dataclass
class ValidationReport:
    dataset: str
    kind: str
    n_images: int
    class_counts: dict[str, int]
    unreadable: list[tuple[str, str]]
    empty_classes: list[str]
    missing_from_labels: list[str]  # classes in the data without names in the labels file
    missing_from_data: list[str]  # classes in the labels file with no images
    label_warnings: list[str]
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (id, "same content as …") across classes

    @property
    def ok(self) -> bool:
        return not (self.unreadable or self.empty_classes or self.missing_from_labels)

    def to_text(self) -> str:
        lines = [f"Dataset: {self.dataset} ({self.kind}), {self.n_images} images, {len(self.class_counts)} classes"]
        width = max((len(c) for c in self.class_counts), default=5)
        lines.append("Images per class:")
        for c, n in self.class_counts.items():
            lines.append(f"  {c:<{width}}  {n}")

        def section(title, items):
            lines.append(f"{title}: {len(items) if items else 'none'}")
            for it in items[:50]:
                lines.append("  " + (f"{it[0]}: {it[1]}" if isinstance(it, tuple) else str(it)))
            if len(items) > 50:
                lines.append(f"  ... and {len(items) - 50} more")

        section("Unreadable files", self.unreadable)
        section("Empty classes", self.empty_classes)
        section("Classes in the data but not in the labels file", self.missing_from_labels)
        section("Classes in the labels file but not in the data", self.missing_from_data)
        section("Labels warnings", self.label_warnings)
        section("Identical images in different classes", self.duplicates)
        return "\n".join(lines)


def validate(dataset: Dataset, labels=None, check_images: bool = True) -> ValidationReport:
    """Check every image opens and that data classes and label classes match."""
    unreadable = list(dataset.problems)
    duplicates: list[tuple[str, str]] = []
    if check_images:
        first: dict[str, ImageRecord] = {}
        for i, r in enumerate(dataset.records):
            try:
                if r.path is not None:
                    dataset.open(i)
                h = dataset.content_hash(i)
            except BadImage as e:
                unreadable.append((r.id, str(e)))
                continue
            except OSError as e:
                unreadable.append((r.id, f"cannot read file ({e.strerror or e})"))
                continue
            other = first.setdefault(h, r)
            if other is not r and other.label != r.label:
                duplicates.append((r.id, f"same content as {other.id} (class '{other.label}')"))
    counts = dataset.class_counts()
    label_classes = set(labels.classes) if labels is not None else set(dataset.classes)
    return ValidationReport(
        dataset=str(dataset.root),
        kind=dataset.kind,
        n_images=len(dataset.records),
        class_counts=counts,
        unreadable=unreadable,
        empty_classes=[c for c in dataset.classes if counts.get(c, 0) == 0],
        missing_from_labels=[c for c in dataset.classes if c not in label_classes],
        missing_from_data=[c for c in (labels.classes if labels is not None else []) if counts.get(c, 0) == 0 and c not in dataset.classes],
        label_warnings=list(labels.warnings) if labels is not None else [],
        duplicates=duplicates,
    )
