"""Manifests: CSV, TSV or Parquet tables with ``path,label`` columns, paths relative to
the manifest (a folder holding only ``manifest.csv``/``manifest.parquet`` works too)."""

from __future__ import annotations

import os
from pathlib import Path

from core.util.errors import InputError
from core.data.base import Dataset, DatasetOptions, ImageRecord
from core.data.registry import Reader, register

MANIFEST_SUFFIXES = (".csv", ".parquet", ".pq", ".tsv")
MANIFEST_NAMES = ("manifest.csv", "manifest.parquet")


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
            if not allow_absolute:
                real = resolved.resolve()  # a link inside the folder must not lead out of it either
                if real != root and root not in real.parents:
                    raise InputError(f"path '{p}' is a symbolic link leading outside the manifest's folder "
                                     f"(to {real})", file=path, line=line, field="path")
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


def _manifest_file(source) -> Path | None:
    if not isinstance(source, (str, Path)):
        return None
    p = Path(source).expanduser()
    if p.is_file():
        return p if p.suffix.lower() in MANIFEST_SUFFIXES else None
    if p.is_dir():
        for name in MANIFEST_NAMES:
            if (p / name).is_file() and not any(d.is_dir() for d in p.iterdir()):
                return p / name
    return None


def _load(source, options: DatasetOptions) -> Dataset:
    return load_manifest(_manifest_file(source), allow_absolute=options.allow_absolute)


register(Reader("manifest", lambda s: _manifest_file(s) is not None, _load, priority=60,
                describe="a CSV/TSV/Parquet table with path,label columns"))
