"""Per-name attribution: which images each name wins, whose images they are, and what the name is worth.

Pure numpy on one level's scores, fed chunk by chunk (the sweep's own scoring chunks), so a
level's attribution costs a few passes over arrays the scorer already holds. Definitions
(docs/statistics.md, "Names"):

* **flat mode** — every image's top-1 unit goes to the classes tied at the best score (the m
  owners of the winning category, 1/m each, the run's tie policy); within each such class to
  its best-scoring name. ``images_won`` sums those shares per (class, name); ``won_correct``
  the part from images of that class, ``won_from_other_classes`` the rest. ``credit_change``
  is leave-one-out: the run's total top-1 credit (all images) with the level's lists minus
  the total credit with the same lists where only this class lacks this name, at every level.
* **pooled mode** — no single name wins an image, so everything is leave-one-out, for the
  names that enter at the level (rank above the previous level's): ``credit_change`` as in
  flat mode; ``images_won`` the top-1 share the class gains on each image with the name
  against without it (positive parts only), split into the class's own images and the
  others'. Names already present at the previous level get blanks (NaN).

Removing a name changes one class's column only, so every leave-one-out is scored against
per-image summaries of the other classes (best score and how many share it, the one below
it, the true class's rank): no level is re-scored per name.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

NAME_COLUMNS = ["backbone", "ordering", "names", "level", "class", "name", "rank", "n_owners", "images_won",
                "won_correct", "won_from_other_classes", "credit_change"]
VALUE_COLUMNS = ["images_won", "won_correct", "won_from_other_classes", "credit_change"]


def _count(v: float) -> int | float:
    """A sum of credits as it goes into a table (an int when whole, else 6 decimals)."""
    if not np.isfinite(v):
        return float("nan")
    r = round(float(v), 6)
    return int(r) if r.is_integer() else r


class _Summary:
    """Per-image facts about the class scores [n, C] that any one-column change is judged against."""

    def __init__(self, cs: np.ndarray, y: np.ndarray) -> None:
        n = len(y)
        self.a = cs.max(axis=1)  # the best score
        at_a = cs == self.a[:, None]
        self.na = at_a.sum(axis=1)
        below = np.where(at_a, -np.inf, cs)
        self.b = below.max(axis=1)  # the best score below it
        self.nb = (below == self.b[:, None]).sum(axis=1)
        self.T = cs[np.arange(n), y]  # the true class's score
        self.h = (cs > self.T[:, None]).sum(axis=1)  # classes strictly above it
        self.t = (cs == self.T[:, None]).sum(axis=1)  # classes tied with it (itself included)
        self.credit = (self.h == 0) / self.t
        self.top = at_a

    def share_after(self, ii: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Top-1 share of a class on images ``ii`` once its score goes from ``old`` to ``new``."""
        a, na, b, nb = self.a[ii], self.na[ii], self.b[ii], self.nb[ii]
        alone = (old == a) & (na == 1)  # the class was the only best: the others' best is the next value
        mo = np.where(alone, b, a)
        ko = np.where(alone, nb, na - (old == a))
        return np.where(new > mo, 1.0, np.where(new == mo, 1.0 / (1 + ko), 0.0))

    def credit_after(self, ii: np.ndarray, is_true: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Top-1 credit of images ``ii`` once one class's score goes from ``old`` to ``new``
        (``is_true``: that class is the image's own)."""
        T, h, t = self.T[ii], self.h[ii], self.t[ii]
        h2 = h - (old > T) + (new > T)
        t2 = t - (old == T) + (new == T)
        other = (h2 == 0) / np.maximum(t2, 1)
        return np.where(is_true, self.share_after(ii, old, new), other)


class LevelNames:
    """One level's per-name attribution, accumulated over chunks of images.

    ``names``: class -> ranked names (the level uses the first ``level``); ``cols``/``starts``
    gather the class slots from the category scores exactly as the scorer does (flat: one
    slot per (class, name); pooled: one per class). In pooled mode ``loo_scores(start, stop)``
    gives the [n, L] class scores without each name of :attr:`loo` (class index, name),
    ``-inf`` where a class would be left with no names.
    """

    def __init__(self, y: np.ndarray, classes: Sequence[str], names: dict[str, list[str]], level: int,
                 previous_level: int, mode: str, cols: np.ndarray, starts: np.ndarray,
                 loo_scores: Optional[Callable[[int, int], np.ndarray]] = None) -> None:
        self.y = np.asarray(y, dtype=np.int64)
        self.classes, self.names, self.level, self.previous, self.mode = list(classes), names, level, previous_level, mode
        self.cols, self.starts = np.asarray(cols), np.asarray(starts)
        self.lists = [list(names[c][:level]) for c in self.classes]
        owners: dict[str, int] = {}
        for lst in self.lists:
            for n in lst:
                owners[n] = owners.get(n, 0) + 1
        self.owners = owners
        if mode == "flat":
            self.slot_class = np.repeat(np.arange(len(self.classes)), [len(x) for x in self.lists])
            n_slots = len(self.slot_class)
        else:
            self.loo = [(c, r) for c, lst in enumerate(self.lists) for r in range(min(previous_level, len(lst)), len(lst))]
            self.loo_class = np.asarray([c for c, _ in self.loo], dtype=np.int64)
            self.loo_scores = loo_scores
            n_slots = len(self.loo)
        self.won = np.zeros(n_slots)
        self.won_correct = np.zeros(n_slots)
        self.change = np.zeros(n_slots)

    def loo_sets(self) -> list[tuple[int, list[str]]]:
        """(class index, its names without the left-out one) per pooled leave-one-out, in :attr:`loo` order."""
        return [(c, [n for j, n in enumerate(self.lists[c]) if j != r]) for c, r in self.loo]

    def add(self, start: int, logits: np.ndarray, class_scores: np.ndarray) -> None:
        """Images ``start …`` : their [n, categories] scores and the [n, C] class scores made of them."""
        y = self.y[start:start + len(class_scores)]
        summ = _Summary(class_scores, y)
        if self.mode == "flat":
            self._add_flat(y, summ, logits, class_scores)
        else:
            self._add_pooled(y, summ, class_scores, self.loo_scores(start, start + len(y)))

    def _add_flat(self, y, summ: _Summary, logits: np.ndarray, cs: np.ndarray) -> None:
        n, S = len(y), len(self.slot_class)
        g = np.take(logits, self.cols, axis=1)  # [n, slots], a copy of our own
        ids = np.where(g == cs[:, self.slot_class], np.arange(S, dtype=np.int64)[None, :], S)
        best = np.minimum.reduceat(ids, self.starts, axis=1)  # each class's best name (first on a tie)
        del ids
        r = np.arange(n)[:, None]
        g[r, best] = -np.inf
        second = np.maximum.reduceat(g, self.starts, axis=1)  # each class without its best name
        del g
        # wins: 1/m to each of the m classes at the top, through its best name
        ii, cc = np.nonzero(summ.top)
        slots = best[ii, cc]
        w = 1.0 / summ.na[ii]
        self.won += np.bincount(slots, weights=w, minlength=S)
        self.won_correct += np.bincount(slots, weights=w * (cc == y[ii]), minlength=S)
        # leave-one-out: only a class's best name changes its score; only the own class and a class
        # at or above the true one with nobody else strictly above can change the credit
        gt = cs > summ.T[:, None]
        mask = (cs >= summ.T[:, None]) & ((summ.h[:, None] - gt) == 0)
        mask[np.arange(n), y] = True
        ii, cc = np.nonzero(mask)
        old, new = cs[ii, cc], second[ii, cc]
        delta = summ.credit[ii] - summ.credit_after(ii, cc == y[ii], old, new)
        self.change += np.bincount(best[ii, cc], weights=delta, minlength=S)

    def _add_pooled(self, y, summ: _Summary, cs: np.ndarray, loo: np.ndarray) -> None:
        if not len(self.loo):
            return
        n, L = len(y), len(self.loo)
        cc = self.loo_class[None, :]
        step = max(1, (1 << 20) // L)  # [rows, L] temporaries stay near a million cells
        for a in range(0, n, step):
            ii = np.arange(a, min(n, a + step))[:, None]
            old = cs[ii, cc]
            new = np.asarray(loo[ii[:, 0]], dtype=cs.dtype)
            is_true = cc == y[ii]
            self.change += (summ.credit[ii] - summ.credit_after(ii, is_true, old, new)).sum(axis=0)
            gain = np.maximum(summ.top[ii, cc] / summ.na[ii] - summ.share_after(ii, old, new), 0.0)
            self.won += gain.sum(axis=0)
            self.won_correct += (gain * is_true).sum(axis=0)

    def rows(self, **keys) -> list[dict]:
        """names.csv rows of this level (``keys``: backbone, ordering, names)."""
        out = []
        values = {}
        if self.mode == "flat":
            s = 0
            for c, lst in enumerate(self.lists):
                for r in range(len(lst)):
                    values[(c, r)] = s
                    s += 1
        else:
            values = {key: j for j, key in enumerate(self.loo)}
        for c, lst in enumerate(self.lists):
            for r, name in enumerate(lst):
                j = values.get((c, r))
                won = self.won[j] if j is not None else np.nan
                right = self.won_correct[j] if j is not None else np.nan
                out.append({**keys, "level": self.level, "class": self.classes[c], "name": name, "rank": r + 1,
                            "n_owners": self.owners[name], "images_won": _count(won), "won_correct": _count(right),
                            "won_from_other_classes": _count(won - right),
                            "credit_change": _count(self.change[j]) if j is not None else np.nan})
        return out


def flat_layout(names: dict[str, list[str]], classes: Sequence[str], k: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(sorted distinct names, gather column per (class, name) slot, class starts) of flat level k,
    the layout the scorer uses (a name under several classes is one column)."""
    keys = sorted({n for c in classes for n in names[c][:k]})
    col = {n: j for j, n in enumerate(keys)}
    cols, starts = [], []
    for c in classes:
        starts.append(len(cols))
        cols.extend(col[n] for n in names[c][:k])
    return keys, np.asarray(cols, dtype=np.int64), np.asarray(starts, dtype=np.int64)
