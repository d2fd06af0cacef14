"""Images stored as rows of Arrow or Parquet files (the Hugging Face ``datasets`` layouts).

Shared by the ``huggingface`` (``save_to_disk`` folders, ``hf:`` ids) and ``parquet``
readers. Listing reads only the label column and the images' stored paths; an image's
bytes are read when it is used, in the process that uses it (a DataLoader worker, a Ray
task): Arrow files are memory-mapped, Parquet files are read one row group at a time.
Nothing but file names and row numbers is pickled to a worker.

Column conventions (those of ``datasets``):

* the image column holds the ``Image`` feature, a struct of ``bytes`` and ``path`` (or
  plain binary); found by name (``image``, ``img``), by its ``Image`` feature, or by
  shape (a struct with a ``bytes`` field), unless ``--image-column`` names it;
* the label column holds ``ClassLabel`` integers (names from the ``huggingface`` schema
  metadata or ``dataset_info.json``), or plain strings; found by name (``label``,
  ``labels``, ``fine_label``) or by its ``ClassLabel`` feature, unless ``--label-column``
  names it. ``-1`` or null (an unlabelled row, as in some hub test splits) is listed as a
  problem, not scored.

An image's id is its stored path (absolute paths relative to their common folder, so the
images of an ImageFolder keep their ``class/file`` ids; ``class/path`` when stored file
names repeat across classes, as ``save_to_disk`` keeps only file names; ``row/path`` when
they repeat even so),
else its row number; its cache key is the SHA-256 of its bytes — the same key as the same
image read from a file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from PIL import Image

from core.util.errors import InputError
from core.data.images import BadImage, open_image
from core.data.base import Dataset, ImageRecord, choose_name, class_list, register_source, sha256_file

IMAGE_NAMES = ("image", "img")
LABEL_NAMES = ("label", "labels", "fine_label")


# ---------------------------------------------------------------- reading cells, per process


class _TableFile:
    """One Arrow (memory-mapped) or Parquet file, opened in the process that reads it."""

    def __init__(self, path: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = path
        self.parquet = path.lower().endswith((".parquet", ".pq"))
        self._group: tuple[Optional[int], Optional[str], object] = (None, None, None)  # the last row group read
        self._lock = threading.Lock()
        if self.parquet:
            self.file = pq.ParquetFile(path, memory_map=True)
            starts, n = [], 0
            for g in range(self.file.metadata.num_row_groups):
                starts.append(n)
                n += self.file.metadata.row_group(g).num_rows
            self.starts = starts
        else:
            source = pa.memory_map(path)
            try:
                self.table = pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                self.table = pa.ipc.open_file(pa.memory_map(path)).read_all()

    def cell(self, row: int, column: str):
        """The Python value at (row, column), reading at most one row group."""
        if not self.parquet:
            return self.table.column(column)[row].as_py()
        import bisect

        g = bisect.bisect_right(self.starts, row) - 1
        group = self._group  # one read of the shared slot: threads (thumbnails) may replace it meanwhile
        if group[0] != g or group[1] != column:
            with self._lock:
                group = (g, column, self.file.read_row_group(g, columns=[column]).column(0))
            self._group = group
        return group[2][row - self.starts[g]].as_py()


@functools.lru_cache(maxsize=16)
def _table_file(path: str, pid: int) -> _TableFile:
    return _TableFile(path)


def read_cell(path: str, row: int, column: str):
    return _table_file(path, os.getpid()).cell(row, column)


def _image_value(value) -> tuple[Optional[bytes], Optional[str]]:
    if isinstance(value, dict):
        return value.get("bytes"), value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value), None
    return None, None


def _local_file(stored: Optional[str], root: Path) -> Optional[Path]:
    if not stored:
        return None
    p = Path(stored)
    if not p.is_absolute():
        p = root / p
    return p if p.is_file() else None


def _open_cell(path: str, row: int, column: str, root: Path) -> Image.Image:
    try:
        data, stored = _image_value(read_cell(path, row, column))
    except OSError as e:
        raise BadImage(f"cannot read {Path(path).name} ({e})") from None
    if data is None:
        local = _local_file(stored, root)
        if local is None:
            raise BadImage(f"row {row} of {Path(path).name}: no image bytes in column '{column}'"
                           + (f" and no file '{stored}'" if stored else ""))
        return open_image(local)
    try:
        return open_image(data)
    except BadImage as e:
        raise BadImage(f"row {row} of {Path(path).name}, column '{column}': {e}") from None


register_source("table", lambda src: _open_cell(src["path"], int(src["offset"]), bytes(src["raw"]).decode("utf-8"),
                                                  Path(src["path"]).parent))


# ---------------------------------------------------------------- the dataset


@dataclass
class RowRecord(ImageRecord):
    """One row of one Arrow/Parquet file (``row`` is the row within ``file``)."""

    file: str = ""


@dataclass
class ArrowRowsDataset(Dataset):
    """A :class:`Dataset` whose images are cells of an image column in Arrow/Parquet files."""

    image_column: str = "image"
    files: list[str] = field(default_factory=list)
    source_name: str = ""  # what the user gave (a folder, a file, an hf: id) and the split

    def describe(self) -> str:
        kind = {"huggingface": "Hugging Face"}.get(self.kind, self.kind)
        column = "" if self.image_column.lower() in IMAGE_NAMES else f" (images in column '{self.image_column}')"
        return (f"{kind} dataset {self.source_name or self.root}: {len(self.records)} images in "
                f"{len(self.classes)} classes{column}")

    def _cell(self, r: RowRecord):
        return _image_value(read_cell(r.file, r.row, self.image_column))

    def open(self, i: int) -> Image.Image:
        r = self.records[i]
        if isinstance(r, RowRecord):
            return _open_cell(r.file, r.row, self.image_column, self.root)
        return super().open(i)

    def content_hash(self, i: int) -> str:
        r = self.records[i]
        if not isinstance(r, RowRecord):
            return super().content_hash(i)
        data, stored = self._cell(r)
        if data is None:
            local = _local_file(stored, self.root)
            if local is None:
                raise FileNotFoundError(f"row {r.row} of {Path(r.file).name} has no image bytes")
            return sha256_file(local)
        return hashlib.sha256(data).hexdigest()

    def source(self, i: int) -> dict:
        r = self.records[i]
        if isinstance(r, RowRecord):
            return {"kind": "table", "path": r.file, "offset": int(r.row), "size": 0,
                    "raw": self.image_column.encode("utf-8")}
        return super().source(i)


# ---------------------------------------------------------------- schema and columns


def features_of(schema) -> dict:
    """The ``datasets`` features recorded in an Arrow schema's ``huggingface`` metadata ({} if none)."""
    meta = schema.metadata or {}
    raw = meta.get(b"huggingface")
    if not raw:
        return {}
    try:
        info = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    feats = (info.get("info") or {}).get("features") or {}
    return feats if isinstance(feats, dict) else {}


