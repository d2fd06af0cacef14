"""WebDataset ``.tar`` shards as a :class:`~core.data.Dataset`.

A *shard source* is any of:

* one ``.tar`` file;
* a folder holding ``.tar`` files (and no sub-folders), read in sorted name order;
* a brace pattern, as WebDataset writes them: ``data-{000..009}.tar`` (zero-padded
  numeric ranges and ``{a,b,c}`` lists, nested or repeated);
* several of these joined with ``::`` (WebDataset's own separator), or a Python list.

Samples follow the WebDataset convention: tar members are grouped by *key* (the member
path up to the first ``.`` of its file name); the rest of the name is the entry's
extension. A sample's image is its first entry with an image extension (``jpg``,
``jpeg``, ``png``, ``webp``, ``bmp``, ``gif``, ``tif``, ``tiff``, ``ppm``, ``pgm``,
``jfif``, in that order of preference). Its class label is taken from, in this order:

1. ``cls`` — the text of the entry (UTF-8, stripped);
2. ``txt`` — the text of the entry;
3. ``json`` — the value of its ``label``, ``class``, ``cls`` or ``classname`` key.

An integer label (``"3"``) is mapped to a class name when a ``classnames.txt`` (the
clip_benchmark convention) or ``classes.txt`` file — one class name per line, line *i*
naming class *i* — sits beside the shards; otherwise the integer's text is the class
name. A sample's id is ``<shard path relative to the shards' common folder>/<key>``.

Samples without an image or a label, and tar files that end early or cannot be read,
are listed as the dataset's problems (they end up in ``skipped.csv``); images are
decoded only when used, with :func:`core.data.images.open_image`, so a corrupt image is
reported like any other bad file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from PIL import Image

from core.util.errors import InputError
from core.data.images import BadImage, open_image
from core.data.base import Dataset, ImageRecord, class_list, printable, register_source
from core.data.registry import Reader, register

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "ppm", "pgm", "jfif")
LABEL_EXTS = ("cls", "txt", "json")
JSON_LABEL_KEYS = ("label", "class", "cls", "classname")
CLASSNAME_FILES = ("classnames.txt", "classes.txt")
MAX_LABEL_BYTES = 1 << 16  # a label entry larger than this is not a label

ShardSpec = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


# ---------------------------------------------------------------- shard sources


def braceexpand(pattern: str) -> list[str]:
    """Expand ``{000..009}`` ranges and ``{a,b}`` lists (bash/WebDataset style)."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    head, body, tail = pattern[: m.start()], m.group(1), pattern[m.end():]
    rng = re.fullmatch(r"(-?\d+)\.\.(-?\d+)(?:\.\.(\d+))?", body)
    if rng:
        a, b = int(rng.group(1)), int(rng.group(2))
        step = int(rng.group(3) or 1) or 1
        width = max(len(rng.group(1)), len(rng.group(2))) if rng.group(1).startswith("0") or rng.group(2).startswith("0") else 0
        seq = range(a, b + 1, step) if a <= b else range(a, b - 1, -step)
        items = [str(i).zfill(width) for i in seq]
    elif "," in body:
        items = body.split(",")
    else:  # not a brace expression: keep the braces literally
        return [head + "{" + body + "}" + x for x in braceexpand(tail)]
    return [x for item in items for x in braceexpand(head + item + tail)]


def _is_tar_name(p: str) -> bool:
    return str(p).lower().endswith(".tar")


def is_shard_source(path) -> bool:
    """True when ``path`` names WebDataset ``.tar`` shards (see module docstring)."""
    if isinstance(path, (list, tuple)):
        return len(path) > 0 and all(_is_tar_name(str(p)) for p in path)
    s = str(path)
    if "::" in s:
        return True
    if "{" in s and _is_tar_name(s):
        return True
    p = Path(s).expanduser()
    if p.is_file():
        return _is_tar_name(s)
    if p.is_dir():
        try:
            entries = list(p.iterdir())
        except OSError:
            return False
        has_tar = any(e.is_file() and _is_tar_name(e.name) for e in entries)
        has_dir = any(e.is_dir() and not e.name.startswith(".") for e in entries)
        has_manifest = any(e.name in ("manifest.csv", "manifest.parquet") for e in entries)
        return has_tar and not has_dir and not has_manifest
    return False


def shard_paths(spec: ShardSpec) -> list[Path]:
    """The ``.tar`` files a shard source names, in order; InputError if one is missing."""
    parts: list[str] = []
    if isinstance(spec, (list, tuple)):
        parts = [str(p) for p in spec]
    else:
        parts = [x for x in str(spec).split("::") if x.strip()]
    out: list[Path] = []
    for part in parts:
        p = Path(part).expanduser()
        if p.is_dir():
            tars = sorted(e for e in p.iterdir() if e.is_file() and _is_tar_name(e.name))
            if not tars:
                raise InputError("folder has no .tar shards", file=p)
            out.extend(tars)
            continue
        for x in braceexpand(part):
            q = Path(x).expanduser()
            if not q.is_file():
                raise InputError("shard not found" + (f" (from pattern '{part}')" if x != part else ""), file=q)
            out.append(q)
    if not out:
        raise InputError("no .tar shards given", file=str(spec))
    seen, uniq = set(), []
    for p in out:
        r = p.resolve()
        if r not in seen:
            seen.add(r)
            uniq.append(r)
    return uniq


def _split_key(name: str) -> tuple[str, str]:
    """WebDataset's key/extension split: ``dir/abc.seg.png`` -> (``dir/abc``, ``seg.png``)."""
    m = re.match(r"^((?:.*/|)[^./]+)\.([^/]*)$", name)
    if m is None:
        return name, ""
    return m.group(1), m.group(2).lower()


# ---------------------------------------------------------------- the dataset


