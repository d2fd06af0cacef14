"""Which classes a per-class view shows, and in what order (plain numpy, no Qt).

At 1,000 classes a heatmap or confusion matrix with every row is unreadable; the views
show the classes a search matches, sorted by recall, by the change from the first level
or by frequency, and cut to the top N. The same function serves the recall heatmap and
the confusion matrix so both agree on what "largest change" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

# key -> title, in the order the selectors list them
SORTS: dict[str, str] = {
    "label": "label order",
    "recall_low": "lowest recall first",
    "recall_high": "highest recall first",
    "change": "largest change from 1 name",
    "gain": "largest gains from 1 name",
    "loss": "largest losses from 1 name",
    "frequent": "most frequent first",
    "rare": "least frequent first",
}
FREQUENCY_SORTS = ("frequent", "rare")
DEFAULT_TOP_N = 40


@dataclass(frozen=True)
class ClassSelection:
    """What the user asked for: a search text, a sort and how many rows (0 = all)."""

    text: str = ""
    sort: str = "label"
    top_n: int = DEFAULT_TOP_N


def select_classes(classes: Sequence[str], selection: ClassSelection, recall: Optional[np.ndarray] = None,
                   change: Optional[np.ndarray] = None, frequency: Optional[np.ndarray] = None) -> np.ndarray:
    """Indices into ``classes`` to show, in display order.

    ``recall`` (the level shown), ``change`` (that level minus the first) and ``frequency``
    are per class, NaN where unknown; classes with an unknown sort key go last, ties keep
    label order. A sort whose key is missing falls back to label order.
    """
    n = len(classes)
    idx = np.arange(n)
    text = selection.text.strip().casefold()
    if text:
        idx = np.array([i for i in idx if text in str(classes[i]).casefold()], dtype=np.int64)
    key = _sort_key(selection.sort, recall, change, frequency)
    if key is not None and len(idx):
        k = key[idx]
        # NaN last, stable so equal keys keep label order
        k = np.where(np.isnan(k), np.inf, k)
        idx = idx[np.argsort(k, kind="stable")]
    if selection.top_n and selection.top_n > 0:
        idx = idx[: selection.top_n]
    return idx.astype(np.int64)


def _sort_key(sort: str, recall, change, frequency) -> Optional[np.ndarray]:
    """Ascending key for ``np.argsort`` (negated where the largest should come first)."""
    def arr(a) -> Optional[np.ndarray]:
        return None if a is None else np.asarray(a, dtype=float)

    recall, change, frequency = arr(recall), arr(change), arr(frequency)
    if sort == "recall_low" and recall is not None:
        return recall
    if sort == "recall_high" and recall is not None:
        return -recall
    if sort == "change" and change is not None:
        return -np.abs(change)
    if sort == "gain" and change is not None:
        return -change
    if sort == "loss" and change is not None:
        return change
    if sort == "frequent" and frequency is not None:
        return -frequency
    if sort == "rare" and frequency is not None:
        return frequency
    return None


def frequency_of(classes: Sequence[str], table: "object") -> Optional[np.ndarray]:
    """Per-class frequency from the run's ``frequency`` table (a DataFrame), NaN where absent."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame) or table.empty or not {"class", "frequency"} <= set(table.columns):
        return None
    d = table.drop_duplicates("class")
    freq = dict(zip(d["class"].astype(str), pd.to_numeric(d["frequency"], errors="coerce").astype(float)))
    return np.array([freq.get(str(c), np.nan) for c in classes], dtype=float)
