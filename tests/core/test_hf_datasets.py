"""Hugging Face datasets (save_to_disk folders, parquet files and shards), written by the real
``datasets`` library, read by the ``huggingface`` and ``parquet`` readers."""

from __future__ import annotations

import hashlib
import io
import pickle

import numpy as np
import pandas as pd
import pytest
from PIL import Image

datasets = pytest.importorskip("datasets")

from core.data import load_dataset, validate  # noqa: E402
from core.util.errors import InputError  # noqa: E402
from core.data.images import open_image  # noqa: E402
from core.embedding.shards import open_source, record_source  # noqa: E402
from tests.conftest import CLASSES  # noqa: E402

NAMES = sorted(CLASSES)


def hf_from_folder(folder, label_kind: str = "classlabel") -> "datasets.Dataset":
    """The ImageFolder's images (same bytes, same order) as a datasets.Dataset."""
    files = sorted(folder.rglob("*.png"))
    if label_kind == "classlabel":
        feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=NAMES)})
        labels = [NAMES.index(f.parent.name) for f in files]
    else:
        feats = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
        labels = [f.parent.name for f in files]
    return datasets.Dataset.from_dict({"image": [str(f) for f in files], "label": labels}, features=feats)


def test_save_to_disk_folder_reads_like_the_image_folder(image_folder, tmp_path):
    folder_ds = load_dataset(image_folder)
    hf_from_folder(image_folder).save_to_disk(str(tmp_path / "hf"))
    ds = load_dataset(tmp_path / "hf")
    assert ds.kind == "huggingface" and ds.classes == NAMES and len(ds) == 16
    assert [r.label for r in ds.records] == [r.label for r in folder_ds.records]
    # save_to_disk keeps file names only (000.png in every class): ids become class/file, the folder's own
    assert [r.id for r in ds.records] == [r.id for r in folder_ds.records]
    for i in (0, 7, 15):  # same bytes -> same cache key, same pixels
        assert ds.content_hash(i) == hashlib.sha256(folder_ds.records[i].path.read_bytes()).hexdigest()
        assert np.array_equal(np.asarray(ds.open(i)), np.asarray(folder_ds.open(i)))
    # a worker process gets file names and row numbers only, and opens the row itself
    clone = pickle.loads(pickle.dumps(ds))
    assert np.array_equal(np.asarray(clone.open(5)), np.asarray(folder_ds.open(5)))
    src = record_source(ds, 9)
    assert src["kind"] == "table" and len(pickle.dumps(src)) < 500
    assert np.array_equal(np.asarray(open_source(src)), np.asarray(folder_ds.open(9)))
    assert validate(ds).ok


def test_dataset_dict_split_choice(image_folder, tmp_path):
    full = hf_from_folder(image_folder)
    dd = datasets.DatasetDict({"train": full.select(range(12)), "validation": full.select(range(12, 16))})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert len(load_dataset(tmp_path / "dd")) == 4  # no test split: validation
    assert len(load_dataset(tmp_path / "dd", split="train")) == 12
    with pytest.raises(InputError) as e:
        load_dataset(tmp_path / "dd", split="test")
    assert e.value.field == "split" and "dataset_dict.json" in str(e.value) and "train, validation" in str(e.value)
    datasets.DatasetDict({"train": full, "extra": full}).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(InputError, match="--split"):
        load_dataset(tmp_path / "two")


def test_parquet_file_and_hub_style_shards(image_folder, tmp_path):
    folder_ds = load_dataset(image_folder)
    full = hf_from_folder(image_folder)
    full.to_parquet(str(tmp_path / "one.parquet"))
    ds = load_dataset(tmp_path / "one.parquet")
    assert ds.kind == "parquet" and ds.classes == NAMES
    assert [r.label for r in ds.records] == [r.label for r in folder_ds.records]
    assert ds.content_hash(3) == folder_ds.content_hash(3)
    # the hub layout: data/<split>-0000i-of-0000n.parquet, read one row group at a time
    data = tmp_path / "hub" / "data"
    data.mkdir(parents=True)
    full.select(range(0, 8)).to_parquet(str(data / "test-00000-of-00002.parquet"), batch_size=3)
    full.select(range(8, 16)).to_parquet(str(data / "test-00001-of-00002.parquet"), batch_size=3)
    full.select(range(0, 4)).to_parquet(str(data / "train-00000-of-00001.parquet"))
    import pyarrow.parquet as pq

    assert pq.ParquetFile(data / "test-00000-of-00002.parquet").metadata.num_row_groups == 3
    shards = load_dataset(tmp_path / "hub")
    assert len(shards) == 16 and "split 'test'" in shards.describe()
    for i in (0, 4, 8, 13):
        assert np.array_equal(np.asarray(shards.open(i)), np.asarray(folder_ds.open(i)))
    assert len(load_dataset(tmp_path / "hub", split="train")) == 4
    # a path,label parquet without images is still a manifest
    pd.DataFrame({"path": [f"images/{r.id}" for r in folder_ds.records],
                  "label": [r.label for r in folder_ds.records]}).to_parquet(tmp_path / "manifest.parquet")
    assert load_dataset(tmp_path / "manifest.parquet").kind == "manifest"


