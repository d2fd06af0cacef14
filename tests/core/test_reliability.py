"""Hostile data, interruptions, corrupted caches, out-of-memory and unsafe files."""

import builtins
import multiprocessing as mp
import os
import sqlite3
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from core.models import openclip as backbones_mod
from core.models.openclip import BackboneSpec, load_backbone
from core.embedding.cache import EmbeddingCache
from core.data import load_dataset, validate
from core.embedding.embed import embed_images
from core.models.local_images import BatchBackoff
from core.util.errors import InputError
from core.util.events import Log
from core.data.images import BadImage, open_image
from core.pipeline.runner import SweepConfig, run_sweep
from tests.conftest import make_image


def _png_with_size(path: Path, w: int, h: int) -> None:
    """A valid PNG header claiming w x h pixels (no pixel data needed to trip the guard)."""
    Image.new("L", (4, 4)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # signature + length/type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", w, h)
    crc = zlib.crc32(bytes(data[12 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


def build_hostile(root: Path) -> dict[str, str]:
    """A dataset with every kind of trouble; returns {relative path: expected reason keyword}."""
    good, bad = root / "good", root / "bad"
    for d in (good, bad, root / "empty class"):
        d.mkdir(parents=True)
    make_image("red square", 0).save(good / "plain.png")
    expected_bad = {}
    (bad / "zero.jpg").write_bytes(b"")
    expected_bad["bad/zero.jpg"] = "empty"
    buf = good / "tmp.jpg"
    make_image("green circle", 1, size=64).save(buf, quality=95)
    (bad / "truncated.jpg").write_bytes(buf.read_bytes()[: len(buf.read_bytes()) // 2])
    buf.unlink()
    expected_bad["bad/truncated.jpg"] = "truncated"
    (bad / "text.jpg").write_text("this is not an image\n")
    expected_bad["bad/text.jpg"] = "not an image"
    _png_with_size(bad / "bomb.png", 50_000, 50_000)
    expected_bad["bad/bomb.png"] = "too large"
    os.symlink(root / "nowhere.png", bad / "dangling.png")
    expected_bad["bad/dangling.png"] = "symbolic link"
    # usable but unusual
    arr16 = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60).astype(np.uint16)
    Image.fromarray(arr16).save(good / "sixteen_bit.png")
    make_image("blue triangle", 2).convert("CMYK").save(good / "cmyk.jpg")
    pal = Image.new("P", (32, 32))
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.info["transparency"] = 0
    pal.save(good / "palette_transparent.png", transparency=0)
    rot = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    rot.save(good / "exif_rotated.jpg", exif=exif.tobytes())
    weird = os.fsencode(str(good)) + b"/caf\xe9_\xff.png"  # not valid UTF-8
    make_image("yellow bar", 3).save(weird.decode("utf-8", "surrogateescape"))
    make_image("yellow bar", 4).save(good / "名前 ünïcode.png")
    make_image("red square", 0).save(bad / "duplicate_of_good.png")  # same bytes as good/plain.png
    return expected_bad


def test_open_image_handles_unusual_modes(tmp_path):
    build_hostile(tmp_path)
    assert open_image(tmp_path / "good" / "exif_rotated.jpg").size == (20, 40)  # upright
    im16 = open_image(tmp_path / "good" / "sixteen_bit.png")
    assert im16.mode == "RGB" and np.asarray(im16).max() > 200  # scaled, not clipped to white/black
    assert open_image(tmp_path / "good" / "cmyk.jpg").mode == "RGB"
    pal = np.asarray(open_image(tmp_path / "good" / "palette_transparent.png"))
    assert (pal == 255).all()  # the transparent colour becomes the white background
    for name, reason in build_hostile(tmp_path / "again").items():
        with pytest.raises(BadImage, match=reason):
            open_image(tmp_path / "again" / name)


def test_permission_denied_is_a_reason_not_a_crash(tmp_path, monkeypatch):
    p = tmp_path / "locked.png"
    make_image("red square", 0).save(p)
    real_open = builtins.open

    def guarded(file, *a, **kw):
        if str(file) == str(p):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **kw)

    monkeypatch.setattr(builtins, "open", guarded)
    with pytest.raises(BadImage, match="permission denied"):
        open_image(p)


def test_hostile_dataset_sweep_completes(tiny_model, tmp_path):
    expected_bad = build_hostile(tmp_path / "data")
    labels = tmp_path / "labels.csv"
    labels.write_text("good,good\nbad,bad\nempty class,empty\n")
    cfg, ck = tiny_model
    config = SweepConfig(dataset=str(tmp_path / "data"), out=str(tmp_path / "run"), labels=str(labels),
                         backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu")], templates="plain",
                         num_workers=2, bootstrap=50, cache_dir=str(tmp_path / "cache"))
    res = run_sweep(config)
    assert res.status == "completed"
    skipped = pd.read_csv(tmp_path / "run" / "skipped.csv")
    assert skipped["path"].is_unique
    reasons = dict(zip(skipped["path"], skipped["reason"]))
    assert set(reasons) == set(expected_bad)
    for path, keyword in expected_bad.items():
        assert keyword in reasons[path].lower(), (path, reasons[path])
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv")
    usable = {"good/plain.png", "good/sixteen_bit.png", "good/cmyk.jpg", "good/palette_transparent.png",
              "good/exif_rotated.jpg", "good/caf\\xe9_\\xff.png", "good/名前 ünïcode.png", "bad/duplicate_of_good.png"}
    assert set(preds["image"]) == usable
    report = validate(load_dataset(tmp_path / "data"))
    assert report.empty_classes == ["empty class"]
    assert [d[0] for d in report.duplicates] == ["good/plain.png"] or [d[0] for d in report.duplicates] == ["bad/duplicate_of_good.png"]


def test_corrupted_cache_rows_are_recomputed(tiny_model, image_folder, tmp_path, monkeypatch):
    cfg, ck = tiny_model
    bb = load_backbone(BackboneSpec(cfg, checkpoint=ck, device="cpu"))
    ds = load_dataset(image_folder)
    cache_dir = tmp_path / "cache"
    with EmbeddingCache(cache_dir) as cache:
        first = embed_images(bb, ds, cache=cache, num_workers=0)
    db = next(cache_dir.glob("*.sqlite"), None)
    db = [p for p in cache_dir.glob("*.sqlite") if p.name != "files.sqlite"][0]
    con = sqlite3.connect(db)
    keys = [k for (k,) in con.execute("SELECT key FROM images ORDER BY key LIMIT 3")]
    con.execute("UPDATE images SET data = substr(data, 1, 20) WHERE key = ?", (keys[0],))  # truncated
    con.execute("UPDATE images SET crc = crc + 1 WHERE key = ?", (keys[1],))  # bit rot
    con.execute("UPDATE images SET data = zeroblob(length(data)) WHERE key = ?", (keys[2],))  # overwritten
    con.commit()
    con.close()
    calls = []
    original = backbones_mod.Backbone.encode_images
    monkeypatch.setattr(backbones_mod.Backbone, "encode_images", lambda self, x: calls.append(len(x)) or original(self, x))
    with EmbeddingCache(cache_dir) as cache:
        second = embed_images(bb, ds, cache=cache, num_workers=0)
        assert cache.discarded == 3
    assert sum(calls) == 3 and second.n_cached == 13
    np.testing.assert_allclose(first.matrix, second.matrix, atol=1e-5)


def test_truncated_cache_database_is_set_aside(tiny_model, image_folder, tmp_path):
    cfg, ck = tiny_model
    bb = load_backbone(BackboneSpec(cfg, checkpoint=ck, device="cpu"))
    ds = load_dataset(image_folder)
    cache_dir = tmp_path / "cache"
    with EmbeddingCache(cache_dir) as cache:
        embed_images(bb, ds, cache=cache, num_workers=0)
    db = [p for p in cache_dir.glob("*.sqlite") if p.name != "files.sqlite"][0]
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    db.write_bytes(b"garbage" * 10)
    with EmbeddingCache(cache_dir) as cache:
        again = embed_images(bb, ds, cache=cache, num_workers=0)
    assert again.n_encoded == 16 and len(again.matrix) == 16
    assert db.with_suffix(".sqlite.corrupt").exists()


def _concurrent_writer(cache_dir: str, seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    with EmbeddingCache(cache_dir) as cache:
        for start in range(0, n, 10):
            cache.put_images("shared-identity" * 2, [(f"k{i}", rng.normal(size=16).astype(np.float32) + i)
                                                     for i in range(start, start + 10)])


def test_concurrent_writers_do_not_corrupt_the_cache(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_concurrent_writer, args=(str(tmp_path), s, 200)) for s in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with EmbeddingCache(tmp_path) as cache:
        got = cache.get_images("shared-identity" * 2, [f"k{i}" for i in range(200)])
        assert len(got) == 200 and cache.discarded == 0
        # every row is one writer's complete vector (offset by its index)
        for i in (0, 57, 199):
            assert abs(float(got[f"k{i}"].mean()) - i) < 2


def test_out_of_memory_halves_the_batch_and_continues():
    def encoder(x):
        if len(x) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return x * 2

    logs = []
    backoff = BatchBackoff(16)
    out = backoff.run(encoder, torch.arange(10.0), logs.append)
    assert torch.equal(out, torch.arange(10.0) * 2)
    assert backoff.size == 2 and backoff.reductions == 2  # tried 10 -> 5 -> 2, then stays at 2
    assert all(isinstance(l, Log) and "out of memory" in l.message for l in logs)
    with pytest.raises(ValueError):
        BatchBackoff(4).run(lambda x: (_ for _ in ()).throw(ValueError("other")), torch.ones(4), logs.append)


def test_unsafe_checkpoint_is_refused(tiny_model, tmp_path):
    cfg, _ = tiny_model
    evil = tmp_path / "evil.pt"

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    torch.save({"state_dict": Payload()}, evil)
    with pytest.raises(InputError, match="safe loading"):
        load_backbone(BackboneSpec(cfg, checkpoint=str(evil), device="cpu"))
    assert not (tmp_path / "pwned").exists()


def test_interrupted_encoding_resumes_from_the_cache(tiny_model, image_folder, tmp_path, monkeypatch):
    """Embeddings are cached batch by batch: a re-run after a stop encodes only the rest."""
    from core.util.events import CancelToken, Cancelled, Progress

    cfg, ck = tiny_model
    bb = load_backbone(BackboneSpec(cfg, checkpoint=ck, device="cpu"))
    ds = load_dataset(image_folder)
    token = CancelToken()

    def stop_after_first_batch(ev):
        if isinstance(ev, Progress) and ev.stage == "encode-images" and ev.done >= 4:
            token.cancel()

    with EmbeddingCache(tmp_path / "cache") as cache, pytest.raises(Cancelled):
        embed_images(bb, ds, cache=cache, batch_size=4, num_workers=0, emit=stop_after_first_batch, cancel=token)
    calls = []
    original = backbones_mod.Backbone.encode_images
    monkeypatch.setattr(backbones_mod.Backbone, "encode_images", lambda self, x: calls.append(len(x)) or original(self, x))
    with EmbeddingCache(tmp_path / "cache") as cache:
        again = embed_images(bb, ds, cache=cache, batch_size=4, num_workers=0)
    assert again.n_cached == 4 and sum(calls) == 12 and len(again.matrix) == 16
