"""Accuracy, confidence intervals, per-class recall and the scaling threshold."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def bootstrap_ci(correct: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the accuracy (mean of per-image credits in [0, 1]).

    Resampling n items with replacement only changes how often each distinct credit value
    is drawn: the counts are exactly Multinomial(n, shares of the values) (Binomial for a
    0/1 vector), so we draw those counts directly: same distribution as the
    index-resampling bootstrap, O(n_boot * values) instead of O(n_boot * n). Tied credits
    (1/m, see :func:`topk_correct`) are just more distinct values.
    """
    n = int(len(correct))
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values, counts = np.unique(np.asarray(correct, dtype=float), return_counts=True)
    if set(values.tolist()) <= {0.0, 1.0}:
        acc = rng.binomial(n, float(np.mean(correct)), size=n_boot) / n
    else:
        acc = rng.multinomial(n, counts / n, size=n_boot) @ values / n
    lo, hi = np.quantile(acc, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def top_choice(class_scores: np.ndarray) -> np.ndarray:
    """[N, C] chance that a fair random tie-break picks each class as the top-1 prediction.

    1/m for each of the m classes sharing the best score (a name listed under m classes is
    one category with m owners, so its classes share one score column exactly), 0 elsewhere.
    """
    s = np.asarray(class_scores)
    top = s == s.max(axis=1, keepdims=True)
    return (top / top.sum(axis=1, keepdims=True)).astype(np.float32)


def tie_ranks(class_scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h, t) per image: classes scoring strictly higher than the true class, and exactly as high (itself included)."""
    true = class_scores[np.arange(len(y)), y]
    return (class_scores > true[:, None]).sum(axis=1), (class_scores == true[:, None]).sum(axis=1)


def topk_correct(class_scores: np.ndarray, y: np.ndarray, k: int,
                 ranks: Optional[tuple[np.ndarray, np.ndarray]] = None) -> np.ndarray:
    """Expected top-k credit per image under a fair random tie-break, in [0, 1].

    With h classes scoring strictly higher than the true class and t classes (the true one
    included) scoring exactly the same, the true class's rank is uniform on h+1 … h+t, so
    the chance it is among the first k is clip((k - h) / t, 0, 1). Without ties this is
    1 or 0; for k = 1 and a best category with m owners it is 1/m. ``ranks`` (from
    :func:`tie_ranks`) saves recounting when several k are wanted.
    """
    k = min(k, class_scores.shape[1])
    if k <= 0:
        return np.zeros(len(y), dtype=float)
    higher, tied = ranks if ranks is not None else tie_ranks(class_scores, y)
    return np.clip((k - higher) / np.maximum(tied, 1), 0.0, 1.0)


def credit_count(credit: float) -> int | float:
    """A sum of credits as it goes into a table: an int when whole (no ties), else 6 decimals."""
    r = round(float(credit), 6)
    return int(r) if r.is_integer() else r


def per_class_recall(y: np.ndarray, correct: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(n images, recall) per class from per-image credits; recall is NaN for classes without images."""
    counts = np.bincount(y, minlength=n_classes)
    hits = np.bincount(y, weights=correct.astype(float), minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    return counts, recall


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n_classes: int,
                     weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Counts[true, predicted] of integer class indices; with ``weights`` each pair adds its weight
    (a tied prediction split 1/m over its m owning classes), so the counts are floats."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64 if weights is None else float)
    np.add.at(m, (np.asarray(y, dtype=np.intp), np.asarray(pred, dtype=np.intp)), 1 if weights is None else weights)
    return m


def peak_so_far(levels: Sequence[int], accuracy: Sequence[float]) -> dict:
    """Where a curve peaks so far, without a verdict: the verdict (rising, plateau, declining, fluctuating)
    is decided once, by the paired tests of :func:`core.stats.significance.threshold_verdict`."""
    levels = list(levels)
    acc = np.asarray(accuracy, dtype=float)
    if len(acc) == 0 or np.all(np.isnan(acc)):
        return {"peak_level": None, "peak_top1": None, "final_top1": None, "drop_after_peak": None, "trend": "unknown"}
    j = int(np.nanargmax(acc))
    return {"peak_level": levels[j], "peak_top1": float(acc[j]), "final_top1": float(acc[-1]),
            "drop_after_peak": float(acc[j] - acc[-1]), "trend": "unknown"}
