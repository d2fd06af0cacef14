"""The reader registry: each format module registers how to detect its source and how to
list its records; :func:`load_dataset` asks the readers in priority order.

Adding a format is one module that calls :func:`register` at import time, plus its
import in ``core/datasets/__init__.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

from core.util.errors import InputError
from core.data.base import Dataset, DatasetOptions

Source = Union[str, Path, list, tuple]


@dataclass(frozen=True)
class Reader:
    name: str
    detect: Callable[[Source], bool]  # cheap: looks at names and small files only
    load: Callable[[Source, DatasetOptions], Dataset]
    priority: int = 50  # lower is asked first; the ImageFolder fallback is last
    describe: str = ""  # one line for help texts and the README


_READERS: dict[str, Reader] = {}


def register(reader: Reader) -> Reader:
    _READERS[reader.name] = reader
    return reader


def readers() -> list[Reader]:
    """Registered readers in the order :func:`load_dataset` asks them."""
    return sorted(_READERS.values(), key=lambda r: (r.priority, r.name))


def detect(source: Source) -> Reader:
    """The reader for ``source``, or InputError saying why none fits."""
    for reader in readers():
        if reader.detect(source):
            return reader
    if isinstance(source, (list, tuple)):
        raise InputError("not a dataset: a list must name WebDataset .tar shards", file=str(source))
    path = Path(source).expanduser()
    if not path.exists():
        raise InputError("dataset not found", file=path)
    raise InputError(
        "not a dataset: expected a folder, a CSV/Parquet manifest, a parquet file with an image column, "
        "a CIFAR batch file or WebDataset .tar shards", file=path)


def load_dataset(source: Source, allow_absolute: bool = False, *, options: DatasetOptions | None = None,
                 **kw) -> Dataset:
    """Open a dataset, detecting its format from what ``source`` names.

    Keyword arguments are :class:`DatasetOptions` fields (``split``, ``image_column``,
    ``label_column``, ``data_root``, ``download``).
    """
    if options is None:
        options = DatasetOptions(allow_absolute=allow_absolute, **{k: v for k, v in kw.items() if v is not None})
    if isinstance(source, Path):
        source = source.expanduser()
    from core.data.base import drop_duplicate_ids

    return drop_duplicate_ids(detect(source).load(source, options))
