"""A small offline demo study: three datasets in three formats, both demo backbones.

Each dataset is drawn from the demo generator with its own seed and class subset, and
written in a different on-disk format, so one study exercises the dataset readers the
way real benchmarks do:

* ``shapes-folder``: an ImageFolder of PNG files (64 px);
* ``shapes-cifar``: a CIFAR-10-style python pickle folder (32 px, ``batches.meta`` +
  ``test_batch``);
* ``shapes-parquet``: a Hugging Face-style parquet file (an ``image`` struct of bytes and
  path, a ``label`` column of class indices with ``ClassLabel`` names in the schema's
  ``huggingface`` metadata) where the installed engine reads that format, else a CSV
  manifest of PNG files.

Like the demo dataset, everything is generated from seeds (numpy + PIL only; no torch).
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from core.demo.data import DEMO_CLASS_SPECS, DEMO_CLASSES, demo_items, render_image, write_class_frequency, write_csv

DEMO_STUDY_DATASETS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("shapes-folder", 11, DEMO_CLASSES[:8]),
    ("shapes-cifar", 12, DEMO_CLASSES[2:]),
    ("shapes-parquet", 13, DEMO_CLASSES),
)
STUDY_FILE = "study.toml"


def _images(seed: int, classes: Sequence[str], n_per_class: int, size: int):
    for item in demo_items(seed, n_per_class, classes):
        yield item, render_image(item.cls, item.variant, item.rng, size).image


def write_image_folder(root: Path, seed: int, classes: Sequence[str], n_per_class: int) -> Path:
    for item, img in _images(seed, classes, n_per_class, 64):
        (root / item.cls).mkdir(parents=True, exist_ok=True)
        img.save(root / item.cls / item.filename(n_per_class), format="PNG")
    return root


def write_cifar_folder(root: Path, seed: int, classes: Sequence[str], n_per_class: int) -> Path:
    """CIFAR-10's python layout: ``batches.meta`` (label_names) and ``test_batch`` (N x 3072 uint8)."""
    root.mkdir(parents=True, exist_ok=True)
    rows, labels, names = [], [], []
    for item, img in _images(seed, classes, n_per_class, 32):
        rows.append(np.asarray(img.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1).reshape(-1))
        labels.append(list(classes).index(item.cls))
        names.append(f"{item.cls}_{item.index:03d}.png".encode())
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in classes], b"num_vis": 3072}, f, protocol=2)
    with open(root / "test_batch", "wb") as f:
        pickle.dump({b"batch_label": b"testing batch 1 of 1", b"labels": labels,
                     b"data": np.stack(rows), b"filenames": names}, f, protocol=2)
    return root


def hf_parquet_readable(path: Path) -> bool:
    """True when this engine reads the Hugging Face parquet file at ``path`` as a dataset."""
    from core.data import load_dataset
    from core.util.errors import InputError

    try:
        return len(load_dataset(path)) > 0
    except InputError:
        return False


def write_hf_parquet(path: Path, seed: int, classes: Sequence[str], n_per_class: int) -> Path:
    """A parquet file as ``datasets.Dataset.to_parquet`` writes it: Image and ClassLabel features."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    images, labels = [], []
    for item, img in _images(seed, classes, n_per_class, 64):
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        images.append({"bytes": buf.getvalue(), "path": f"{item.cls}/{item.filename(n_per_class)}"})
        labels.append(list(classes).index(item.cls))
    features = {"image": {"_type": "Image"}, "label": {"names": list(classes), "_type": "ClassLabel"}}
    schema = pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                        ("label", pa.int64())],
                       metadata={"huggingface": json.dumps({"info": {"features": features}})})
    pq.write_table(pa.table({"image": images, "label": labels}, schema=schema), path)
    return path


def write_manifest(root: Path, seed: int, classes: Sequence[str], n_per_class: int) -> Path:
    """A CSV manifest (path,label) next to its PNG files."""
    files = root / "files"
    rows = []
    for item, img in _images(seed, classes, n_per_class, 64):
        rel = Path("files") / f"{item.cls.replace(' ', '_')}_{item.index:03d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        img.save(root / rel, format="PNG")
        rows.append((rel.as_posix(), item.cls))
    files.mkdir(parents=True, exist_ok=True)
    return write_csv(root / "manifest.csv", ["path", "label"], rows)


def _write_labels(path: Path, classes: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_csv(path, ["class", "synonym"], ([spec.name, name] for spec in DEMO_CLASS_SPECS
                                                  if spec.name in classes for name in spec.names))


def write_demo_study(out: Union[str, Path], n_per_class: int = 8, levels: Sequence[int] = (1, 2, 4, 8),
                     parquet: bool = True) -> Path:
    """Write the three demo datasets with their labels, class_frequency.csv and study.toml.

    Returns the study file. The third dataset is a Hugging Face parquet file when the
    engine reads one (and ``parquet`` is true), else a CSV manifest.
    """
    import shutil

    if n_per_class < 1:
        raise ValueError("n_per_class must be at least 1")
    root = Path(out)
    data = root / "datasets"
    data.mkdir(parents=True, exist_ok=True)
    write_class_frequency(root / "class_frequency.csv")
    paths: dict[str, tuple[Path, Path]] = {}
    (name_a, seed_a, cls_a), (name_b, seed_b, cls_b), (name_c, seed_c, cls_c) = DEMO_STUDY_DATASETS
    paths[name_a] = (write_image_folder(data / name_a, seed_a, cls_a, n_per_class),
                     _write_labels(root / "labels" / f"{name_a}.csv", cls_a))
    paths[name_b] = (write_cifar_folder(data / name_b, seed_b, cls_b, n_per_class),
                     _write_labels(root / "labels" / f"{name_b}.csv", cls_b))
    pq_path = write_hf_parquet(data / name_c / "test.parquet", seed_c, cls_c, n_per_class) if parquet else None
    if pq_path is not None and hf_parquet_readable(pq_path):
        paths[name_c] = (pq_path, _write_labels(root / "labels" / f"{name_c}.csv", cls_c))
    else:
        shutil.rmtree(data / name_c, ignore_errors=True)
        name_c = "shapes-manifest"
        paths[name_c] = (write_manifest(data / name_c, seed_c, cls_c, n_per_class),
                         _write_labels(root / "labels" / f"{name_c}.csv", cls_c))
    lines = [
        "# semscale demo study: three generated datasets in three formats, both bundled demo backbones",
        f"levels = [{', '.join(str(k) for k in levels)}]",
        'mode = "flat"',
        'templates = "plain"',
        "seed = 0",
        'class_frequency = "class_frequency.csv"',
        "ensemble_shots = [1, 2]",
        "ensemble_splits = 2",
        "",
        "[[backbones]]",
        'model = "demo-vit"',
        "",
        "[[backbones]]",
        'model = "demo-resnet"',
    ]
    for name, (path, labels) in paths.items():
        lines += ["", "[[datasets]]", f'name = "{name}"', f'path = "{path.relative_to(root).as_posix()}"',
                  f'labels = "{labels.relative_to(root).as_posix()}"']
    study = root / STUDY_FILE
    study.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return study
