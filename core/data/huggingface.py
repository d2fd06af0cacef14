"""Hugging Face ``datasets``: folders written by ``save_to_disk`` and ``hf:ORG/NAME[:SPLIT]`` ids.

* A ``Dataset.save_to_disk`` folder holds ``state.json`` (its ``.arrow`` files),
  ``dataset_info.json`` (its features) and the ``.arrow`` files; a ``DatasetDict``
  folder holds ``dataset_dict.json`` and one such folder per split. The split is
  ``--split``, else ``test``, then ``validation``, then the only one.
* ``hf:ORG/NAME`` (optionally ``:SPLIT``) goes through ``datasets.load_dataset`` and its
  cache (online, or offline once cached); the rows are then read from the cache's
  ``.arrow`` files like a ``save_to_disk`` folder.

Rows and columns follow :mod:`core.data.arrow_rows`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from core.util.errors import InputError
from core.data.arrow_rows import ArrowRowsDataset, list_rows
from core.data.base import DatasetOptions, choose_split
from core.data.registry import Reader, register

PREFIX = "hf:"


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read ({e})", file=path) from None
    if not isinstance(obj, dict):
        raise InputError("expected a JSON object", file=path)
    return obj


def is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or ((path / "state.json").is_file() and
                                                      (path / "dataset_info.json").is_file())


def load_saved(folder: Path, options: DatasetOptions) -> ArrowRowsDataset:
    """A ``save_to_disk`` folder (a Dataset, or one split of a DatasetDict)."""
    folder = folder.resolve()
    name = str(folder)
    if (folder / "dataset_dict.json").is_file():
        splits = _read_json(folder / "dataset_dict.json").get("splits") or sorted(
            p.name for p in folder.iterdir() if (p / "state.json").is_file())
        split = choose_split([str(s) for s in splits], options.split, folder / "dataset_dict.json")
        folder = folder / split
        name = f"{name} (split '{split}')"
        if not (folder / "state.json").is_file():
            raise InputError(f"split '{split}' has no state.json", file=folder)
    state = _read_json(folder / "state.json")
    info = _read_json(folder / "dataset_info.json") if (folder / "dataset_info.json").is_file() else {}
    files = [str(folder / f["filename"]) for f in state.get("_data_files", []) if isinstance(f, dict) and f.get("filename")]
    for f in files:
        if not Path(f).is_file():
            raise InputError("data file listed in state.json is missing", file=f)
    return list_rows(files, folder, "huggingface", info.get("features") or {}, options.image_column,
                     options.label_column, name)


def _detect_saved(source) -> bool:
    return isinstance(source, (str, Path)) and Path(source).expanduser().is_dir() and \
        is_saved_dataset(Path(source).expanduser())


def parse_hub_id(source: str) -> tuple[str, Optional[str]]:
    """``hf:ORG/NAME[:SPLIT]`` -> (``ORG/NAME``, split or None)."""
    body = source[len(PREFIX):].strip()
    name, split = body, None
    if ":" in body:
        head, tail = body.rsplit(":", 1)
        if tail and "/" not in tail:
            name, split = head, tail
    if not name:
        raise InputError("expected hf:ORG/NAME or hf:ORG/NAME:SPLIT", file=source, field="dataset")
    return name, split


def offline_hint(name: str, split: str) -> str:
    return (f"to use a local copy, run on a connected machine: python -c \"import datasets; "
            f"datasets.load_dataset('{name}', split='{split}').save_to_disk('FOLDER')\" and pass --dataset FOLDER")


def load_hub(source: str, options: DatasetOptions) -> ArrowRowsDataset:
    """``hf:ORG/NAME[:SPLIT]`` through ``datasets.load_dataset`` (its cache; the hub when online)."""
    try:
        import datasets
    except ImportError:
        raise InputError("hf: datasets need the 'datasets' package (pip install datasets)", field="dataset") from None
    name, split = parse_hub_id(source)
    split = options.split or split
    try:
        if split is None:
            split = choose_split(list(datasets.get_dataset_split_names(name)), None, source)
        ds = datasets.load_dataset(name, split=split)
    except InputError:
        raise
    except ValueError as e:  # an unknown split
        raise InputError(f"{str(e).splitlines()[0]}", file=source, field="split") from None
    except Exception as e:  # offline, not found, gated: one line that says what to do
        short = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"cannot load '{name}' through the datasets library ({short[:160]}); "
                         + offline_hint(name, split or "test"), file=source, field="dataset") from None
    files = [c["filename"] for c in ds.cache_files]
    if not files:
        raise InputError("the datasets library kept this dataset in memory only; save it with save_to_disk and "
                         "pass the folder", file=source, field="dataset")
    root = Path(files[0]).parent
    # features: from the cache files' schema metadata
    return list_rows(files, root, "huggingface", {}, options.image_column, options.label_column,
                     f"{PREFIX}{name} (split '{split}')")


def _detect_hub(source) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


register(Reader("huggingface-hub", _detect_hub, load_hub, priority=0,
                describe="hf:ORG/NAME[:SPLIT]: a dataset on the Hugging Face hub, through the datasets library"))
register(Reader("huggingface", _detect_saved, lambda s, o: load_saved(Path(s).expanduser(), o), priority=30,
                describe="a folder written by datasets' save_to_disk (a Dataset or a DatasetDict)"))
