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

from .config import MODES
from .errors import InputError
from .metrics import tie_ranks, topk_correct

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
    def correct_topk(self) -> np.ndarray:
        return self.credit_topk

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


def _category_keys(names: dict[str, list[str]], classes: Sequence[str], k: int, mode: str) -> list:
    """The level-k categories, sorted: distinct names (flat) or distinct sets of names (pooled)."""
    if mode == "flat":
        return sorted({n for c in classes for n in names[c][:k]})
    return sorted({tuple(sorted(set(names[c][:k]))) for c in classes})


def level_category_counts(names: dict[str, list[str]], classes: Sequence[str], levels: Sequence[int],
                          mode: str = "flat") -> list[int]:
    """How many categories each level scores, decided exactly as the sweep decides them.

    A name listed under several classes is one category (flat); classes whose first k names
    are the same set share one (pooled). The synonym editor previews these counts.
    """
    _check_mode(mode)
    return [len(_category_keys(names, classes, int(k), mode)) for k in levels]


def _category_matrix(name_emb, name_row, names, classes, k, mode):
    """(unique category keys, their text matrix, class -> categories as gather columns, class starts).

    Categories are decided on the name text: flat mode has one category per distinct name,
    pooled mode one per distinct set of level-k names (its embedding the normalised mean in
    sorted name order, so classes with the same set get bit-identical columns). Keys are
    sorted, so nothing depends on the order of classes or names in the labels file.
    """
    if mode == "flat":
        keys = _category_keys(names, classes, k, mode)
        T = name_emb[[name_row[n] for n in keys]]
        col_of = {n: j for j, n in enumerate(keys)}
        cat_labels, _, starts = build_categories(names, classes, k)
        cols = np.asarray([col_of[n] for n in cat_labels], dtype=np.int64)
        return keys, T, cols, starts
    sets = {c: tuple(sorted(set(names[c][:k]))) for c in classes}
    keys = _category_keys(names, classes, k, mode)
    T = np.stack([name_emb[[name_row[n] for n in key]].mean(axis=0) for key in keys])
    T /= np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
    col_of = {key: j for j, key in enumerate(keys)}
    cols = np.asarray([col_of[sets[c]] for c in classes], dtype=np.int64)
    return keys, T, cols, np.arange(len(classes), dtype=np.int64)


def _chunk_class_scores(logits: np.ndarray, cols: np.ndarray, starts: np.ndarray, mode: str) -> np.ndarray:
    """[n, C] class scores of a chunk's [n, categories] similarities (flat: max over the class's names)."""
    # np.take keeps the gathered columns C-ordered (logits[:, cols] is F-ordered: reduceat 5x slower)
    gathered = np.take(logits, cols, axis=1)
    return np.maximum.reduceat(gathered, starts, axis=1) if mode == "flat" else gathered


def score_level(
    X: np.ndarray,
    y: np.ndarray,
    name_emb: np.ndarray,
    name_row: dict[str, int],
    names: dict[str, list[str]],
    classes: Sequence[str],
    k: int,
    mode: str = "flat",
    top_k: int = 5,
    keep_class_scores: bool = False,
    class_scores_out: Optional[np.ndarray] = None,
) -> LevelScores:
    """Score every image against the level-k label set (see module docstring and LevelScores).

    ``class_scores_out`` ([N, C], any float dtype, e.g. a float16 memory map of
    ``logits/…/level_K.npy``) receives the class scores chunk by chunk, so they never exist
    as a whole float32 matrix; ``keep_class_scores`` allocates that matrix instead.
    """
    _check_mode(mode)
    keys, T, cols, starts = _category_matrix(name_emb, name_row, names, classes, k, mode)
    n_names = np.asarray([len(names[c][:k]) for c in classes], dtype=np.int64)
    by_name = np.argsort(np.asarray(classes, dtype=object), kind="stable")  # classes in name order
    name_rank = np.empty(len(classes), dtype=np.int64)
    name_rank[by_name] = np.arange(len(classes))
    n = len(X)
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
    step = chunk_rows(len(T))
    for s in range(0, n, step):
        logits = X[s : s + step] @ T.T
        best = logits.argmax(axis=1)  # keys are sorted: an exact float tie between texts goes the same way always
        class_scores = _chunk_class_scores(logits, cols, starts, mode)
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
        names_per_class=n_names,
        class_scores=kept,
    )


def level_class_scores(
    X: np.ndarray,
    name_emb: np.ndarray,
    name_row: dict[str, int],
    names: dict[str, list[str]],
    classes: Sequence[str],
    k: int,
    mode: str = "flat",
    rows: Optional[np.ndarray] = None,
    class_order: Optional[np.ndarray] = None,
) -> np.ndarray:
    """[len(rows), C] float32 class scores at level k: only the matmul and the per-class max.

    ``rows`` picks (and orders) images of ``X``, ``class_order`` the columns. The chunks
    are those of :func:`score_level` (aligned on ``X``'s rows), so each score is the very
    float that function computes; only the chunks holding a wanted row are scored.
    """
    _check_mode(mode)
    _, T, cols, starts = _category_matrix(name_emb, name_row, names, classes, k, mode)
    rows = np.arange(len(X), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), len(classes)), dtype=np.float32)
    order = np.argsort(rows, kind="stable")
    wanted = rows[order]
    step = chunk_rows(len(T))
    for s in range(0, len(X), step):
        a, b = np.searchsorted(wanted, [s, s + step])
        if a == b:
            continue
        cs = _chunk_class_scores(X[s : s + step] @ T.T, cols, starts, mode)
        picked = cs[wanted[a:b] - s]
        del cs
        out[order[a:b]] = picked if class_order is None else picked[:, class_order]
    return out
