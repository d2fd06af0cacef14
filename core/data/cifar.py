"""CIFAR-style python pickles (``batches.meta`` + ``test_batch`` / ``meta`` + ``test``),
read with a restricted unpickler that only admits the arrays CIFAR files contain."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from core.util.errors import InputError
from core.data.base import Dataset, DatasetOptions, ImageRecord
from core.data.registry import Reader, register


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


def _detect(source) -> bool:
    if not isinstance(source, (str, Path)):
        return False
    p = Path(source).expanduser()
    return p.exists() and not p.suffix.lower() in (".csv", ".tsv", ".parquet", ".pq", ".tar") and is_cifar_folder(p)


register(Reader("cifar", _detect, lambda s, o: load_cifar(Path(s).expanduser()), priority=20,
                describe="a CIFAR-10/100 python folder (batches.meta + test_batch) or one batch file"))