def _ftype(feature) -> str:
    return feature.get("_type", "") if isinstance(feature, dict) else ""


def _is_image_type(t) -> bool:
    import pyarrow as pa

    if pa.types.is_struct(t):
        return any(t.field(i).name == "bytes" for i in range(t.num_fields))
    return pa.types.is_binary(t) or pa.types.is_large_binary(t)


def has_image_column(schema) -> bool:
    """True when a table holds images: an ``Image`` feature, a bytes struct, or binary cells
    in a table without the ``path`` column of a manifest."""
    feats = features_of(schema)
    if any(_ftype(f) == "Image" for f in feats.values()):
        return True
    import pyarrow as pa

    if any(pa.types.is_struct(f.type) and _is_image_type(f.type) for f in schema):
        return True
    return "path" not in [n.lower() for n in schema.names] and any(_is_image_type(f.type) for f in schema)


def choose_columns(schema, features: dict, image_column: Optional[str], label_column: Optional[str],
                   where: str) -> tuple[str, str]:
    """(image column, label column), or InputError naming the file and what was found."""
    names = list(schema.names)

    def pick(given, flag, wanted, by_type):
        what = "image" if flag == "image-column" else "label"
        return choose_name(names, given, wanted, noun="column", listed_as="found", where=where, field=flag,
                           missing=lambda found: f"no {what} column (found: {found}); name it with --{flag}",
                           fallback=lambda available: next((n for n in available if by_type(n)), None))

    image = pick(image_column, "image-column", IMAGE_NAMES,
                 lambda n: _ftype(features.get(n)) == "Image" or _is_image_type(schema.field(n).type))
    if not _is_image_type(schema.field(image).type) and _ftype(features.get(image)) != "Image":
        raise InputError(f"column '{image}' does not hold images (type {schema.field(image).type})", file=where,
                         field="image-column")
    label = pick(label_column, "label-column", LABEL_NAMES, lambda n: _ftype(features.get(n)) == "ClassLabel")
    return image, label


def class_names(features: dict, label: str) -> Optional[list[str]]:
    f = features.get(label)
    if _ftype(f) == "ClassLabel" and f.get("names"):
        return [str(n) for n in f["names"]]
    return None


# ---------------------------------------------------------------- listing