def test_plain_string_labels_and_named_columns(image_folder, tmp_path):
    ds = hf_from_folder(image_folder, "string").rename_columns({"image": "picture", "label": "category"})
    ds = ds.add_column("label", [0] * len(ds))  # a distractor: the user names the real one
    ds.to_parquet(str(tmp_path / "p.parquet"))
    with pytest.raises(InputError) as e:
        load_dataset(tmp_path / "p.parquet", label_column="nope")
    assert e.value.field == "label-column" and "p.parquet" in str(e.value) and "picture" in str(e.value)
    got = load_dataset(tmp_path / "p.parquet", label_column="category")
    assert got.image_column == "picture" and got.classes == NAMES  # found as the Image feature
    assert got.class_counts() == {c: 4 for c in NAMES}


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), seed * 30, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_bad_rows_and_bad_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    rows = {"image": [{"bytes": _png(0), "path": None}, {"bytes": b"not an image", "path": None},
                      {"bytes": _png(2), "path": None}], "label": [0, 1, 1]}
    datasets.Dataset.from_dict(rows, features=feats).to_parquet(str(tmp_path / "bad.parquet"))
    ds = load_dataset(tmp_path / "bad.parquet")
    assert [r.id for r in ds.records] == ["0", "1", "2"]  # no stored path: the row number
    same = {"image": [{"bytes": _png(k), "path": "x.png"} for k in range(3)], "label": [0, 0, 1]}
    datasets.Dataset.from_dict(same, features=feats).to_parquet(str(tmp_path / "same.parquet"))
    assert [r.id for r in load_dataset(tmp_path / "same.parquet").records] == ["0/x.png", "1/x.png", "2/x.png"]
    report = validate(ds)
    assert len(report.unreadable) == 1 and report.unreadable[0][0] == "1"
    assert "row 1 of bad.parquet" in report.unreadable[0][1]
    # label index out of range: one line naming the file and the column
    schema = pq.read_schema(tmp_path / "bad.parquet")
    table = pq.read_table(tmp_path / "bad.parquet")
    pq.write_table(table.set_column(1, "label", pa.array([0, 5, 1], pa.int64())).replace_schema_metadata(
        schema.metadata), tmp_path / "range.parquet")
    with pytest.raises(InputError) as e:
        load_dataset(tmp_path / "range.parquet")
    assert "range.parquet" in str(e.value) and e.value.field == "label" and "row 1" in str(e.value)
    # no image column at all: an image-less parquet with a 'label' column but no 'path' is not a dataset
    pd.DataFrame({"label": ["a"], "text": ["x"]}).to_parquet(tmp_path / "noimg.parquet")
    with pytest.raises(InputError) as e:
        load_dataset(tmp_path / "noimg.parquet", image_column="image")
    assert "noimg.parquet" in str(e.value)


def test_hub_ids_parse_and_fail_offline_with_a_hint(monkeypatch):
    from core.data.huggingface import parse_hub_id

    assert parse_hub_id("hf:uoft-cs/cifar10") == ("uoft-cs/cifar10", None)
    assert parse_hub_id("hf:uoft-cs/cifar10:test") == ("uoft-cs/cifar10", "test")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    with pytest.raises(InputError) as e:
        load_dataset("hf:semscale-tests/no-such-dataset:test")
    msg = str(e.value)
    assert "\n" not in msg and "save_to_disk" in msg and "--dataset FOLDER" in msg


