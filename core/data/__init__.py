"""Labelled image datasets in the formats researchers actually have.

One module per format, each registering a :class:`~core.data.registry.Reader` (how
to detect its source, how to list its records); :func:`load_dataset` asks them in order:

* ``webdataset`` — WebDataset ``.tar`` shards;
* ``cifar`` — CIFAR-style python pickles;
* ``huggingface`` — ``hf:ORG/NAME[:SPLIT]`` ids and ``datasets.save_to_disk`` folders;
* ``parquet`` — parquet files / folders of shards with an image column (Hugging Face layout);
* ``torchvision`` — ``tv:NAME`` datasets by name;
* ``manifest`` — CSV/TSV/Parquet ``path,label`` tables;
* ``imagefolder`` — ``root/<class>/<image>`` trees (the fallback for any folder).

All of them become one :class:`Dataset`: records with an id, a class label and a way to
open the image, plus the problems found while listing.
"""

from __future__ import annotations

from core.data.base import Dataset, DatasetOptions, ImageRecord, open_source, printable, register_source
from core.data.registry import Reader, detect, load_dataset, readers, register
from core.data.validation import ValidationReport, validate

# each import registers its reader
from core.data.webdataset import TarDataset, TarRecord, is_shard_source, load_shards  # noqa: E402
from core.data.cifar import is_cifar_folder, load_cifar  # noqa: E402
from core.data.huggingface import load_hub, load_saved  # noqa: E402
from core.data.parquet import load_parquet  # noqa: E402
from core.data.tv import load_torchvision  # noqa: E402
from core.data.manifest import MANIFEST_SUFFIXES, load_manifest  # noqa: E402
from core.data.imagefolder import load_image_folder  # noqa: E402

__all__ = [
    "Dataset", "DatasetOptions", "ImageRecord", "Reader", "TarDataset", "TarRecord", "ValidationReport",
    "MANIFEST_SUFFIXES", "detect", "is_cifar_folder", "is_shard_source", "load_cifar", "load_dataset",
    "load_hub", "load_image_folder", "load_manifest", "load_parquet", "load_saved", "load_torchvision", "load_shards", "open_source", "printable", "readers", "register",
    "register_source", "validate",
]
