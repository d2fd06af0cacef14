"""Made-up results for the previews and tests of the plots."""

from __future__ import annotations

import math

import numpy as np

from core.results.views import ResultsData


def sample_results(levels=(1, 2, 4, 8), backbones=("demo-vit", "demo-resnet"), n_classes: int = 10) -> ResultsData:
    """Plausible numbers for the previews (rises, then falls past a threshold)."""
    rng = np.random.default_rng(0)
    res = ResultsData(planned_levels=list(levels))
    classes = [f"class {i}" for i in range(n_classes)]
    for bi, b in enumerate(backbones):
        for k in levels:
            lk = math.log2(k)
            base = 0.55 + 0.16 * lk - 0.04 * lk ** 2 - 0.07 * bi
            per = [{"backbone": b, "ordering": 0, "level": k, "class": c, "n_images": 30,
                    "recall": float(np.clip(base + rng.normal(0, 0.15), 0, 1)),
                    "top5_recall": float(np.clip(base + 0.25 + rng.normal(0, 0.05), 0, 1)), "n_names": k}
                   for c in classes]
            res.add_level({"backbone": b, "ordering": 0, "level": k, "n_categories": n_classes * k, "n_images": 300,
                           "top1": base, "top5": min(1.0, base + 0.25), "ci_low": base - 0.05, "ci_high": base + 0.05,
                           "n_correct": int(base * 300), "seconds": 0.01}, per)
    return res
