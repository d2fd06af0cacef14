"""Confusion counts of one backbone at one level, and which columns to show (Qt-free: the app's
confusion view and scripts share them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from core.results.views import confusion

TOP_CONFUSIONS = 300


@dataclass
class ConfusionCounts:
    """Counts at one level and the per-class recall at the first level (for "change")."""

    level: int
    first_level: int
    counts: np.ndarray  # [true, predicted], all classes
    first_recall: np.ndarray
    top: list[tuple[int, int, float]]  # (true, predicted, n), most frequent off-diagonal first (n fractional under ties)


def image_count(n: float) -> float | int:
    """A cell's image count: whole, or fractional where tied predictions are split over their owners."""
    return int(round(n)) if abs(n - round(n)) < 1e-9 else round(float(n), 2)


def confusion_columns(m: np.ndarray, rows: np.ndarray, extra: Optional[int] = None) -> np.ndarray:
    """The columns for the rows shown: their own classes (the diagonal), then the classes those rows
    are most often predicted as, most images first (up to ``extra``, default as many as rows).

    With "lowest recall first" at 1000 classes, the rows' own classes are rarely what they are
    confused with; columns chosen this way keep the confusions on screen instead of in "other".
    """
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return rows
    into = m[rows].sum(axis=0).astype(float)
    into[rows] = -1  # already columns
    order = np.argsort(-into, kind="stable")
    k = len(rows) if extra is None else extra
    targets = [int(j) for j in order[:k] if into[j] > 0]
    return np.concatenate([rows, np.asarray(targets, dtype=np.int64)])


def _recall(m: np.ndarray) -> np.ndarray:
    tot = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, np.diag(m) / np.maximum(tot, 1), np.nan)


def confusion_counts(predictions: pd.DataFrame, classes: list[str], backbone: str, level: int) -> ConfusionCounts:
    levels = sorted(int(v) for v in predictions["level"].unique()) if len(predictions) else [level]
    m = confusion(predictions, classes, level, backbone)
    first = levels[0]
    m1 = m if first == level else confusion(predictions, classes, first, backbone)
    off = m.copy()
    np.fill_diagonal(off, 0)
    flat = off.ravel()
    k = min(TOP_CONFUSIONS, int(np.count_nonzero(flat)))
    top: list[tuple[int, int, int]] = []
    if k:
        part = np.argpartition(-flat, k - 1)[:k]
        part = part[np.lexsort((part, -flat[part]))]
        top = [(int(i) // m.shape[1], int(i) % m.shape[1], image_count(flat[i])) for i in part]
    return ConfusionCounts(level, first, m, _recall(m1), top)
