"""Embedding stores (``semscale embed`` with the local engine), WebDataset shards, and sweeps
that read a store instead of images. No Ray here (see test_distributed.py)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.models.openclip import BackboneSpec, load_backbone
from core.cli import main
from core.data import load_dataset
from core.embedding.distributed import EmbedConfig, run_embed
from core.embedding.embed import embed_images
from core.util.errors import InputError
from core.results.runs import load_run
from core.embedding.store import StoreWriter, open_store
from core.pipeline.runner import SweepConfig, run_sweep
from tests.conftest import CLASSES, make_image

CLASS_LIST = list(CLASSES)


# ---------------------------------------------------------------- helpers (also used by test_distributed.py)


class _TarfileWriter:
    """The part of webdataset.TarWriter used here, with tarfile (when webdataset is absent)."""

    def __init__(self, path: str) -> None:
        import tarfile

        self.tar = tarfile.open(path, "w")

    def write(self, sample: dict) -> None:
        import io
        import tarfile

        for ext, value in sample.items():
            if ext == "__key__":
                continue
            if hasattr(value, "save"):
                buf = io.BytesIO()
                value.save(buf, format=ext.upper())
                data = buf.getvalue()
            elif isinstance(value, bytes):
                data = value
            else:
                data = (json.dumps(value) if isinstance(value, dict) else str(value)).encode()
            info = tarfile.TarInfo(f"{sample['__key__']}.{ext}")
            info.size = len(data)
            self.tar.addfile(info, io.BytesIO(data))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.tar.close()


def write_shards(root: Path, n_shards: int = 3, per_shard: int = 6, bad: bool = True) -> Path:
    """WebDataset shards (written with webdataset's TarWriter when installed) with labels as .cls
    indices (shard 0), .txt names (1) and .json (2+), a classnames.txt, one corrupt image and one
    sample without a label."""
    try:
        from webdataset import TarWriter
    except ImportError:
        TarWriter = _TarfileWriter

    root.mkdir(parents=True, exist_ok=True)
    (root / "classnames.txt").write_text("\n".join(CLASS_LIST) + "\n")
    for s in range(n_shards):
        with TarWriter(str(root / f"data-{s:03d}.tar")) as w:
            for i in range(per_shard):
                c = CLASS_LIST[(s + i) % len(CLASS_LIST)]
                sample = {"__key__": f"img{s}{i:03d}", "png": make_image(c, 100 * s + i)}
                if s == 0:
                    sample["cls"] = CLASS_LIST.index(c)
                elif s == 1:
                    sample["txt"] = c
                else:
                    sample["json"] = {"label": c}
                w.write(sample)
            if bad and s == 1:
                w.write({"__key__": "broken", "jpg": b"this is not a jpeg", "cls": 1})
            if bad and s == n_shards - 1:
                w.write({"__key__": "unlabelled", "png": make_image(CLASS_LIST[0], 999)})
    return root


def spec_of(tiny_model, **kw) -> BackboneSpec:
    cfg, ck = tiny_model
    return BackboneSpec(model=cfg, checkpoint=ck, device="cpu", **kw)


def embed_local(tiny_model, dataset, out, tmp_path, **kw) -> object:
    kw.setdefault("shard_size", 5)
    return run_embed(EmbedConfig(dataset=dataset, out=str(out), backbone=spec_of(tiny_model), engine="local",
                                 num_workers=0, cache_dir=str(tmp_path / "cache"), **kw))


def with_bad_image(folder: Path) -> Path:
    (folder / "red square" / "zz-broken.png").write_bytes(b"not an image at all")
    return folder


# ---------------------------------------------------------------- WebDataset shards


def test_webdataset_shards_every_way_of_naming_them(tmp_path):
    root = write_shards(tmp_path / "wds")
    forms = [str(root), str(root / "data-{000..002}.tar"),
             f"{root / 'data-000.tar'}::{root / 'data-001.tar'}::{root / 'data-002.tar'}",
             [str(root / f"data-{i:03d}.tar") for i in range(3)]]
    listings = []
    for form in forms:
        ds = load_dataset(form)
        assert ds.kind == "webdataset"
        listings.append([(r.id, r.label) for r in ds.records])
        assert ds.classes == CLASS_LIST  # from classnames.txt, in its order
        assert ("data-002.tar/unlabelled", "sample has no class label (.cls, .txt or .json entry)") in ds.problems
    assert all(l == listings[0] for l in listings)
    ids = [i for i, _ in listings[0]]
    assert len(ids) == 3 * 6 + 1 and len(set(ids)) == len(ids)  # + the corrupt image (found when decoding)
    labels = dict(listings[0])
    # .cls index (mapped through classnames.txt), .txt name and .json label all give class names
    assert labels["data-000.tar/img0000"] == CLASS_LIST[0]
    assert labels["data-001.tar/img1000"] == CLASS_LIST[1]
    assert labels["data-002.tar/img2001"] == CLASS_LIST[3]
    ds = load_dataset(root / "data-001.tar")
    assert len(ds) == 7
    im = ds.open(0)
    assert im.mode == "RGB" and im.size == (40, 40)


def test_webdataset_errors_are_clear(tmp_path):
    with pytest.raises(InputError, match="shard not found"):
        load_dataset(str(tmp_path / "missing-{000..001}.tar"))
    root = write_shards(tmp_path / "wds", n_shards=2, bad=False)
    data = (root / "data-001.tar").read_bytes()
    (root / "data-001.tar").write_bytes(data[: len(data) // 2 + 100])  # cut mid-way
    ds = load_dataset(root)
    assert 6 <= len(ds) < 12  # shard 0 intact, the samples before the cut in shard 1 still usable
    assert [p for p, _ in ds.problems] == ["data-001.tar"] and "ends early" in ds.problems[0][1]
    (root / "data-001.tar").write_bytes(b"garbage" * 10)
    ds = load_dataset(root)
    assert len(ds) == 6 and ds.problems[0][0] == "data-001.tar"


# ---------------------------------------------------------------- the store (local engine)


def test_local_store_layout_and_api(tiny_model, image_folder, tmp_path):
    with_bad_image(image_folder)
    res = embed_local(tiny_model, str(image_folder), tmp_path / "store", tmp_path)
    assert res.complete and res.n_rows == 16 and res.n_skipped == 1 and res.n_shards == 4  # 17 images / 5
    root = tmp_path / "store"
    m = json.loads((root / "manifest.json").read_text())
    assert m["format"] == "semscale-embeddings" and m["complete"] and m["shard_size"] == 5
    assert m["backbone"]["embed_dim"] == 32 and m["backbone"]["logit_scale"] > 0
    assert m["backbone"]["spec"]["checkpoint"] == tiny_model[1]
    assert m["dataset"]["n_images"] == 17 and m["dataset"]["classes"] == sorted(CLASSES)
    assert [s["file"] for s in m["shards"]] == [f"shards/part-{i:05d}.parquet" for i in range(4)]
    t = pq.read_table(root / "shards" / "part-00000.parquet")
    assert t.schema.field("id").type == pa.string() and t.schema.field("label").type == pa.string()
    assert t.schema.field("embedding").type == pa.list_(pa.float32(), 32)
    skipped = pd.read_csv(root / "skipped.csv")
    assert list(skipped["path"]) == ["red square/zz-broken.png"]
    assert "not an image" in skipped["reason"][0]

    # the store holds exactly what embed_images gives for the same images
    bb = load_backbone(spec_of(tiny_model))
    ds = load_dataset(image_folder)
    ref = embed_images(bb, ds, num_workers=0)
    st = open_store(root, verify=True)
    assert st.ids == [ds.records[i].id for i in ref.indices]
    assert st.labels == [ds.records[i].label for i in ref.indices]
    X = np.asarray(st.embeddings)
    assert X.dtype == np.float32 and X.shape == (16, 32)
    np.testing.assert_allclose(X, ref.matrix, atol=1e-6)
    # streamed and memory-mapped access agree with the materialised matrix
    np.testing.assert_array_equal(np.concatenate([x for _, _, x in st.iter_batches()]), X)
    np.testing.assert_array_equal(st.embeddings[3:12], X[3:12])
    np.testing.assert_array_equal(st.embeddings[[15, 0, 7]], X[[15, 0, 7]])
    mm = st.memmap()
    assert isinstance(mm, np.memmap) and np.array_equal(mm, X)
    assert st.spec.checkpoint == tiny_model[1] and st.embed_dim == 32 and st.complete

    # a re-run has nothing to do
    again = embed_local(tiny_model, str(image_folder), root, tmp_path)
    assert again.shards_before == 4 and again.shards_written == 0 and again.n_rows == 16


def test_local_store_from_webdataset_matches_images(tiny_model, tmp_path):
    root = write_shards(tmp_path / "wds")
    res = embed_local(tiny_model, str(root / "data-{000..002}.tar"), tmp_path / "store", tmp_path)
    assert res.complete and res.n_rows == 18
    st = open_store(tmp_path / "store")
    reasons = dict(st.skipped())
    assert "data-001.tar/broken" in reasons and "data-002.tar/unlabelled" in reasons
    bb = load_backbone(spec_of(tiny_model))
    import torch

    ds = load_dataset(root)
    xs = torch.stack([bb.preprocess(ds.open(i)) for i, r in enumerate(ds.records) if r.id in set(st.ids)])
    np.testing.assert_allclose(np.asarray(st.embeddings), bb.encode_images(xs).numpy(), atol=1e-5)


def test_restart_after_failure_local(tiny_model, image_folder, tmp_path, monkeypatch):
    import core.embedding.embed

    original = core.embedding.embed.embed_images
    failed = []

    def fail_once_on_shard_2(backbone, sub, **kw):  # shard 2 of size 4 starts at the 9th image
        if not failed and sub.records[0].id == load_dataset(image_folder).records[8].id:
            failed.append(True)
            raise RuntimeError("injected encoder failure on shard 2")
        return original(backbone, sub, **kw)

    monkeypatch.setattr(core.embedding.embed, "embed_images", fail_once_on_shard_2)
    with pytest.raises(RuntimeError, match="injected"):
        embed_local(tiny_model, str(image_folder), tmp_path / "store", tmp_path, shard_size=4)
    st = open_store(tmp_path / "store")
    assert [s["index"] for s in st.shards] == [0, 1] and not st.complete  # shards before the failure are kept
    assert len(st.ids) == 8
    with pytest.raises(InputError, match="incomplete"):
        run_sweep(SweepConfig(dataset="", out=str(tmp_path / "run"), backbones=[], embeddings=[str(tmp_path / "store")]))
    # a partial shard left by a crash is never counted: a stray part file and a temp file
    (tmp_path / "store" / "shards" / "part-00003.parquet").write_bytes(b"half a file")
    (tmp_path / "store" / "shards" / ".part-00002.parquet.dead.tmp").write_bytes(b"junk")
    assert [s["index"] for s in open_store(tmp_path / "store").shards] == [0, 1]

    res = embed_local(tiny_model, str(image_folder), tmp_path / "store", tmp_path, shard_size=None)  # the store's size
    assert res.complete and res.shards_before == 2 and res.shards_written == 2
    st = open_store(tmp_path / "store", verify=True)
    assert len(st.ids) == len(set(st.ids)) == 16
    assert st.ids == [r.id for r in load_dataset(image_folder).records]
    assert not list((tmp_path / "store" / "shards").glob(".*.tmp"))
    ref = open_store(tmp_path / "store")  # same rows as a clean run
    clean = embed_local(tiny_model, str(image_folder), tmp_path / "clean", tmp_path, shard_size=4)
    np.testing.assert_allclose(np.asarray(open_store(tmp_path / "clean").embeddings), np.asarray(ref.embeddings),
                               atol=1e-6)
    assert clean.n_rows == 16


def test_resume_refuses_a_different_backbone_listing_or_shard_size(tiny_model, image_folder, tmp_path):
    embed_local(tiny_model, str(image_folder), tmp_path / "store", tmp_path, shard_size=4)
    with pytest.raises(InputError, match="shard-size 4"):
        embed_local(tiny_model, str(image_folder), tmp_path / "store", tmp_path, shard_size=8)
    make_image("red square", 77).save(image_folder / "red square" / "new.png")
    with pytest.raises(InputError, match="another image listing"):
        embed_local(tiny_model, str(image_folder), tmp_path / "store", tmp_path)
    (image_folder / "red square" / "new.png").unlink()
    import open_clip
    import torch

    torch.manual_seed(5)
    other = tmp_path / "other.pt"
    open_clip.add_model_config(tiny_model[0])
    torch.save(open_clip.create_model("tiny-clip").state_dict(), other)
    with pytest.raises(InputError, match="another backbone"):
        run_embed(EmbedConfig(dataset=str(image_folder), out=str(tmp_path / "store"), num_workers=0,
                              backbone=BackboneSpec(model=tiny_model[0], checkpoint=str(other), device="cpu")))
    (tmp_path / "notastore").mkdir()
    (tmp_path / "notastore" / "x.txt").write_text("x")
    with pytest.raises(InputError, match="not an embedding store"):
        embed_local(tiny_model, str(image_folder), tmp_path / "notastore", tmp_path)
    with pytest.raises(InputError, match="another 'semscale embed'"):
        held = StoreWriter.open(tmp_path / "store", backbone=json.loads((tmp_path / "store" / "manifest.json")
                                                                        .read_text())["backbone"],
                                dataset=json.loads((tmp_path / "store" / "manifest.json").read_text())["dataset"],
                                shard_size=None)
        try:
            embed_local(tiny_model, str(image_folder), tmp_path / "store", tmp_path)
        finally:
            held.close()


# ---------------------------------------------------------------- sweeps from a store


def sweep_config(tiny_model, out, labels, **kw):
    defaults = dict(templates=["a photo of a {}.", "a {} image."], num_workers=0, bootstrap=200, levels=[1, 2, 4])
    defaults.update(kw)
    return SweepConfig(out=str(out), labels=str(labels), **defaults)


def test_sweep_from_store_matches_sweep_from_images(tiny_model, image_folder, labels_csv, tmp_path, monkeypatch):
    with_bad_image(image_folder)
    cache = str(tmp_path / "cache")
    from_images = run_sweep(sweep_config(tiny_model, tmp_path / "run-images", labels_csv, dataset=str(image_folder),
                                         backbones=[spec_of(tiny_model)], cache_dir=cache))
    embed_local(tiny_model, str(image_folder), tmp_path / "store", tmp_path, use_cache=False)
    # the images are gone: the store sweep must never open one
    shutil.move(str(image_folder), str(tmp_path / "moved-away"))
    from_store = run_sweep(sweep_config(tiny_model, tmp_path / "run-store", labels_csv, dataset="",
                                        backbones=[], embeddings=[str(tmp_path / "store")], cache_dir=cache))
    assert from_images.status == from_store.status == "completed"
    a, b = load_run(tmp_path / "run-images"), load_run(tmp_path / "run-store")
    # the store is encoded by another process layout (shards, the local engine), so the encoder may
    # run with another intra-op thread count: embeddings agree to float rounding, and a score
    # rounded to 5 decimals may land on the other side of a rounding boundary
    pd.testing.assert_frame_equal(a.predictions.drop(columns="score"), b.predictions.drop(columns="score"))
    np.testing.assert_allclose(a.predictions["score"], b.predictions["score"], atol=1.01e-5, rtol=0)
    cols = ["backbone", "ordering", "level", "n_categories", "n_images", "top1", "top5", "ci_low", "ci_high", "n_correct"]
    pd.testing.assert_frame_equal(a.levels[cols], b.levels[cols])
    pd.testing.assert_frame_equal(a.per_class, b.per_class)
    assert set(a.skipped["path"]) == set(b.skipped["path"]) == {"red square/zz-broken.png"}
    assert sorted(p.name for p in (tmp_path / "run-store").iterdir()) == sorted(p.name for p in (tmp_path / "run-images").iterdir())
    s = b.meta["summary"]["backbones"]["tiny-clip"]
    assert s["model_loaded"] is False  # prompts cached, images from the store: the network is never built
    assert s["images_encoded"] == 0
    assert b.config["embeddings"] == [str(tmp_path / "store")] and b.config["dataset_kind"] == "embeddings"


def test_cli_embed_then_multi_backbone_sweep_from_stores(tiny_model, image_folder, labels_csv, tmp_path, capsys):
    import open_clip
    import torch

    cfg, ck = tiny_model
    open_clip.add_model_config(cfg)
    torch.manual_seed(1)
    ck2 = tmp_path / "seed1.pt"
    torch.save(open_clip.create_model("tiny-clip").state_dict(), ck2)
    for name, c in (("a", ck), ("b", ck2)):
        rc = main(["embed", "--dataset", str(image_folder), "--model", cfg, "--checkpoint", str(c), "--device", "cpu",
                   "--engine", "local", "--shard-size", "6", "--workers", "0", "--no-cache", "--quiet",
                   "--out", str(tmp_path / f"store-{name}")])
        assert rc == 0
        assert capsys.readouterr().out.strip() == str(tmp_path / f"store-{name}")
    common = ["--labels", str(labels_csv), "--templates", "plain", "--levels", "1,2", "--device", "cpu",
              "--ensemble-shots", "1", "--ensemble-splits", "2", "--bootstrap", "100", "--no-cache", "--quiet"]
    models = ["--model", f"{cfg}={ck}", "--model", f"{cfg}={ck2}"]
    assert main(["sweep", "--dataset", str(image_folder), *models, "--workers", "0", *common,
                 "--out", str(tmp_path / "run-images")]) == 0
    assert main(["sweep", "--embeddings", str(tmp_path / "store-a"), "--embeddings", str(tmp_path / "store-b"),
                 *models, *common, "--out", str(tmp_path / "run-store")]) == 0
    a, b = load_run(tmp_path / "run-images"), load_run(tmp_path / "run-store")
    pd.testing.assert_frame_equal(a.predictions, b.predictions)
    for table in ("backbones.csv", "pairs.csv", "ensembles.csv"):
        ta, tb = pd.read_csv(tmp_path / "run-images" / table), pd.read_csv(tmp_path / "run-store" / table)
        pd.testing.assert_frame_equal(ta, tb, check_exact=False, atol=1e-6)
    # without --model the stores name their own backbones (two stores of one model name need labels: error)
    rc = main(["sweep", "--embeddings", str(tmp_path / "store-a"), *common, "--out", str(tmp_path / "run-one")])
    assert rc == 0
    assert load_run(tmp_path / "run-one").status == "completed"
    assert main(["sweep", "--labels", str(labels_csv), "--out", str(tmp_path / "x")]) == 2


def test_ray_driver_commits_each_shard_as_soon_as_its_last_row_arrives(image_folder, tmp_path):
    """The Ray engine's driver-side consumer (no Ray needed): rows arrive in any order, a shard is
    written the moment it is complete and dropped from memory; duplicates are refused."""
    from core.embedding.distributed import _ShardCollector
    from core.util.events import ignore_events
    from core.embedding.shards import plan_shards
    from core.embedding.store import dataset_info

    ds = load_dataset(image_folder)  # 16 images -> shards of 5: 0-4, 5-9, 10-14, 15
    backbone = {"name": "fake", "spec": {"model": "fake"}, "identity": "fake-identity", "embed_dim": 4}
    writer = StoreWriter.open(tmp_path / "store", backbone=backbone, dataset=dataset_info(ds, image_folder), shard_size=5)
    plan = plan_shards(len(ds), 5)
    col = _ShardCollector(ds, writer, plan, writer.pending(), "fake", ignore_events)
    rng = np.random.default_rng(0)

    def batch(pos, bad=()):
        return {"shard": np.array([p // 5 for p in pos]), "pos": np.array(pos),
                "bad": np.array(["broken" if p in bad else "" for p in pos], dtype=object),
                "embedding": rng.random((len(pos), 4), dtype=np.float32)}

    col.add(batch([7, 5, 6]))
    assert writer.finished() == set()
    col.add(batch([9, 0, 8, 1]))
    assert writer.finished() == {1}  # committed at once, before anything else is complete
    assert 1 not in col.parts and sum(len(c[0]) for p in col.parts.values() for c in p) == 2  # shard 0's rows only
    col.add(batch([15]))
    col.add(batch([2, 3, 4, 10, 11], bad=(3,)))
    assert writer.finished() == {0, 1, 3}
    with pytest.raises(RuntimeError, match="arrived twice"):
        col.add(batch([16 - 1]))
    col.add(batch([12, 13, 14]))
    assert col.unfinished == [] and writer.pending() == []
    writer.close()
    st = open_store(tmp_path / "store")
    assert st.ids == [r.id for i, r in enumerate(ds.records) if i != 3]  # listing order restored
    assert st.skipped() == [(ds.records[3].id, "broken")]
