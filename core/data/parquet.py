"""Parquet files with an image column: one file, or a folder of shards as the Hugging Face
hub stores them (``data/test-00000-of-00002.parquet``, ``test/0000.parquet``, …).

A parquet file is read here (rather than as a ``path,label`` manifest) when its schema
holds images: an ``Image`` feature in its ``huggingface`` metadata, or a struct column
with a ``bytes`` field. In a folder, shards are grouped into splits by the file-name
prefix before ``-NNNNN-of-NNNNN`` or, failing that, by their folder's name; the split is
``--split``, else ``test``, then ``validation``, then the only one. Rows and columns
follow :mod:`core.data.arrow_rows`.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.util.errors import InputError
from core.data.arrow_rows import ArrowRowsDataset, has_image_column, list_rows
from core.data.base import DatasetOptions, choose_split
from core.data.registry import Reader, register

SUFFIXES = (".parquet", ".pq")
MAX_DEPTH = 3  # how deep a folder is searched for shards
_SHARD = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}(?:-[0-9a-f]+)?$")


def _schema_has_images(path: Path) -> bool:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return has_image_column(pq.read_schema(path))
    except (OSError, pa.ArrowException):
        return False


def parquet_files(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in SUFFIXES and p.is_file() and len(p.relative_to(folder).parts) <= MAX_DEPTH \
                and not any(part.startswith(".") for part in p.relative_to(folder).parts):
            out.append(p)
    return out


def split_of(path: Path, folder: Path) -> str:
    m = _SHARD.match(path.stem)
    if m:
        return m.group("split")
    parent = path.parent
    return parent.name if parent != folder else path.stem


def _detect(source) -> bool:
    if not isinstance(source, (str, Path)):
        return False
    p = Path(source).expanduser()
    if p.is_file():
        return p.suffix.lower() in SUFFIXES and _schema_has_images(p)
    if p.is_dir():
        if any(d.is_dir() and not d.name.startswith(".") and not parquet_files(d) for d in p.iterdir()):
            return False  # sub-folders without parquet files: an ImageFolder
        files = parquet_files(p)
        return bool(files) and _schema_has_images(files[0])
    return False


def load_parquet(source: Path, options: DatasetOptions) -> ArrowRowsDataset:
    source = source.resolve()
    if source.is_file():
        return list_rows([str(source)], source.parent, "parquet", {}, options.image_column, options.label_column,
                         str(source))
    files = parquet_files(source)
    if not files:
        raise InputError("folder has no .parquet files", file=source)
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(split_of(f, source), []).append(f)
    if len(groups) == 1 and not options.split:
        split, chosen = next(iter(groups.items()))
    else:
        split = choose_split(sorted(groups), options.split, source)
        chosen = groups[split]
    return list_rows([str(f) for f in chosen], source, "parquet", {}, options.image_column, options.label_column,
                     f"{source} (split '{split}', {len(chosen)} file{'s' if len(chosen) != 1 else ''})")


register(Reader("parquet", _detect, lambda s, o: load_parquet(Path(s).expanduser(), o), priority=40,
                describe="a .parquet file or a folder of parquet shards with an image column (Hugging Face layout)"))
