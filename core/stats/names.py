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
import pandas as pd

NAME_COLUMNS = ["backbone", "ordering", "names", "level", "class", "name", "rank", "n_owners", "images_won",
                "won_correct", "won_from_other_classes", "credit_change"]
LOO_CELLS = 1 << 21  # pooled: image x left-out-name scores held at once (8 MB of float32)
VALUE_COLUMNS = ["images_won", "won_correct", "won_from_other_classes", "credit_change"]


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
            sizes = np.asarray([len(x) for x in self.lists], dtype=np.int64)
            self.slot_class = np.repeat(np.arange(len(self.classes)), sizes)
            n_slots = len(self.slot_class)
            # [C, widest list] gather columns and slot numbers; cells past a class's list are padding
            width = int(sizes.max()) if len(sizes) else 0
            self.pad = np.arange(width)[None, :] >= sizes[:, None]
            within = np.where(self.pad, 0, np.arange(width)[None, :])
            self.slot_of = np.asarray(self.starts)[:, None] + within
            self.pad_cols = self.cols[np.minimum(self.slot_of, max(n_slots - 1, 0))] if n_slots else self.slot_of
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
        if self.mode == "flat":
            self._add_flat(y, _Summary(class_scores, y), logits, class_scores)
            return
        step = max(1, LOO_CELLS // max(len(self.loo), 1))  # [rows, leave-one-outs] blocks stay bounded
        for a in range(0, len(y), step):
            cs = class_scores[a:a + step]
            self._add_pooled(y[a:a + step], _Summary(cs, y[a:a + step]), cs,
                             self.loo_scores(start + a, start + a + len(cs)))

    def _add_flat(self, y, summ: _Summary, logits: np.ndarray, cs: np.ndarray) -> None:
        n, S = len(y), len(self.slot_class)
        g = np.take(logits, self.pad_cols, axis=1)  # [n, C, widest list], a copy of our own
        if self.pad.any():
            g[:, self.pad] = -np.inf
        j = g.argmax(axis=2)  # each class's best name (the first on a tie)
        best = self.slot_of[np.arange(len(self.classes))[None, :], j]  # as a slot number
        np.put_along_axis(g, j[:, :, None], -np.inf, axis=2)
        second = g.max(axis=2)  # each class without its best name (-inf for a one-name class)
        del g, j
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
        L = len(self.loo)
        if not L:
            return
        old = cs[:, self.loo_class]  # [n, L]
        new = np.asarray(loo, dtype=cs.dtype)
        T = summ.T[:, None]
        is_true = self.loo_class[None, :] == y[:, None]
        # a class below the true one before and after never changes the credit nor wins the image
        ii, ll = np.nonzero(is_true | (old >= T) | (new >= T))
        old, new, cc = old[ii, ll], new[ii, ll], self.loo_class[ll]
        own = cc == y[ii]
        delta = summ.credit[ii] - summ.credit_after(ii, own, old, new)
        self.change += np.bincount(ll, weights=delta, minlength=L)
        gain = np.maximum(summ.top[ii, cc] / summ.na[ii] - summ.share_after(ii, old, new), 0.0)
        self.won += np.bincount(ll, weights=gain, minlength=L)
        self.won_correct += np.bincount(ll, weights=gain * own, minlength=L)

    def rows(self, **keys) -> pd.DataFrame:
        """names.csv rows of this level (``keys``: backbone, ordering, names), in class then rank order."""
        sizes = [len(lst) for lst in self.lists]
        cls = np.repeat(np.arange(len(self.classes)), sizes)
        rank = np.concatenate([np.arange(1, k + 1) for k in sizes]) if sizes else np.zeros(0, dtype=np.int64)
        flat_names = [n for lst in self.lists for n in lst]
        if self.mode == "flat":
            won, right, change = self.won, self.won_correct, self.change
        else:  # pooled: values only for the names entering at this level
            at = np.asarray([sum(sizes[:c]) + r for c, r in self.loo], dtype=np.int64)
            won, right, change = (np.full(len(cls), np.nan) for _ in range(3))
            won[at], right[at], change[at] = self.won, self.won_correct, self.change
        df = pd.DataFrame({**{k: [v] * len(cls) for k, v in keys.items()}, "level": self.level,
                           "class": np.asarray(self.classes, dtype=object)[cls] if len(cls) else [],
                           "name": flat_names, "rank": rank,
                           "n_owners": [self.owners[n] for n in flat_names],
                           "images_won": np.round(won, 6), "won_correct": np.round(right, 6),
                           "won_from_other_classes": np.round(won - right, 6),
                           "credit_change": np.round(change, 6) + 0.0})  # + 0.0: no "-0.0" in the file
        return df[[c for c in NAME_COLUMNS if c in df.columns]]


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
