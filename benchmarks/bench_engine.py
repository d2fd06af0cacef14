"""Engine benchmarks: level amortisation, cache, text share, throughput, scaling."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from core.models.openclip import BackboneSpec, load_backbone
from core.embedding.cache import EmbeddingCache
from core.data import load_dataset
from core.embedding.embed import embed_names
from core.models.local_images import _DecodeSet, _collate, default_workers
from core.labels.labelset import load_labels, preset_templates
from core.demo.tiny import tiny_config
from core.pipeline.runner import SweepConfig, run_sweep

from benchmarks.common import peak_rss_of, random_checkpoint, write_images, write_labels

TINY_CONFIG = tiny_config(embed_dim=64)


def _sweep(data, labels, spec, out, levels, cache_dir=None, use_cache=True, **kw) -> float:
    cfg = SweepConfig(dataset=str(data), out=str(out), backbones=[spec], labels=str(labels), templates="plain",
                      levels=levels, cache_dir=str(cache_dir) if cache_dir else None, use_cache=use_cache,
                      bootstrap=1000, **kw)
    t0 = time.perf_counter()
    res = run_sweep(cfg)
    assert res.status == "completed"
    return time.perf_counter() - t0


def amortisation_and_cache(tmp: Path, n_images: int = 192, model: str = "ViT-B-32") -> dict:
    """6-level vs 1-level sweep (cold image cache), then a warm re-run with other labels."""
    ck = random_checkpoint(model, tmp)
    spec = BackboneSpec(model, checkpoint=str(ck), device="auto")
    data = write_images(tmp / "amort", n_images, n_classes=8, size=(320, 240), fmt="jpg")
    labels = write_labels(tmp / "labels.csv", 8, 32)
    levels6 = [1, 2, 4, 8, 16, 32]

    # text embeddings for every name are computed once up front and shared, so both runs
    # start with a cold *image* cache (the text cost is measured on its own below)
    warm_text = tmp / "cache-text"
    bb = load_backbone(spec)
    ls = load_labels(labels)
    t0 = time.perf_counter()
    with EmbeddingCache(warm_text) as c:
        embed_names(bb, ls.all_names(), ["a photo of a {}."], cache=c)
    text_seconds = time.perf_counter() - t0
    del bb
    for name in ("c1", "c6"):
        shutil.copytree(warm_text, tmp / name)

    t1 = _sweep(data, labels, spec, tmp / "run1", [1], tmp / "c1")
    t6 = _sweep(data, labels, spec, tmp / "run6", levels6, tmp / "c6")
    # fully cold (images and text), for reference
    t1_cold = _sweep(data, labels, spec, tmp / "run1c", [1], tmp / "cold1")
    t6_cold = _sweep(data, labels, spec, tmp / "run6c", levels6, tmp / "cold6")

    # warm re-runs: the same names re-ranked (all text cached) and brand-new synonyms
    reranked = tmp / "labels_reranked.csv"
    rows = (tmp / "labels.csv").read_text().splitlines()
    body = rows[1:]
    reranked.write_text("\n".join([rows[0]] + body[::-1]) + "\n")
    t_warm = _sweep(data, reranked, spec, tmp / "run_warm", levels6, tmp / "c6")
    fresh = write_labels(tmp / "labels_new.csv", 8, 32, tag="new ")
    t_warm_new = _sweep(data, fresh, spec, tmp / "run_warm_new", levels6, tmp / "c6")
    summary = json.loads((tmp / "run6" / "run.json").read_text())["summary"]["backbones"]
    s6 = next(iter(summary.values()))
    return {
        "model": model, "n_images": n_images, "levels": levels6, "n_names": 8 * 32,
        "t_1level": t1, "t_6level": t6, "ratio_6_vs_1": t6 / t1,
        "t_1level_cold": t1_cold, "t_6level_cold": t6_cold, "ratio_6_vs_1_cold": t6_cold / t1_cold,
        "t_warm_reranked": t_warm, "ratio_warm_reranked": t_warm / t6,
        "t_warm_new_names": t_warm_new, "ratio_warm_new_names": t_warm_new / t6,
        "t_text_all_names": text_seconds,
        "encoder_images_per_s": n_images / s6["seconds_images"],
    }


def decode_bound(tmp: Path, n_images: int = 192, model: str = "ViT-B-32") -> dict:
    """Images/s of decode + preprocess alone (the engine's DataLoader, no encoder)."""
    import torch
    from torch.utils.data import DataLoader

    import open_clip

    _, _, preprocess = open_clip.create_model_and_transforms(model)
    data = tmp / "amort"
    ds = load_dataset(data)
    workers = default_workers(len(ds))
    loader = DataLoader(_DecodeSet(ds, range(len(ds)), preprocess), batch_size=64, num_workers=workers,
                        collate_fn=_collate)
    t0 = time.perf_counter()
    n = 0
    for idx, xs, bad in loader:
        n += len(idx)
    dt = time.perf_counter() - t0
    return {"decode_images_per_s": n / dt, "workers": workers, "torch_threads": torch.get_num_threads()}


def text_share(tmp: Path) -> dict:
    """100 classes x 16 names x 80 templates: text time vs the whole sweep."""
    import resources
    from core.models.openclip import demo_index

    model = "demo-vit" if "demo-vit" in demo_index() else None
    if model:
        spec = BackboneSpec(model, device="auto")
    else:
        cfg = tmp / "bench-tiny.json"
        cfg.write_text(json.dumps(TINY_CONFIG))
        import open_clip

        open_clip.add_model_config(cfg)
        spec = BackboneSpec(str(cfg), checkpoint=str(random_checkpoint("bench-tiny", tmp)), device="auto")
    data = write_images(tmp / "text-data", 500, n_classes=100, size=(64, 64))
    labels = write_labels(tmp / "labels100.csv", 100, 16)
    cache = tmp / "text-cache"
    cfg = SweepConfig(dataset=str(data), out=str(tmp / "text-run"), backbones=[spec], labels=str(labels),
                      templates="openai", cache_dir=str(cache))
    t0 = time.perf_counter()
    res = run_sweep(cfg)
    total = time.perf_counter() - t0
    s = next(iter(res.summary["backbones"].values()))
    t_rerun0 = time.perf_counter()
    run_sweep(SweepConfig(**{**cfg.__dict__, "out": str(tmp / "text-run2")}))
    rerun = time.perf_counter() - t_rerun0
    # the same question for ViT-B-32 on this machine: measured prompt and image rates, extrapolated
    bb = load_backbone(BackboneSpec("ViT-B-32", checkpoint=str(random_checkpoint("ViT-B-32", tmp)), device="auto"))
    prompts = [t.format(f"thing {i}") for i, t in enumerate(preset_templates("openai"))] * 4
    t1 = time.perf_counter()
    for i in range(0, len(prompts), 256):
        bb.encode_texts(prompts[i : i + 256])
    vitb_prompts_per_s = len(prompts) / (time.perf_counter() - t1)
    return {
        "model": spec.display, "n_prompts": 100 * 16 * 80, "n_images": 500,
        "t_total": total, "t_text": s["seconds_text"], "t_images": s["seconds_images"],
        "text_share": s["seconds_text"] / total, "t_rerun_cached": rerun,
        "vitb32_prompts_per_s": vitb_prompts_per_s,
        "vitb32_text_hours_128k": 128_000 / vitb_prompts_per_s / 3600,
    }


def scaling(tmp: Path, sizes=(1_000, 10_000, 50_000)) -> dict:
    """Time and peak memory vs number of images and levels (tiny backbone, subprocesses)."""
    cfg = tmp / "bench-tiny.json"
    cfg.write_text(json.dumps(TINY_CONFIG))
    import open_clip

    open_clip.add_model_config(cfg)
    ck = random_checkpoint("bench-tiny", tmp)
    labels = write_labels(tmp / "labels10.csv", 10, 32)
    rows = []
    for n in sizes:
        data = write_images(tmp / f"scale{n}", n, n_classes=10, size=(32, 32))
        for levels in ("1", "1,2,4,8,16,32"):
            if n != 10_000 and levels == "1":
                continue
            args = ["sweep", "--dataset", str(data), "--labels", str(labels), "--model", str(cfg), "--checkpoint",
                    str(ck), "--templates", "plain", "--levels", levels, "--no-cache", "--quiet",
                    "--ensemble-shots", "", "--out", str(tmp / f"scale-run-{n}-{len(levels)}")]
            dt, peak = peak_rss_of(args)
            rows.append({"n_images": n, "levels": levels, "seconds": dt, "peak_mib": peak})
        shutil.rmtree(data, ignore_errors=True)
    return {"rows": rows}
