"""The text side at ImageNet-21k shape: 21,000 classes x 16 names x 7 templates (2.35M prompts).

* Encode rate of ``embed_names`` with a bundled demo backbone, measured on a subset of the
  names (all 7 templates) and extrapolated to 2.35M prompts (labelled as such: encoding
  them all takes too long on a small CPU).
* Cache size and re-run lookup at the full 2.35M prompts: the cache is filled through its
  own ``put_texts`` with random unit vectors (labelled: not model outputs; the size and
  lookup cost depend only on the number of rows and the embedding width), then a re-run's
  ``embed_names`` over every name finds all prompts cached. The lookup of earlier versions
  (``get_texts`` into a dict, then a Python mean per name) is timed on the same cache.
"""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

import numpy as np

N_CLASSES, N_NAMES = 21_000, 16


def _names(n_classes: int, n_names: int) -> list[str]:
    return [f"class {c} synonym {j}" for c in range(n_classes) for j in range(n_names)]


def _legacy_lookup(cache, backbone, names: list[str], templates: list[str]) -> np.ndarray:
    """What ``embed_names`` did on a fully cached re-run before the batched lookup."""
    pairs = [(t, n) for n in names for t in templates]
    known = cache.get_texts(backbone.identity, pairs)
    dim = backbone.embed_dim
    out = np.zeros((len(names), dim), dtype=np.float32)
    for j, n in enumerate(names):
        m = np.mean([known[(t, n)] for t in templates], axis=0)
        out[j] = m / max(np.linalg.norm(m), 1e-12)
    return out


def _dir_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in d.iterdir() if f.is_file())


