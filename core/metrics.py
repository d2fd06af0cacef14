"""Accuracy, confidence intervals, per-class recall and the scaling threshold."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def bootstrap_ci(correct: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the accuracy (mean of a 0/1 vector).

    Resampling n items with replacement from a 0/1 vector with k ones gives a count that
    is exactly Binomial(n, k/n), so we draw those counts directly: same distribution as
    the index-resampling bootstrap, O(n_boot) instead of O(n_boot * n).
    """
    n = int(len(correct))
    if n == 0:
        return float("nan"), float("nan")
    p = float(np.mean(correct))
    rng = np.random.default_rng(seed)
    acc = rng.binomial(n, p, size=n_boot) / n
    lo, hi = np.quantile(acc, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def topk_correct(class_scores: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Whether the true class is among the k highest class scores, per image."""
    k = min(k, class_scores.shape[1])
    if k <= 0:
        return np.zeros(len(y), dtype=bool)
    true = class_scores[np.arange(len(y)), y]
    # rank = number of classes scoring strictly higher than the true one
    higher = (class_scores > true[:, None]).sum(axis=1)
    return higher < k


def per_class_recall(y: np.ndarray, correct: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(n images, recall) per class; recall is NaN for classes without images."""
    counts = np.bincount(y, minlength=n_classes)
    hits = np.bincount(y, weights=correct.astype(float), minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    return counts, recall


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts[true, predicted] of integer class indices."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    return m


def threshold_analysis(levels: Sequence[int], accuracy: Sequence[float], tolerance: float = 0.01) -> dict:
    """Where accuracy peaks and what happens after it.

    trend: ``rising`` (the peak is the last level: no threshold reached yet),
    ``declining`` (the last level is more than ``tolerance`` below the peak) or
    ``plateau`` (it stays within ``tolerance`` of the peak).
    """
    levels = list(levels)
    acc = np.asarray(accuracy, dtype=float)
    if len(acc) == 0 or np.all(np.isnan(acc)):
        return {"peak_level": None, "peak_top1": None, "trend": "unknown", "drop_after_peak": None}
    j = int(np.nanargmax(acc))
    last = float(acc[-1])
    drop = float(acc[j] - last)
    if j == len(acc) - 1:
        trend = "rising" if len(acc) > 1 and acc[-1] - acc[0] > tolerance else "plateau"
    elif drop > tolerance:
        trend = "declining"
    else:
        trend = "plateau"
    return {
        "peak_level": levels[j],
        "peak_top1": float(acc[j]),
        "final_top1": last,
        "drop_after_peak": drop,
        "trend": trend,
        "tolerance": tolerance,
    }