@dataclass
class TarRecord(ImageRecord):
    """An image stored as one member of a tar file (read by seeking to ``offset``)."""

    tar: str = ""
    offset: int = 0
    size: int = 0


def read_member(tar: str, offset: int, size: int) -> bytes:
    with open(tar, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    if len(data) != size:
        raise BadImage("truncated tar member")
    return data


@dataclass
class TarDataset(Dataset):
    """A :class:`Dataset` whose records are members of WebDataset ``.tar`` shards."""

    def open(self, i: int) -> Image.Image:
        r = self.records[i]
        if isinstance(r, TarRecord):
            try:
                data = read_member(r.tar, r.offset, r.size)
            except OSError as e:
                raise BadImage(f"cannot read shard ({e.strerror or e})") from None
            return open_image(data)
        return super().open(i)

    def content_hash(self, i: int) -> str:
        r = self.records[i]
        if isinstance(r, TarRecord):
            return hashlib.sha256(read_member(r.tar, r.offset, r.size)).hexdigest()
        return super().content_hash(i)

    def source(self, i: int) -> dict:
        r = self.records[i]
        if isinstance(r, TarRecord):
            return {"kind": "tar", "path": r.tar, "offset": int(r.offset), "size": int(r.size), "raw": b""}
        return super().source(i)


def _open_tar(src: dict) -> Image.Image:
    try:
        data = read_member(src["path"], int(src["offset"]), int(src["size"]))
    except OSError as e:
        raise BadImage(f"cannot read shard ({e.strerror or e})") from None
    return open_image(data)


register_source("tar", _open_tar)


def _class_names(folders: Iterable[Path]) -> Optional[list[str]]:
    for folder in folders:
        for name in CLASSNAME_FILES:
            f = folder / name
            if f.is_file():
                lines = [l.strip() for l in f.read_text(encoding="utf-8-sig").splitlines()]
                return [l for l in lines if l]
    return None


def _label_text(ext: str, data: bytes) -> Optional[str]:
    try:
        text = data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        return None
    if ext == "json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            return None
        if isinstance(obj, dict):
            for k in JSON_LABEL_KEYS:
                if k in obj and obj[k] is not None and not isinstance(obj[k], (dict, list)):
                    return str(obj[k]).strip() or None
        elif isinstance(obj, (int, str)):
            return str(obj).strip() or None
        return None
    return text.splitlines()[0].strip() if text else None


def _index_tar(path: Path, rel: str, problems: list) -> list[tuple[str, dict]]:
    """(key, {ext: (offset, size)}) per sample, in the order the samples appear."""
    samples: dict[str, dict[str, tuple[int, int]]] = {}
    n = 0
    try:
        with tarfile.open(path, mode="r:") as tf:
            while True:
                try:
                    m = tf.next()
                except tarfile.ReadError as e:
                    problems.append((rel, f"shard ends early or is corrupt after {n} entries ({e})"))
                    break
                if m is None:
                    break
                n += 1
                if not m.isfile():
                    continue
                base = m.name.rsplit("/", 1)[-1]
                if base.startswith("."):
                    continue
                key, ext = _split_key(m.name)
                if not ext:
                    continue
                samples.setdefault(key, {})[ext] = (m.offset_data, m.size)
    except (tarfile.TarError, OSError) as e:
        problems.append((rel, f"cannot read shard ({e})"))
    if path.exists():
        size = path.stat().st_size
        for key, entries in samples.items():
            for ext, (off, sz) in list(entries.items()):
                if off + sz > size:  # data cut off by truncation
                    del entries[ext]
    return list(samples.items())


def load_shards(spec: ShardSpec) -> TarDataset:
    """Index WebDataset shards (headers and label entries only; images are read later)."""
    paths = shard_paths(spec)
    common = Path(os.path.commonpath([str(p.parent) for p in paths]))
    names = _class_names(dict.fromkeys([common] + [p.parent for p in paths]))
    records: list[ImageRecord] = []
    problems: list[tuple[str, str]] = []
    for path in paths:
        rel = printable(path.relative_to(common).as_posix())
        for key, entries in _index_tar(path, rel, problems):
            rid = f"{rel}/{printable(key)}"
            img_ext = next((e for pref in IMAGE_EXTS for e in entries if e == pref or e.endswith("." + pref)), None)
            if img_ext is None:
                problems.append((rid, "sample has no image entry (." + ", .".join(IMAGE_EXTS[:5]) + ", …)"))
                continue
            label = None
            for lext in LABEL_EXTS:
                if lext in entries:
                    off, sz = entries[lext]
                    if sz > MAX_LABEL_BYTES:
                        continue
                    try:
                        label = _label_text(lext, read_member(str(path), off, sz))
                    except (OSError, BadImage):
                        label = None
                    if label:
                        break
            if not label:
                problems.append((rid, "sample has no class label (.cls, .txt or .json entry)"))
                continue
            if names is not None and re.fullmatch(r"-?\d+", label):
                idx = int(label)
                if not 0 <= idx < len(names):
                    problems.append((rid, f"class index {idx} is outside classnames.txt ({len(names)} names)"))
                    continue
                label = names[idx]
            off, sz = entries[img_ext]
            records.append(TarRecord(id=rid, label=label, tar=str(path), offset=off, size=sz))
    if not records and not problems:
        raise InputError("the shards hold no samples", file=str(paths[0]))
    classes, empty = class_list((r.label for r in records), names)
    return TarDataset(root=common, kind="webdataset", records=records, classes=classes, problems=problems,
                      empty_classes=empty)


register(Reader("webdataset", is_shard_source, lambda s, o: load_shards(s), priority=10,
                describe="WebDataset .tar shards: a .tar, a folder of them, data-{000..009}.tar, or a::b"))