def test_hub_id_with_a_local_copy_reads_the_datasets_cache(image_folder, tmp_path, monkeypatch):
    """hf: goes through datasets.load_dataset; a local parquet folder needs no network."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "local" / "data"
    data.mkdir(parents=True)
    hf_from_folder(image_folder).to_parquet(str(data / "test-00000-of-00001.parquet"))
    ds = load_dataset(f"hf:{tmp_path / 'local'}:test")
    assert ds.kind == "huggingface" and len(ds) == 16 and ds.classes == NAMES
    assert all(f.endswith(".arrow") for f in ds.files)
    folder_ds = load_dataset(image_folder)
    assert ds.content_hash(2) == folder_ds.content_hash(2)
    assert np.array_equal(np.asarray(ds.open(2)), np.asarray(open_image(folder_ds.records[2].path)))


def test_same_images_as_folder_save_to_disk_and_parquet_give_identical_predictions(tmp_path):
    """The done-when check: a real demo-resnet sweep over 20 images in three formats."""
    from core.models.openclip import BackboneSpec
    from core.demo.data import DEMO_CLASSES, write_demo_dataset
    from core.pipeline.runner import SweepConfig, run_sweep

    root = write_demo_dataset(tmp_path / "demo", n_per_class=2, image_size=32)
    folder = root / "images"
    files = sorted(folder.rglob("*.png"))
    assert len(files) == 20
    names = sorted(DEMO_CLASSES)
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    hf = datasets.Dataset.from_dict({"image": [str(f) for f in files],
                                     "label": [names.index(f.parent.name) for f in files]}, features=feats)
    hf.save_to_disk(str(tmp_path / "saved"))
    hf.to_parquet(str(tmp_path / "demo.parquet"))
    cache = tmp_path / "cache"
    runs = {}
    for name, source in (("folder", folder), ("saved", tmp_path / "saved"), ("parquet", tmp_path / "demo.parquet")):
        cfg = SweepConfig(dataset=str(source), out=str(tmp_path / f"run-{name}"), labels=str(root / "labels.csv"),
                          backbones=[BackboneSpec(model="demo-resnet", device="cpu")], templates=["a photo of a {}."],
                          levels=[1, 2], num_workers=2 if name == "parquet" else 0, bootstrap=50,
                          cache_dir=str(cache), ensemble_shots=[])
        result = run_sweep(cfg)
        assert result.status == "completed"
        runs[name] = (pd.read_csv(tmp_path / f"run-{name}" / "predictions.csv"), result.summary["backbones"])
    base, summary = runs["folder"]
    assert len(base) == 40 and summary["demo-resnet"]["images_encoded"] == 20
    cols = ["true_class", "level", "predicted_label", "predicted_class", "correct", "score"]
    for name in ("saved", "parquet"):
        preds, summ = runs[name]
        pd.testing.assert_frame_equal(preds[cols].reset_index(drop=True), base[cols].reset_index(drop=True))
        # the embedding cache keys on the image bytes: nothing is encoded a second time
        assert summ["demo-resnet"]["images_from_cache"] == 20 and summ["demo-resnet"]["images_encoded"] == 0
    # ids: to_parquet keeps the absolute paths, shortened to the folder's own class/file ids
    assert list(runs["parquet"][0]["image"]) == list(base["image"])
    assert list(runs["saved"][0]["image"]) == list(base["image"])  # file names repeat: class/file ids
    assert (base["correct"].mean()) > 0.5  # the demo model does classify the demo images


def test_cli_validate_reports_on_hf_folders_and_names_bad_splits(image_folder, tmp_path, capsys):
    from core.cli import EXIT_INPUT, EXIT_OK, main

    full = hf_from_folder(image_folder)
    datasets.DatasetDict({"train": full, "validation": full.select(range(8))}).save_to_disk(str(tmp_path / "dd"))
    capsys.readouterr()
    assert main(["validate", "--dataset", str(tmp_path / "dd"), "--split", "train"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "(huggingface), 16 images, 4 classes" in out and "Unreadable files: none" in out
    assert main(["validate", "--dataset", str(tmp_path / "dd"), "--split", "test"]) == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "dataset_dict.json" in err and "'split'" in err
    assert main(["validate", "--dataset", str(tmp_path / "dd"), "--image-column", "pixels"]) == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert "no column 'pixels'" in err and "data-00000-of-00001.arrow" in err and "image-column" in err


def test_plain_binary_and_bytes_only_image_columns(tmp_path):
    """Parquet written without the datasets library: images as binary, or a struct with bytes only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = [_png(i) for i in range(3)]
    pq.write_table(pa.table({"img": pa.array(data, pa.binary()), "labels": ["x", "y", "x"]}), tmp_path / "bin.parquet")
    ds = load_dataset(tmp_path / "bin.parquet", image_column="img")
    assert ds.image_column == "img" and ds.classes == ["x", "y"] and [r.id for r in ds.records] == ["0", "1", "2"]
    assert ds.content_hash(1) == hashlib.sha256(data[1]).hexdigest()
    struct = pa.array([{"bytes": d} for d in data], pa.struct([("bytes", pa.binary())]))
    pq.write_table(pa.table({"image": struct, "label": ["a", "b", "c"]}), tmp_path / "struct.parquet")
    ds = load_dataset(tmp_path / "struct.parquet")  # detected by shape: a struct with a bytes field
    assert ds.kind == "parquet" and np.asarray(ds.open(2))[0, 0, 0] == 60


def test_embedding_store_from_a_dataset_dict_split(tiny_model, image_folder, tmp_path):
    """`semscale embed` reads a DatasetDict split in work shards; the rows match the folder's."""
    from core.embedding.store import open_store
    from tests.core.test_store import embed_local

    full = hf_from_folder(image_folder)
    datasets.DatasetDict({"train": full.select(range(4)), "test": full}).save_to_disk(str(tmp_path / "dd"))
    res = embed_local(tiny_model, str(tmp_path / "dd"), tmp_path / "store-hf", tmp_path, split="test")
    ref = embed_local(tiny_model, str(image_folder), tmp_path / "store-folder", tmp_path)
    assert res.complete and res.n_rows == 16 and res.n_shards == 4
    hf_store, folder_store = open_store(tmp_path / "store-hf"), open_store(tmp_path / "store-folder")
    assert hf_store.labels == folder_store.labels
    np.testing.assert_allclose(np.asarray(hf_store.embeddings), np.asarray(folder_store.embeddings), atol=1e-6)
    assert ref.images_encoded == 0  # the folder's images were already cached under the same content keys
