"""Writing files so that a crash or a kill never leaves a half-written one.

Every file that readers trust whole (run.json, store manifests and shards, labels files
the app saves) is written to a temporary name in the same folder, flushed to disk and
renamed over the old one; readers see the old file or the new one, never a mixture.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def temporary_name(path: Path) -> Path:
    """A hidden sibling of ``path`` (``.<name>.<random>.tmp``) that stale-file cleaners can match."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; on success it is fsynced and
    renamed over ``path``, on failure removed."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_csv(path: str | Path, frame) -> None:
    """A pandas DataFrame as CSV, atomically: a reader (the app, a script) never sees half a file."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def atomic_write_json(path: str | Path, data: Any, indent: int = 2) -> None:
    atomic_write_text(path, json.dumps(data, indent=indent, default=str) + "\n")


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC (and quota, file-size limit), or SQLite's "database or disk is full"."""
    if isinstance(err, OSError) and err.errno in _FULL:
        return True
    if isinstance(err, sqlite3.Error) and getattr(err, "sqlite_errorcode", None) == 13:  # SQLITE_FULL
        return True
    return "database or disk is full" in str(err)  # also as the embedding cache reports it


def disk_full_error(err: BaseException, folder: str | Path, what: str = "the run folder"):
    """The :class:`~core.util.errors.DiskFull` to raise for ``err``, naming ``folder``."""
    from core.util.errors import DiskFull

    why = {errno.EDQUOT: "the disk quota is used up", errno.EFBIG: "the file-size limit is reached"}.get(
        getattr(err, "errno", None), "the disk is full")
    return DiskFull(f"{why}: cannot write {what} ({type(err).__name__}: {getattr(err, 'strerror', None) or err}); "
                    "free some space or choose a folder on another disk", file=folder)
