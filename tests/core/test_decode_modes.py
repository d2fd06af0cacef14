"""Reduced-scale JPEG decoding (draft), the batched GPU-decode path (run on torchvision's CPU
decoder here), encoder threads and the decode mode in the cache identity."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from benchmarks.common import photo_like
from core.models.openclip import BackboneSpec, load_backbone, preprocess_side
from core.embedding.cache import EmbeddingCache
from core.models.registry import as_backbone
from core.data import load_dataset
from core.embedding.embed import embed_images
from core.models.local_images import _encoder_threads
from core.util.errors import InputError
from core.data.gpu_decode import decode_batch, read_jpeg, tensor_preprocess
from core.data.images import decode_at_least, open_image

ROOT = Path(__file__).resolve().parents[2]


def _jpeg(path: Path, size, seed=0, orientation: int = 1, quality=92) -> Path:
    arr = photo_like(np.random.default_rng(seed), size, (120, 100, 90))
    path.parent.mkdir(parents=True, exist_ok=True)
    ex = Image.Exif()
    if orientation != 1:
        ex[0x0112] = orientation
    Image.fromarray(arr).save(path, quality=quality, exif=ex.tobytes())
    return path


def _expected_draft_size(w: int, h: int, side: int) -> tuple[int, int]:
    """libjpeg scales 1/8, 1/4, 1/2 or 1, the largest with both sides still >= side (rounded up)."""
    if min(w, h) < 2 * side:
        return w, h
    s = next(s for s in (8, 4, 2, 1) if min(w // side, h // side) >= s)
    return -(-w // s), -(-h // s)


@pytest.mark.parametrize("size,side", [((500, 375), 32), ((500, 375), 224), ((4000, 3000), 224),
                                       ((640, 100), 32), ((300, 300), 64)])
def test_draft_keeps_the_shorter_side_at_least_the_model_input(tmp_path, size, side):
    p = _jpeg(tmp_path / "a.jpg", size)
    im = open_image(p, draft=side)
    assert im.size == _expected_draft_size(*size, side)
    assert min(im.size) >= side
    assert open_image(p).size == size  # no draft: full size
    assert open_image(p, draft=0).size == size


def test_draft_leaves_other_formats_alone(tmp_path):
    p = tmp_path / "a.png"
    Image.fromarray(photo_like(np.random.default_rng(0), (500, 375), (90, 90, 90))).save(p)
    assert open_image(p, draft=32).size == (500, 375)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_draft_and_exif_rotation(tmp_path, orientation):
    p = _jpeg(tmp_path / "r.jpg", (480, 320), orientation=orientation)
    full = open_image(p)
    drafted = open_image(p, draft=32)
    # upright in both, so the aspect agrees with PIL's own exif_transpose of the full image
    ref = ImageOps.exif_transpose(Image.open(p))
    assert full.size == ref.size
    assert (drafted.size[0] > drafted.size[1]) == (ref.size[0] > ref.size[1])
    a = np.asarray(full.resize((48, 32) if ref.size[0] > ref.size[1] else (32, 48), Image.BICUBIC), np.float32)
    b = np.asarray(drafted.resize(a.shape[1::-1], Image.BICUBIC), np.float32)
    assert np.abs(a - b).mean() < 4.0  # same picture, same way up


def test_decode_at_least_applies_inside_the_block_only(tmp_path):
    _jpeg(tmp_path / "c0" / "a.jpg", (500, 375))
    ds = load_dataset(str(tmp_path))
    with decode_at_least(32):
        assert ds.open(0).size == (63, 47)
    assert ds.open(0).size == (500, 375)


def _spec(tiny_model, **kw) -> BackboneSpec:
    cfg, ck = tiny_model
    return BackboneSpec(model=cfg, checkpoint=ck, device="cpu", **kw)


def test_decode_mode_is_part_of_the_identity(tiny_model):
    exact = load_backbone(_spec(tiny_model, decode="exact"), lazy=True)
    draft = load_backbone(_spec(tiny_model, decode="draft"), lazy=True)
    assert exact.identity != draft.identity
    assert draft.identity_info["decode"] == "draft"
    # full-size decoding keeps the identity it had before decode modes existed: old caches stay valid
    assert "decode" not in exact.identity_info
    assert exact.identity == hashlib.sha256(json.dumps(exact.identity_info, sort_keys=True, default=str)
                                            .encode()).hexdigest()


def test_specs_written_before_decode_modes_read_as_exact():
    assert BackboneSpec.from_dict({"model": "demo-vit"}).decode == "exact"
    assert BackboneSpec.from_dict({"model": "demo-vit", "decode": "draft"}).decode == "draft"
    assert BackboneSpec("demo-vit").decode == "draft"
    assert as_backbone({"model": "demo-vit"}).decode == "draft"


def test_unknown_or_unavailable_decode_mode_is_refused(tiny_model):
    with pytest.raises(InputError, match="decode") as e:
        load_backbone(_spec(tiny_model, decode="fast"), lazy=True)
    assert e.value.field == "decode"
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="needs a CUDA device"):
            load_backbone(_spec(tiny_model, decode="gpu"), lazy=True)


def test_preprocess_side_reads_the_model_input(tiny_model):
    bb = load_backbone(_spec(tiny_model))
    assert bb.input_side == 32 == preprocess_side(bb.preprocess)
    assert bb.draft_side == 32
    assert load_backbone(_spec(tiny_model, decode="exact")).draft_side is None


@pytest.fixture()
def photo_folder(tmp_path):
    root = tmp_path / "photos"
    for c in range(2):
        for i in range(5):
            _jpeg(root / f"c{c}" / f"{i}.jpg", (400, 300), seed=10 * c + i, orientation=6 if i == 2 else 1)
    return root


def test_draft_embeddings_match_an_independent_computation(tiny_model, photo_folder):
    bb = load_backbone(_spec(tiny_model, decode="draft"))
    ds = load_dataset(str(photo_folder))
    emb = embed_images(bb, ds, num_workers=0)
    xs = torch.stack([bb.preprocess(open_image(ds.records[i].path, draft=32)) for i in emb.indices])
    with torch.no_grad():
        ref = torch.nn.functional.normalize(bb.model.encode_image(xs), dim=-1).numpy()
    np.testing.assert_allclose(emb.matrix, ref, atol=1e-5)
    exact = embed_images(load_backbone(_spec(tiny_model, decode="exact")), ds, num_workers=0)
    cos = (emb.matrix * exact.matrix).sum(1)
    assert cos.min() > 0.98 and not np.allclose(emb.matrix, exact.matrix)


def test_cache_never_mixes_decode_modes(tiny_model, photo_folder, tmp_path):
    ds = load_dataset(str(photo_folder))
    with EmbeddingCache(tmp_path / "cache") as cache:
        first = embed_images(load_backbone(_spec(tiny_model, decode="draft")), ds, cache=cache, num_workers=0)
        again = embed_images(load_backbone(_spec(tiny_model, decode="draft")), ds, cache=cache, num_workers=0)
        other = embed_images(load_backbone(_spec(tiny_model, decode="exact")), ds, cache=cache, num_workers=0)
    assert (first.n_encoded, again.n_cached, other.n_cached, other.n_encoded) == (10, 10, 0, 10)


def test_batched_device_decoding_matches_the_pil_path(tmp_path):
    """The --decode gpu code path (here on torchvision's CPU decoder): EXIF, resize, crop, normalise."""
    from open_clip.transform import image_transform

    pre = image_transform(32, is_train=False)
    prep = tensor_preprocess(pre)
    paths = [_jpeg(tmp_path / f"o{o}.jpg", (120, 80), seed=o, orientation=o) for o in range(1, 9)]
    raws = [read_jpeg(p, 10**9) for p in paths]
    assert [r.orientation for r in raws] == list(range(1, 9))
    for p, x in zip(paths, decode_batch(raws, "cpu", prep)):
        ref = pre(open_image(p))
        assert x.shape == ref.shape
        assert float((x - ref).abs().mean()) < 0.01  # 1 grey level is 0.015 after normalising


def test_read_jpeg_leaves_non_jpegs_to_the_cpu_path(tmp_path):
    png = tmp_path / "a.png"
    Image.new("RGB", (40, 30), (1, 2, 3)).save(png)
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (40, 30), (1, 2, 3, 4)).save(cmyk)
    assert read_jpeg(png, 10**9) is None and read_jpeg(cmyk, 10**9) is None
    assert read_jpeg(_jpeg(tmp_path / "big.jpg", (100, 80)), 100) is None  # over the pixel limit


