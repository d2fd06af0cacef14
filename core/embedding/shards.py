"""Work shards: the deterministic slices that ``semscale embed`` cuts any dataset into.

:func:`plan_shards` cuts a dataset's record list (in its deterministic listing order)
into consecutive slices of ``shard_size`` records; slice *i* is written to the store as
``shards/part-<i>.parquet`` (see :mod:`core.embedding.store`). :func:`fingerprint` identifies a
listing, so a store only resumes over the same one. :func:`record_source` /
:func:`open_source` turn one record into a small picklable description and back, so a
remote worker can open the image without the whole dataset.

WebDataset ``.tar`` *input* shards are a dataset format: :mod:`core.data.webdataset`.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

from PIL import Image

from core.data import Dataset, ImageRecord
from core.data.base import open_source as _open_source
from core.util.errors import InputError


def plan_shards(n_records: int, shard_size: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) record ranges of ``shard_size`` (the last may be shorter)."""
    if shard_size < 1:
        raise InputError("shard size must be at least 1", field="shard-size")
    return [(s, min(s + shard_size, n_records)) for s in range(0, n_records, shard_size)]


def fingerprint(records: Sequence[ImageRecord]) -> str:
    """SHA-256 of the (id, label) list: a store only resumes over the same listing."""
    h = hashlib.sha256()
    for r in records:
        h.update(r.id.encode("utf-8", "surrogateescape"))
        h.update(b"\t")
        h.update(r.label.encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return h.hexdigest()


def record_source(dataset: Dataset, i: int) -> dict:
    """A small picklable description of record ``i`` that :func:`open_source` can open anywhere."""
    return dataset.source(i)


def open_source(src: dict) -> Image.Image:
    """The image a :func:`record_source` description points at, as RGB, or BadImage."""
    return _open_source(src)