def text_21k(tmp: Path, model: str = "demo-vit", n_classes: int = N_CLASSES, encode_names: int = 3_000,
             legacy: bool = True) -> dict:
    from core.models.openclip import BackboneSpec, load_backbone
    from core.embedding.cache import EmbeddingCache
    from core.embedding.embed import embed_names
    from core.labels.labelset import load_templates

    templates = load_templates("simple")
    names = _names(n_classes, N_NAMES)
    n_prompts = len(names) * len(templates)
    backbone = load_backbone(BackboneSpec(model, device="cpu"))
    dim = backbone.embed_dim

    # 1. encode rate on a subset (fresh cache, so every prompt is encoded and written)
    subset = names[:encode_names]
    t0 = time.perf_counter()
    with EmbeddingCache(tmp / "text-encode") as c:
        embed_names(backbone, subset, templates, cache=c)
    t_encode = time.perf_counter() - t0
    rate = len(subset) * len(templates) / t_encode

    # 2. fill the cache to 2.35M prompts through its own API (random unit vectors)
    root = tmp / "text-21k"
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    with EmbeddingCache(root) as c:
        chunk = 20_000  # names per transaction
        for s in range(0, len(names), chunk):
            part = names[s : s + chunk]
            v = rng.standard_normal((len(part) * len(templates), dim)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            pairs = [(t, n) for n in part for t in templates]
            c.put_texts(backbone.identity, zip(pairs, v), backbone.identity_info)
    t_fill = time.perf_counter() - t0
    size = _dir_bytes(root)

    # 3. a re-run: every prompt cached (fresh process state: a new connection, nothing in memory)
    gc.collect()
    with EmbeddingCache(root) as c:
        t0 = time.perf_counter()
        mat, found = c.get_text_matrix(backbone.identity, [(t, n) for n in names for t in templates], dim)
        t_matrix = time.perf_counter() - t0
        assert found.all()
        del mat
    gc.collect()
    with EmbeddingCache(root) as c:
        t0 = time.perf_counter()
        emb = embed_names(backbone, names, templates, cache=c)
        t_rerun = time.perf_counter() - t0
    assert emb.shape == (len(names), dim)
    # a new synonym list touching 1% of the classes: lookups by key, not scans
    few = names[: len(names) // 100]
    with EmbeddingCache(root) as c:
        t0 = time.perf_counter()
        embed_names(backbone, few, templates, cache=c)
        t_few = time.perf_counter() - t0
    t_legacy = None
    if legacy:
        gc.collect()
        with EmbeddingCache(root) as c:
            t0 = time.perf_counter()
            old = _legacy_lookup(c, backbone, names, templates)
            t_legacy = time.perf_counter() - t0
        assert np.allclose(old, emb, atol=1e-6)
        del old
    return {
        "model": model, "n_classes": n_classes, "names_per_class": N_NAMES, "n_templates": len(templates),
        "n_names": len(names), "n_prompts": n_prompts, "dim": dim,
        "encode_subset_prompts": len(subset) * len(templates), "encode_seconds": t_encode,
        "prompts_per_s": rate, "extrapolated_encode_hours": n_prompts / rate / 3600,
        "fill_seconds": t_fill, "fill_prompts_per_s": n_prompts / t_fill,
        "cache_bytes": size, "cache_bytes_per_prompt": size / n_prompts,
        "lookup_matrix_seconds": t_matrix, "rerun_embed_names_seconds": t_rerun,
        "rerun_prompts_per_s": n_prompts / t_rerun, "rerun_vs_encode": t_rerun / (n_prompts / rate),
        "one_percent_names_seconds": t_few, "one_percent_prompts": len(few) * len(templates),
        "legacy_rerun_seconds": t_legacy,
        "speedup_vs_legacy": (t_legacy / t_rerun) if t_legacy else None,
    }


def markdown(t: dict) -> list[str]:
    """The results.md section."""
    legacy = (f"{t['legacy_rerun_seconds']:.1f} s with the lookup of earlier versions (**{t['speedup_vs_legacy']:.1f}x**)"
              if t.get("legacy_rerun_seconds") else "")
    return ["", "## Text side at ImageNet-21k shape",
            f"{t['n_classes']:,} classes x {t['names_per_class']} names x {t['n_templates']} templates = "
            f"{t['n_prompts']:,} prompts, backbone {t['model']} (embedding width {t['dim']}).", "",
            "| measurement | value |", "|---|---|",
            f"| `embed_names` encode rate (measured on {t['encode_subset_prompts']:,} prompts) | "
            f"{t['prompts_per_s']:.0f} prompts/s |",
            f"| encoding all {t['n_prompts']:,} prompts once (*extrapolated* from that rate) | "
            f"{t['extrapolated_encode_hours']:.1f} h |",
            f"| cache on disk, {t['n_prompts']:,} prompts (filled through `put_texts` with random unit vectors) | "
            f"{t['cache_bytes'] / 2**30:.2f} GiB ({t['cache_bytes_per_prompt']:.0f} bytes per prompt); written at "
            f"{t['fill_prompts_per_s']:,.0f} prompts/s |",
            f"| re-run, every prompt cached: `embed_names` over all {t['n_names']:,} names | "
            f"{t['rerun_embed_names_seconds']:.1f} s ({t['rerun_prompts_per_s']:,.0f} prompts/s; "
            f"{100 * t['rerun_vs_encode']:.2f}% of encoding them){'; ' + legacy if legacy else ''} |",
            f"| the cache lookup alone (`get_text_matrix`), first read after filling | {t['lookup_matrix_seconds']:.1f} s |",
            f"| a synonym list over 1% of the names ({t['one_percent_prompts']:,} prompts, all cached) | "
            f"{t['one_percent_names_seconds']:.2f} s |"] + ([f"", f"Note: {t['note']}."] if t.get("note") else [])


if __name__ == "__main__":
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=N_CLASSES)
    ap.add_argument("--encode-names", type=int, default=3_000)
    ap.add_argument("--no-legacy", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="semscale-text21k-") as d:
        print(json.dumps(text_21k(Path(d), n_classes=args.classes, encode_names=args.encode_names,
                                  legacy=not args.no_legacy), indent=1))