def test_device_decode_path_in_embed_images(tiny_model, photo_folder, tmp_path):
    """Raw JPEG bytes through the loader, batched decode, a broken file skipped with the CPU path's reason."""
    broken = photo_folder / "c0" / "broken.jpg"
    data = (photo_folder / "c0" / "0.jpg").read_bytes()
    broken.write_bytes(data[: len(data) // 3])
    Image.fromarray(photo_like(np.random.default_rng(5), (90, 60), (50, 60, 70))).save(photo_folder / "c1" / "p.png")
    ds = load_dataset(str(photo_folder))
    bb = load_backbone(_spec(tiny_model, decode="exact"))
    bb.spec = replace(bb.spec, decode="gpu")  # the GPU code path, decoding on the CPU
    emb = embed_images(bb, ds, num_workers=2, batch_size=4)
    exact = embed_images(load_backbone(_spec(tiny_model, decode="exact")), ds, num_workers=0)
    assert [s[0] for s in emb.skipped] == [s[0] for s in exact.skipped] == ["c0/broken.jpg"]
    assert emb.skipped[0][1] == exact.skipped[0][1]
    np.testing.assert_array_equal(emb.indices, exact.indices)
    assert (emb.matrix * exact.matrix).sum(1).min() > 0.999


def test_encoder_threads_leave_the_workers_their_cores():
    before = torch.get_num_threads()
    import os

    cores = os.cpu_count() or 1
    with _encoder_threads("cpu", 1):
        assert torch.get_num_threads() == max(1, min(before, cores - 1))
    assert torch.get_num_threads() == before
    with _encoder_threads("cpu", 0):
        assert torch.get_num_threads() == before


def test_bench_gpu_fails_fast_without_cuda_and_runs_as_a_cpu_smoke_test(tmp_path):
    if not torch.cuda.is_available():
        p = subprocess.run([sys.executable, "-m", "benchmarks.bench_gpu", "--out", str(tmp_path / "x.md")], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode != 0 and "no CUDA device" in p.stderr
    out = tmp_path / "gpu.md"
    p = subprocess.run([sys.executable, "-m", "benchmarks.bench_gpu", "--cpu-smoke", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads(out.with_suffix(".json").read_text())
    row = res["models"]["smoke-tiny"]
    for key in ("encoder_only", "text_prompts_per_s", "decode_only_draft", "decode_only_exact", "decode_only_gpu",
                "end_to_end_draft", "end_to_end_exact", "end_to_end_gpu"):
        assert row[key] > 0, key
    assert "| smoke-tiny |" in out.read_text()
