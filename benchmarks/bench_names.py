"""names.csv at ImageNet shape: what the per-name attribution adds to scoring a sweep's levels.

1000 classes x 16 names, 50,000 images, 512-d embeddings (synthetic, each image near one of its
class's names; a few generic names shared by 20 classes), levels 1, 2, 4, 8, 16. The reference is
the sweep's scoring of every level from embeddings in memory (``score_level``, what a cached
re-run spends its time on besides writing CSVs); the same levels scored again with the names
tally attached give its cost, in flat and in pooled mode. ``python -m benchmarks --only names``.
"""

from __future__ import annotations

import time

import numpy as np


def _data(n_images: int, n_classes: int, n_names: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    classes = [f"class {c:04d}" for c in range(n_classes)]
    names = {c: [f"{c} name {j}" for j in range(n_names)] for c in classes}
    for c in classes[: min(20, n_classes)]:  # a generic name listed by 20 classes, at rank 8
        names[c][min(7, n_names - 1)] = "thing"
    vocab = sorted({n for v in names.values() for n in v})
    row = {n: j for j, n in enumerate(vocab)}
    E = rng.standard_normal((len(vocab), dim)).astype(np.float32)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    y = rng.integers(0, n_classes, n_images)
    pick = rng.integers(0, n_names, n_images)
    X = E[[row[names[classes[c]][j]] for c, j in zip(y, pick)]] + 1.2 * rng.standard_normal((n_images, dim)).astype(np.float32) / np.sqrt(dim)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return classes, names, y.astype(np.int64), X.astype(np.float32), E, row


def names_cost(n_images: int = 50_000, n_classes: int = 1000, n_names: int = 16, dim: int = 512,
               levels=(1, 2, 4, 8, 16)) -> dict:
    from core.pipeline.names import level_names
    from core.pipeline.scoring import EmbeddingScores, LevelPlan, score_level

    classes, names, y, X, E, row = _data(n_images, n_classes, n_names, dim)
    scores = EmbeddingScores(X, E, row)
    out = {"n_images": n_images, "n_classes": n_classes, "n_names": n_names, "dim": dim, "levels": list(levels)}
    for mode in ("flat", "pooled"):
        t_score = t_names = 0.0
        n_rows = 0
        for li, k in enumerate(levels):
            plan = LevelPlan.build(names, classes, k, mode)
            t0 = time.perf_counter()
            score_level(scores, y, plan)
            t_score += time.perf_counter() - t0
            t0 = time.perf_counter()
            tally = level_names(scores, y, plan, levels[li - 1] if li else 0)
            score_level(scores, y, plan, attribution=tally)
            n_rows += len(tally.rows(backbone="b", ordering=0, names="synonyms"))
            t_names += time.perf_counter() - t0
        out[mode] = {"score_seconds": round(t_score, 2), "with_names_seconds": round(t_names, 2),
                     "names_seconds": round(t_names - t_score, 2), "ratio": round((t_names - t_score) / t_score, 3),
                     "rows": n_rows}
    return out


def sweep_cost(tmp, n_images: int = 50_000, n_classes: int = 1000, n_names: int = 16, dim: int = 512,
               levels=(1, 2, 4, 8, 16)) -> dict:
    """A whole sweep from embeddings in memory (``core.score_embeddings``: predictions.csv, flips, per-class
    rows, bootstrap CIs …) with and without names.csv, text embeddings cached by a first run."""
    from pathlib import Path

    import core.api
    from core.demo.tiny import write_tiny_model

    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    cfg, ck = write_tiny_model(tmp / "model", embed_dim=dim)
    classes, names, y, X, _E, _row = _data(n_images, n_classes, n_names, dim)
    labels = tmp / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c in classes for n in names[c]))
    spec = core.api.BackboneSpec(str(cfg), checkpoint=str(ck), device="cpu")
    true = [classes[c] for c in y]
    out = {"n_images": n_images, "n_classes": n_classes, "levels": list(levels)}

    def one(name: str, mode: str, save_names: bool) -> float:
        t0 = time.perf_counter()
        run = core.api.score_embeddings(X, true, str(labels), spec, list(levels), "plain", mode, str(tmp / name),
                                        cache_dir=str(tmp / "cache"), save_names=save_names, ensemble_shots=[])
        assert run.status == "completed"
        return time.perf_counter() - t0

    one("warm", "flat", False)  # the names' text embeddings into the cache
    for mode in ("flat", "pooled"):
        without = one(f"{mode}-without", mode, False)
        with_ = one(f"{mode}-with", mode, True)
        out[mode] = {"sweep_seconds": round(without, 1), "with_names_seconds": round(with_, 1),
                     "ratio": round((with_ - without) / without, 3)}
    return out


def markdown(r: dict) -> list[str]:
    out = ["", "## names.csv (per-name attribution)",
           f"{r['n_classes']} classes x {r['n_names']} names, {r['n_images']:,} images, {r['dim']}-d embeddings in "
           f"memory (synthetic), levels {', '.join(map(str, r['levels']))}. *Scoring*: every level scored as the sweep "
           "scores it; *names*: the extra time of the same levels with the names tally attached (flat: every name's "
           "wins and leave-one-out at every level; pooled: leave-one-out of the names entering at each level).", "",
           "| mode | scoring (s) | names.csv extra (s) | extra / scoring | rows |", "|---|---|---|---|---|"]
    for mode in ("flat", "pooled"):
        m = r[mode]
        out.append(f"| {mode} | {m['score_seconds']:.1f} | {m['names_seconds']:.1f} | **{m['ratio']:.2f}** | "
                   f"{m['rows']:,} |")
    w = r.get("sweep")
    if w:
        out += ["", f"The whole sweep ({w['n_images']:,} images, {w['n_classes']} classes, embeddings in memory through "
                "`core.score_embeddings`, text embeddings cached: scoring, predictions.csv, flips.csv, per-class rows, "
                "bootstrap CIs), with names.csv against `--no-names-table`:", "",
                "| mode | sweep without names.csv (s) | with (s) | extra / sweep |", "|---|---|---|---|"]
        for mode in ("flat", "pooled"):
            m = w[mode]
            out.append(f"| {mode} | {m['sweep_seconds']:.1f} | {m['with_names_seconds']:.1f} | **{m['ratio']:.2f}** |")
    return out


def run(tmp, quick: bool = False) -> dict:
    size = dict(n_images=5_000, n_classes=200) if quick else {}
    r = names_cost(**size)
    r["sweep"] = sweep_cost(tmp, **size)
    return r


if __name__ == "__main__":
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(tmp), indent=1))