def _row_ids(stored: list, labels: list) -> list[str]:
    """Stored paths when unique; else ``class/path`` when that is unique (a folder's own ids);
    else ``row/path``; the row number where no path is stored."""
    width = len(str(max(len(stored) - 1, 0)))
    usable = [p for p in stored if p]
    if len(set(usable)) == len(usable):
        return [str(p) if p else f"{i:0{width}d}" for i, p in enumerate(stored)]
    keyed = [f"{lab}/{p}" for p, lab in zip(stored, labels) if p]
    if len(set(keyed)) == len(keyed):
        return [f"{lab}/{p}" if p else f"{i:0{width}d}" for i, (p, lab) in enumerate(zip(stored, labels))]
    return [f"{i:0{width}d}/{p}" if p else f"{i:0{width}d}" for i, p in enumerate(stored)]


def _shorten(stored: list) -> list:
    """Absolute stored paths (the writer's machine) relative to their common folder: ``cls/img.png``."""
    usable = [p for p in stored if p]
    if not usable or not all(os.path.isabs(p) for p in usable):
        return stored
    try:
        common = os.path.commonpath([os.path.dirname(p) for p in usable])
    except ValueError:  # mixed drives
        return stored
    return [Path(os.path.relpath(p, common)).as_posix() if p else p for p in stored]


def list_rows(files: Sequence[str], root: Path, kind: str, features: dict, image_column: Optional[str],
              label_column: Optional[str], describe_as: str) -> ArrowRowsDataset:
    """Index the rows of ``files`` (same schema): labels and stored paths only, no image bytes."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not files:
        raise InputError("no data files", file=root)
    first = files[0]
    schema = (pq.read_schema(first) if first.lower().endswith((".parquet", ".pq"))
              else _table_file(first, os.getpid()).table.schema)
    features = features or features_of(schema)
    image, label = choose_columns(schema, features, image_column, label_column, first)
    names = class_names(features, label)
    labels: list = []
    stored: list = []
    where: list[tuple[str, int]] = []
    for f in files:
        try:
            if f.lower().endswith((".parquet", ".pq")):
                pf = pq.ParquetFile(f)
                if label not in pf.schema_arrow.names or image not in pf.schema_arrow.names:
                    raise InputError(f"missing column '{label if label not in pf.schema_arrow.names else image}'",
                                     file=f, field="label-column" if label not in pf.schema_arrow.names else "image-column")
                itype = pf.schema_arrow.field(image).type
                has_path = pa.types.is_struct(itype) and itype.get_field_index("path") >= 0
                t = pq.read_table(f, columns=[label] + ([f"{image}.path"] if has_path else []))
                labs = t.column(0).to_pylist()
                paths = t.column(1).to_pylist() if has_path else [None] * len(labs)
            else:
                t = _table_file(f, os.getpid()).table
                labs = t.column(label).to_pylist()
                col = t.column(image)
                has_path = pa.types.is_struct(col.type) and col.type.get_field_index("path") >= 0
                paths = pc.struct_field(col, "path").to_pylist() if has_path else [None] * len(labs)
        except InputError:
            raise
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"cannot read ({str(e).splitlines()[0]})", file=f) from None
        labels += labs
        stored += paths
        where += [(f, r) for r in range(len(labs))]
    stored = _shorten(stored)
    resolved: list[Optional[str]] = []  # class name per row, None for an unlabelled row
    for lab, (f, r) in zip(labels, where):
        if lab is None or (isinstance(lab, int) and not isinstance(lab, bool) and lab == -1):
            resolved.append(None)
        elif names is not None:
            if isinstance(lab, bool) or not isinstance(lab, int) or not 0 <= lab < len(names):
                raise InputError(f"label {lab!r} in row {r} is outside the {len(names)} ClassLabel names",
                                 file=f, field=label)
            resolved.append(names[lab])
        else:
            resolved.append(str(lab).strip() or None)
    ids = _row_ids(stored, resolved)
    records: list[ImageRecord] = []
    problems: list[tuple[str, str]] = []
    for rid, lab, (f, r) in zip(ids, resolved, where):
        if lab is None:
            problems.append((rid, f"row {r} of {Path(f).name} has no label in column '{label}'"))
            continue
        records.append(RowRecord(id=rid, label=lab, row=r, file=f))
    if not records and problems:
        raise InputError(f"no labelled rows in column '{label}' (an unlabelled split? choose another with --split)",
                         file=first, field=label)
    classes, empty = class_list((r.label for r in records), names)
    ds = ArrowRowsDataset(root=root, kind=kind, records=records, classes=classes, problems=problems,
                          empty_classes=empty, image_column=image,
                          files=list(files), source_name=describe_as)
    return ds
