"""Scoring images against one level's label set.

* flat mode: every name is its own category; an image is correct when its best
  category belongs to its true class; a class's score (for top-5) is the max over its
  categories.
* pooled mode: a class's embedding is the normalised mean of its k name embeddings.

:func:`score_level` gives everything a level's rows need (predictions, credits, ties);
:func:`level_class_scores` gives only the [N, C] class scores, for the multi-backbone
analysis, which recomputes them one level at a time instead of keeping every level's
matrix alive. Both compute a chunk's class scores with :func:`_chunk_class_scores`, over
the same chunks of the embedding matrix, so they agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from core.util.config import MODES
from core.util.errors import InputError
from core.stats.metrics import tie_ranks, topk_correct

SCORE_CHUNK = 8192  # images scored at once, at most
SCORE_CELLS = 1 << 22  # image x category similarities per chunk (16 MB of float32, twice with the gather)


def chunk_rows(n_categories: int) -> int:
    """Images per scoring chunk: fewer for big label sets, so a chunk's [n, categories]
    similarities (and their gathered copy) stay near SCORE_CELLS whatever the level."""
    return int(min(SCORE_CHUNK, max(64, SCORE_CELLS // max(int(n_categories), 1))))


@dataclass
class LevelScores:
    """Scores of all images at one level (rows follow the embedding matrix).

    Ties follow one policy (README, "Ties"): a name listed under several classes is one
    category owned by all of them, and an image whose best category has m owners, its own
    among them, earns ``credit`` 1/m (top-5 alike, ``credit_topk``). ``pred_class`` is
    the first owner by class name (for display), ``correct`` is ``credit == 1``.
    """

    level: int
    n_categories: int
    pred_class: np.ndarray
    pred_label: list[str]
    score: np.ndarray
    credit: np.ndarray  # float top-1 credit per image
    credit_topk: np.ndarray  # float top-k credit per image
    n_owners: np.ndarray  # classes sharing the best score, per image
    owners: list[str]  # those classes by name, joined by "|"
    names_per_class: np.ndarray
    class_scores: Optional[np.ndarray] = None  # [N, C] when asked for (ensembles, logits/)

    @property
    def correct(self) -> np.ndarray:
        """Right without any tie-break: the best category belongs to the true class alone."""
        return self.credit == 1.0

    @property
    def n_tied(self) -> int:
        return int((self.n_owners > 1).sum())


def build_categories(names: dict[str, list[str]], classes: Sequence[str], k: int):
    """(category labels, category class index, class start offsets) for level k (flat)."""
    labels, owner, starts = [], [], []
    for c, cls in enumerate(classes):
        starts.append(len(labels))
        for n in names[cls][:k]:
            labels.append(n)
            owner.append(c)
    return labels, np.asarray(owner, dtype=np.int64), np.asarray(starts, dtype=np.int64)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}' (choose flat or pooled)", field="mode")


@dataclass
class LevelPlan:
    """Level k of a label set, decided on the name text alone: its categories, which classes
    each one credits, and how class scores are gathered from category scores.

    flat: one category per distinct name among the classes' first k names (a name under
    several classes is one category owned by all of them); pooled: one category per
    distinct set of level-k names. Keys are sorted, so nothing depends on the order of
    classes or names in the labels file. The engine scores with this plan and the synonym
    editor counts with it, so both show the same number of categories.
    """

    level: int
    mode: str
    classes: list[str]
    names: dict[str, list[str]]  # class -> its ranked names (all of them; the plan uses the first k)
    keys: list  # flat: names; pooled: tuples of sorted names
    cols: np.ndarray  # gather columns: per (class, name) slot (flat) or per class (pooled)
    starts: np.ndarray  # where each class's slots start in ``cols``
    names_per_class: np.ndarray

    @classmethod
    def build(cls, names: dict[str, list[str]], classes: Sequence[str], k: int, mode: str = "flat") -> "LevelPlan":
        _check_mode(mode)
        classes = list(classes)
        n_names = np.asarray([len(names[c][:k]) for c in classes], dtype=np.int64)
        if mode == "flat":
            keys = sorted({n for c in classes for n in names[c][:k]})
            col_of = {n: j for j, n in enumerate(keys)}
            cat_labels, _, starts = build_categories(names, classes, k)
            cols = np.asarray([col_of[n] for n in cat_labels], dtype=np.int64)
        else:
            sets = {c: tuple(sorted(set(names[c][:k]))) for c in classes}
            keys = sorted(set(sets.values()))
            col_of = {key: j for j, key in enumerate(keys)}
            cols = np.asarray([col_of[sets[c]] for c in classes], dtype=np.int64)
            starts = np.arange(len(classes), dtype=np.int64)
        return cls(k, mode, classes, names, keys, cols, starts, n_names)

    @property
    def n_categories(self) -> int:
        return len(self.keys)

    def owners(self) -> dict:
        """Category key -> the classes it credits (more than one where classes share it)."""
        out: dict = {}
        ends = list(self.starts[1:]) + [len(self.cols)]
        for c, (a, b) in enumerate(zip(self.starts, ends)):
            for j in self.cols[a:b]:
                out.setdefault(self.keys[j], []).append(self.classes[c])
        return out

    def growing_classes(self) -> list[str]:
        """Classes that still gain a name at this level (the level-k name exists)."""
        return [c for c in self.classes if len(self.names[c]) >= self.level]


def level_category_counts(names: dict[str, list[str]], classes: Sequence[str], levels: Sequence[int],
                          mode: str = "flat") -> list[int]:
    """Categories at each level, exactly as the engine scores them (for previews)."""
    return [LevelPlan.build(names, classes, k, mode).n_categories for k in levels]


class EmbeddingScores:
    """Scores of an embedding kind: cosine of image and category embeddings.

    A pooled category's embedding is the normalised mean of its names' embeddings in sorted
    name order, so classes with the same set get bit-identical columns.
    """

    def __init__(self, X: np.ndarray, name_emb: np.ndarray, name_row: dict[str, int]) -> None:
        self.X, self.name_emb, self.name_row = X, name_emb, name_row

    @property
    def n_images(self) -> int:
        return len(self.X)

    def categories(self, plan: LevelPlan) -> np.ndarray:
        if plan.mode == "flat":
            return self.name_emb[[self.name_row[n] for n in plan.keys]]
        T = np.stack([self.name_emb[[self.name_row[n] for n in key]].mean(axis=0) for key in plan.keys])
        T /= np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
        return T

    def block(self, T: np.ndarray, start: int, stop: int) -> np.ndarray:
        """[stop - start, categories] scores of images start..stop."""
        return self.X[start:stop] @ T.T


class MatrixScores:
    """Scores of a kind that scores (image, name) pairs directly (e.g. a VLM's log-likelihood).

    A flat category's score is its name's column; a pooled category's the mean of its names' columns.
    """

    def __init__(self, S: np.ndarray, name_row: dict[str, int]) -> None:
        self.S, self.name_row = S, name_row

    @property
    def n_images(self) -> int:
        return len(self.S)

    def categories(self, plan: LevelPlan):
        if plan.mode == "flat":
            return np.asarray([self.name_row[n] for n in plan.keys], dtype=np.int64)
        return [np.asarray([self.name_row[n] for n in key], dtype=np.int64) for key in plan.keys]

    def block(self, cats, start: int, stop: int) -> np.ndarray:
        S = self.S[start:stop]
        if isinstance(cats, np.ndarray):
            return np.take(S, cats, axis=1)
        return np.stack([S[:, ix].mean(axis=1) for ix in cats], axis=1).astype(S.dtype, copy=False)


def _chunk_class_scores(logits: np.ndarray, cols: np.ndarray, starts: np.ndarray, mode: str) -> np.ndarray:
    """[n, C] class scores of a chunk's [n, categories] similarities (flat: max over the class's names)."""
    # np.take keeps the gathered columns C-ordered (logits[:, cols] is F-ordered: reduceat 5x slower)
    gathered = np.take(logits, cols, axis=1)
    return np.maximum.reduceat(gathered, starts, axis=1) if mode == "flat" else gathered


def score_level(
    scores,
    y: np.ndarray,
    plan: LevelPlan,
    top_k: int = 5,
    keep_class_scores: bool = False,
    class_scores_out: Optional[np.ndarray] = None,
    attribution=None,
) -> LevelScores:
    """Score every image against the level plan (see module docstring and LevelScores).

    ``scores`` is an :class:`EmbeddingScores` or a :class:`MatrixScores`. ``class_scores_out``
    ([N, C], any float dtype, e.g. a float16 memory map of ``logits/…/level_K.npy``) receives
    the class scores chunk by chunk, so they never exist as a whole float32 matrix;
    ``keep_class_scores`` allocates that matrix instead. ``attribution`` (a
    :class:`core.stats.names.LevelNames`) is shown every chunk's scores (names.csv).
    """
    classes, names, mode, k = plan.classes, plan.names, plan.mode, plan.level
    keys, cols, starts = plan.keys, plan.cols, plan.starts
    T = scores.categories(plan)
    by_name = np.argsort(np.asarray(classes, dtype=object), kind="stable")  # classes in name order
    name_rank = np.empty(len(classes), dtype=np.int64)
    name_rank[by_name] = np.arange(len(classes))
    n = scores.n_images
    pred_class = np.empty(n, dtype=np.int64)
    pred_cat = np.empty(n, dtype=np.int64)
    score = np.empty(n, dtype=np.float32)
    credit = np.empty(n, dtype=float)
    topk = np.empty(n, dtype=float)
    n_owners = np.empty(n, dtype=np.int64)
    owners: list[str] = []
    kept = class_scores_out
    if kept is None and keep_class_scores:
        kept = np.empty((n, len(classes)), dtype=np.float32)
    step = chunk_rows(len(keys))
    for s in range(0, n, step):
        logits = scores.block(T, s, s + step)
        best = logits.argmax(axis=1)  # keys are sorted: an exact float tie between texts goes the same way always
        class_scores = _chunk_class_scores(logits, cols, starts, mode)
        if attribution is not None:
            attribution.add(s, logits, class_scores)
        top = class_scores == class_scores.max(axis=1, keepdims=True)  # the best category's owners
        first = np.where(top, name_rank[None, :], len(classes)).argmin(axis=1)  # a class index
        sl = slice(s, s + len(best))
        pred_cat[sl] = best
        score[sl] = logits[np.arange(len(best)), best]
        del logits
        pred_class[sl] = first
        n_owners[sl] = top.sum(axis=1)
        chunk_owners = [classes[c] for c in pred_class[sl]]
        for i in np.flatnonzero(n_owners[sl] > 1):  # ties are rare: join names only for those rows
            chunk_owners[i] = "|".join(classes[c] for c in by_name[top[i, by_name]])
        owners.extend(chunk_owners)
        del top
        ranks = tie_ranks(class_scores, y[sl])
        credit[sl] = topk_correct(class_scores, y[sl], 1, ranks)
        topk[sl] = topk_correct(class_scores, y[sl], top_k, ranks)
        if kept is not None:
            kept[sl] = class_scores
    if mode == "flat":
        pred_label = [keys[i] for i in pred_cat]
    else:
        pred_label = [names[classes[c]][0] for c in pred_class]
    return LevelScores(
        level=k,
        n_categories=len(keys),
        pred_class=pred_class,
        pred_label=pred_label,
        score=score,
        credit=credit,
        credit_topk=topk,
        n_owners=n_owners,
        owners=owners,
        names_per_class=plan.names_per_class,
        class_scores=kept,
    )


def level_class_scores(
    scores,
    plan: LevelPlan,
    rows: Optional[np.ndarray] = None,
    class_order: Optional[np.ndarray] = None,
) -> np.ndarray:
    """[len(rows), C] float32 class scores of the plan's level: only the scores and the per-class max.

    ``rows`` picks (and orders) images, ``class_order`` the columns. The chunks are those
    of :func:`score_level` (aligned on the image rows), so each score is the very float
    that function computes; only the chunks holding a wanted row are scored.
    """
    T = scores.categories(plan)
    n = scores.n_images
    rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), len(plan.classes)), dtype=np.float32)
    order = np.argsort(rows, kind="stable")
    wanted = rows[order]
    step = chunk_rows(plan.n_categories)
    for s in range(0, n, step):
        a, b = np.searchsorted(wanted, [s, s + step])
        if a == b:
            continue
        cs = _chunk_class_scores(scores.block(T, s, s + step), plan.cols, plan.starts, plan.mode)
        picked = cs[wanted[a:b] - s]
        del cs
        out[order[a:b]] = picked if class_order is None else picked[:, class_order]
    return out
