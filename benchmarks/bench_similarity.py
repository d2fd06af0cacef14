"""Representation similarity at ImageNet-validation shape: linear CKA and k-NN agreement of two
backbones' image embeddings (20,000 images, widths 512 and 768, 1000 classes of 20 images).

The embeddings are synthetic (a shared 64-d signal plus independent noise, L2-normalised like
the engine's): timing does not depend on their values. CKA uses the feature-space formula, so
it is also timed against the textbook n x n Gram (HSIC) form on a subset that fits in memory.
``python -m benchmarks.bench_similarity`` prints the numbers; ``python -m benchmarks --only
similarity`` writes them to results.md.
"""

from __future__ import annotations

import json
import time

import numpy as np

from benchmarks.common import best_of


def _cpu(fn, repeat: int = 3) -> float:
    """Least CPU time of this process (all its threads) over ``repeat`` calls: what the work costs
    whatever else the machine runs; on idle cores the wall time is at most this."""
    best = float("inf")
    for _ in range(repeat):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best


def _features(n: int, dims: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n, 64)).astype(np.float32)
    out = []
    for d in dims:
        x = signal @ rng.normal(size=(64, d)).astype(np.float32) + 2.0 * rng.normal(size=(n, d)).astype(np.float32)
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return out[0], out[1]


def _gram_cka(X: np.ndarray, Y: np.ndarray) -> float:
    n = len(X)
    H = np.eye(n, dtype=np.float32) - 1.0 / n
    K, L = H @ (X @ X.T) @ H, H @ (Y @ Y.T) @ H
    return float((K * L).sum() / np.sqrt((K * K).sum() * (L * L).sum()))


def similarity(n_images: int = 20_000, n_classes: int = 1000, dims: tuple[int, int] = (512, 768),
               k: int = 10, gram_images: int = 2_000) -> dict:
    import torch

    from core.stats.similarity import knn_indices, linear_cka, similarity_rows

    X, Y = _features(n_images, dims)
    y = np.arange(n_images) % n_classes
    classes = [f"class {i}" for i in range(n_classes)]
    linear_cka(X[:100], Y[:100])  # warm-up: torch's first product
    t_cka, cka = best_of(lambda: linear_cka(X, Y))
    cpu_cka = _cpu(lambda: linear_cka(X, Y))
    t_per_class, _ = best_of(lambda: [linear_cka(X[y == c], Y[y == c]) for c in range(n_classes)], 1)
    c0 = time.process_time()
    t_knn, _ = best_of(lambda: knn_indices(X, k), 1)
    cpu_knn = time.process_time() - c0
    t_rows, rows = best_of(lambda: similarity_rows({"a": X, "b": Y}, y, classes, k=k), 1)
    xs, ys = X[:gram_images], Y[:gram_images]
    t_feat_small, c_feat = best_of(lambda: linear_cka(xs, ys))
    t_gram_small, c_gram = best_of(lambda: _gram_cka(xs, ys))
    overall = rows[0]
    return {"n_images": n_images, "n_classes": n_classes, "dims": list(dims), "k": k,
            "torch_threads": torch.get_num_threads(),
            "cka_seconds": round(t_cka, 3), "cka_cpu_seconds": round(cpu_cka, 3), "cka": round(cka, 4), "cka_per_class_seconds": round(t_per_class, 3),
            "knn_one_backbone_seconds": round(t_knn, 2), "knn_one_backbone_cpu_seconds": round(cpu_knn, 2), "similarity_csv_seconds": round(t_rows, 2),
            "knn_agreement": round(overall["knn_agreement"], 4), "n_rows": len(rows),
            "gram_images": gram_images, "cka_feature_form_small_seconds": round(t_feat_small, 4),
            "cka_gram_form_small_seconds": round(t_gram_small, 3),
            "gram_vs_feature_difference": float(abs(c_feat - c_gram))}


def markdown(s: dict) -> list[str]:
    d = " and ".join(map(str, s["dims"]))
    return ["", "## Representation similarity",
            f"Two backbones' image embeddings (widths {d}), {s['n_images']:,} images in {s['n_classes']} classes, "
            f"k = {s['k']}, torch on {s['torch_threads']} threads (`core.stats.similarity`).", "",
            "| measurement | seconds | target |", "|---|---|---|",
            f"| linear CKA, all images (feature-space form), wall | {s['cka_seconds']:.2f} | ≤ 2 |",
            f"| linear CKA, all images, CPU time of all threads | **{s.get('cka_cpu_seconds', float('nan')):.2f}** | |",
            f"| linear CKA of every class ({s['n_classes']} x {s['n_images'] // s['n_classes']} images) | "
            f"{s['cka_per_class_seconds']:.2f} | |",
            f"| {s['k']} nearest neighbours of every image, one backbone (blocks of the cosine matrix) | "
            f"{s['knn_one_backbone_seconds']:.1f} (CPU {s.get('knn_one_backbone_cpu_seconds', float('nan')):.1f}) | |",
            f"| similarity.csv: CKA + k-NN agreement, overall and per class ({s['n_rows']:,} rows) | "
            f"{s['similarity_csv_seconds']:.1f} | |",
            f"| CKA on {s['gram_images']:,} images: feature-space form | {s['cka_feature_form_small_seconds']:.3f} | |",
            f"| CKA on {s['gram_images']:,} images: n x n Gram (HSIC) form | {s['cka_gram_form_small_seconds']:.3f} | |",
            "", "Wall times grow with the load of other work on the machine (see the note at the top); the CPU "
            "time of the process counts only its own work, and on idle cores the wall time is at most that. "
            f"The two forms agree to {s['gram_vs_feature_difference']:.1e}; the Gram form needs "
            f"{s['n_images'] ** 2 * 4 / 2 ** 30:.1f} GiB per matrix at {s['n_images']:,} images. The k-NN search "
            "costs an n x n matrix product per backbone (blocked so memory stays at 64 MB) and is the bulk of the stage."]


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Linear CKA and k-NN agreement at 20,000 images x 2 backbones "
                                             "(the `similarity` section of `python -m benchmarks`).")
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--classes", type=int, default=1000)
    args = ap.parse_args()
    r = similarity(n_images=args.images, n_classes=args.classes)
    print(json.dumps(r, indent=1))
    print("\n".join(markdown(r)))
