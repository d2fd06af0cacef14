"""Live what-if: re-score a run's levels after editing one class's names, without a sweep.

An edit (names added, removed, renamed or re-ranked) changes only the edited class's
score column at each level; every other class keeps its column. So the scorer keeps, per
level and image, the best few class scores with their classes (``TOP`` of them, sorted, and
an upper bound on every class not kept) and the true class's score. An edit re-scores the
edited class's column ([images x its names], one small matrix product), takes the class
out of each image's kept list and puts its new score back in; only images whose kept list
can no longer tell the best score and how many classes share it are re-scored in full
(their block of rows, every class). New names only need their text encoded.

Top-1 credit follows the engine's tie policy exactly (:mod:`core.pipeline.scoring`, docs
"Ties"): the true class earns 1/m when it is one of the m classes sharing the best score.
Scores are the cosines a sweep computes (the same name and pooled embeddings), accumulated
in float64 and rounded to float32 (:func:`canonical_scores`), so a name shared by two classes
gets the very same float in both columns whichever of them was edited, and shared names tie
exactly as in a sweep. (A sweep's float32 products may differ from these in the last bit, so
two *different* names scoring within ~1e-7 of each other could in principle be ordered
differently; shared names and identical pooled sets, the ties that occur, cannot.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd

from core.stats.metrics import per_class_recall
from core.util.config import MODES
from core.util.errors import InputError
from core.util.events import CancelToken

TOP = 8  # class scores kept per image and level
ROW_BLOCK = 1024  # images scored at once while building
COL_BLOCK = 4096  # embeddings scored at once (bounds the float64 block)


def canonical_scores(X64: np.ndarray, V: np.ndarray) -> np.ndarray:
    """[rows, len(V)] cosines X @ V.T as float32, accumulated in float64.

    BLAS rounds a float32 dot product differently for different matrix shapes; a float64
    product rounded to float32 is the same float whatever the shapes (but for a dot product
    within ~1e-16 of a float32 rounding boundary), so a name scored at build time and again
    after an edit, or for two classes that share it, gets the same score and ties exactly.
    """
    V64 = np.asarray(V, dtype=np.float64)
    out = np.empty((len(X64), len(V64)), dtype=np.float32)
    for j in range(0, len(V64), COL_BLOCK):
        out[:, j:j + COL_BLOCK] = X64 @ V64[j:j + COL_BLOCK].T
    return out


def pooled_vectors(emb: Sequence[np.ndarray]) -> np.ndarray:
    """One pooled category embedding per list of name embeddings: the normalised mean, computed
    as :class:`core.pipeline.scoring.EmbeddingScores` does (names in sorted order)."""
    T = np.stack([np.stack(e).mean(axis=0) for e in emb])
    T /= np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
    return T.astype(np.float32, copy=False)


def _clean(names: dict[str, Sequence[str]], classes: Sequence[str]) -> dict[str, list[str]]:
    """Names as the labels reader keeps them: stripped, duplicates within a class dropped,
    a class with no names described by its display name."""
    from core.util.names import display_name

    out = {}
    for c in classes:
        seen: list[str] = []
        for n in names.get(c, []):
            n = str(n).strip()
            if n and n not in seen:
                seen.append(n)
        out[c] = seen or [display_name(c)]
    return out


@dataclass
class _Level:
    """One level's kept state: per image the best TOP class scores (sorted, descending), how many
    of them are known exactly (``depth``), a bound on every other class, and the true class's score."""

    k: int
    val: np.ndarray  # [N, T] float32
    cls: np.ndarray  # [N, T] int32
    depth: np.ndarray  # [N] int
    bound: np.ndarray  # [N] float32 (-inf when every class is kept)
    true_score: np.ndarray  # [N] float32

    def credit(self) -> tuple[np.ndarray, np.ndarray]:
        """(top-1 credit, images whose kept list cannot tell it) per image."""
        best = self.val[:, 0]
        known = (self.depth >= 1) & (best > self.bound)
        live = np.arange(self.val.shape[1])[None, :] < self.depth[:, None]
        n_best = ((self.val == best[:, None]) & live).sum(axis=1)
        credit = np.where(known & (self.true_score == best), 1.0 / np.maximum(n_best, 1), 0.0)
        return credit, ~known


@dataclass
class WhatIfResult:
    """Before (the run's names) and after (the edited names), per level and per class."""

    levels: pd.DataFrame  # level, top1_before, top1_after, change, n_correct_before, n_correct_after
    per_class: pd.DataFrame  # class, level, n_images, recall_before, recall_after, change, edited
    edited: list[str]  # classes whose names differ from the run's
    seconds: float = 0.0
    credit_before: dict[int, np.ndarray] = field(default_factory=dict)
    credit_after: dict[int, np.ndarray] = field(default_factory=dict)


class WhatIfScorer:
    """Incremental top-1 scorer of one backbone's images over a run's levels (see module docstring).

    ``X``: [N, d] unit image embeddings (the rows a sweep scores), ``y``: their class indices,
    ``names``: the run's ranked names per class (ordering 0), ``encode``: names -> [n, d] category
    embeddings (through the text cache), called only for names not seen yet.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, classes: Sequence[str], names: dict[str, Sequence[str]],
                 levels: Sequence[int], mode: str, encode: Callable[[list[str]], np.ndarray],
                 cancel: Optional[CancelToken] = None) -> None:
        if mode not in MODES:
            raise InputError(f"unknown mode '{mode}' (choose flat or pooled)", field="mode")
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.int64)
        self.classes = list(classes)
        self.levels = sorted(int(k) for k in levels)
        self.mode = mode
        self._encode = encode
        self._emb: dict[str, np.ndarray] = {}
        self._cancel = cancel or CancelToken()
        self.base = _clean(names, self.classes)
        self.names = {c: list(v) for c, v in self.base.items()}
        self.counts = np.bincount(self.y, minlength=len(self.classes))
        self._plan = None  # (flat) the vocabulary's embeddings and each rank's name per class, until an edit
        self.T = min(TOP, len(self.classes))
        self.rescored = 0  # images re-scored in full after edits (kept lists run out)
        self.state = self._build()
        self.base_credit = {lv.k: lv.credit()[0] for lv in self.state}
        self._credit = dict(self.base_credit)  # current credits per level (kept up to date by edits)
        self._index = {c: i for i, c in enumerate(self.classes)}
        self._edited: set[str] = set()

    # ---------------------------------------------------------------- embeddings
    def _embed(self, names: Sequence[str]) -> None:
        new = sorted({n for n in names if n not in self._emb})
        if new:
            E = np.asarray(self._encode(new), dtype=np.float32)
            for n, v in zip(new, E):
                self._emb[n] = v

    def _class_vectors(self, c: str) -> np.ndarray:
        """[slots, d] what the class's columns are the max of (flat: its names in rank order) or
        are (pooled: one pooled embedding per level)."""
        names = self.names[c]
        if self.mode == "flat":
            return np.stack([self._emb[n] for n in names[:self.levels[-1]]])
        keys = [sorted(set(names[:k])) for k in self.levels]
        return pooled_vectors([[self._emb[n] for n in key] for key in keys])

    def _columns(self, vecs_scores: np.ndarray, n_names: int) -> list[np.ndarray]:
        """Per level, a class's [rows] column from its slot scores (flat: running max; pooled: as is)."""
        if self.mode == "pooled":
            return [vecs_scores[:, i] for i in range(len(self.levels))]
        cols, cur, j = [], None, 0
        for k in self.levels:
            while j < min(k, n_names):
                cur = vecs_scores[:, j].copy() if cur is None else np.maximum(cur, vecs_scores[:, j])
                j += 1
            cols.append(cur)
        return cols

    # ---------------------------------------------------------------- state
    def _level_plan(self):
        """flat: (vocabulary embeddings, per rank j the vocabulary row of each class's j-th name or its last);
        pooled: per level (distinct pooled embeddings, each class's row)."""
        if self._plan is None:
            if self.mode == "flat":
                top = self.levels[-1]
                vocab = sorted({n for c in self.classes for n in self.names[c][:top]})
                row = {n: i for i, n in enumerate(vocab)}
                most = min(top, max(len(self.names[c]) for c in self.classes))
                idx = [np.asarray([row[self.names[c][min(j, len(self.names[c]) - 1)]] for c in self.classes])
                       for j in range(most)]
                self._plan = (np.stack([self._emb[n] for n in vocab]), idx)
            else:
                plan = []
                for k in self.levels:
                    keys = {c: tuple(sorted(set(self.names[c][:k]))) for c in self.classes}
                    distinct = sorted(set(keys.values()))
                    at = {key: i for i, key in enumerate(distinct)}
                    plan.append((pooled_vectors([[self._emb[n] for n in key] for key in distinct]),
                                 np.asarray([at[keys[c]] for c in self.classes])))
                self._plan = plan
        return self._plan

    def _level_matrices(self, rows: np.ndarray) -> list[np.ndarray]:
        """[rows, C] class scores per level for the given images, every class."""
        Xr = self.X[rows]
        if self.mode == "flat":
            V, idx = self._level_plan()
            S = canonical_scores(Xr, V)
            out, cur, j = [], None, 0
            for k in self.levels:
                while j < min(k, len(idx)):
                    cur = S[:, idx[j]] if cur is None else np.maximum(cur, S[:, idx[j]])
                    j += 1
                out.append(cur)
            return out
        return [canonical_scores(Xr, P)[:, at] for P, at in self._level_plan()]

    def _fill(self, lv: _Level, li: int, rows: np.ndarray, mats: Optional[list[np.ndarray]] = None) -> None:
        """Set the kept state of these images from their full class scores."""
        cs = (mats or self._level_matrices(rows))[li]
        C = cs.shape[1]
        # the kept list must hold every class sharing the best score and one below it (or all classes)
        need = int((cs == cs.max(axis=1, keepdims=True)).sum(axis=1).max(initial=0)) + 1
        if need > self.T and self.T < C:
            self._widen(min(need, C))
        T = self.T
        if C > T:
            part = np.argpartition(-cs, T, axis=1)
            top = part[:, :T]
            lv.bound[rows] = cs[np.arange(len(rows)), part[:, T]]
        else:
            top = np.tile(np.arange(C), (len(rows), 1))
            lv.bound[rows] = -np.inf
        v = np.take_along_axis(cs, top, axis=1)
        order = np.argsort(-v, axis=1, kind="stable")
        lv.val[rows] = np.take_along_axis(v, order, axis=1)
        lv.cls[rows] = np.take_along_axis(top, order, axis=1)
        lv.depth[rows] = T
        lv.true_score[rows] = cs[np.arange(len(rows)), self.y[rows]]

    def _widen(self, T: int) -> None:
        """Keep T scores per image from now on (a tie wider than the kept list was met)."""
        extra = T - self.T
        for lv in self.state:
            lv.val = np.concatenate([lv.val, np.full((len(lv.val), extra), -np.inf, np.float32)], axis=1)
            lv.cls = np.concatenate([lv.cls, np.full((len(lv.cls), extra), -1, np.int32)], axis=1)
        self.T = T

    def _build(self) -> list[_Level]:
        self._embed([n for c in self.classes for n in self.names[c][:self.levels[-1]]])
        n = len(self.X)
        state = [_Level(k, np.full((n, self.T), -np.inf, np.float32), np.full((n, self.T), -1, np.int32),
                        np.zeros(n, np.int64), np.full(n, -np.inf, np.float32), np.zeros(n, np.float32))
                 for k in self.levels]
        self.state = state
        for b in range(0, n, ROW_BLOCK):
            self._cancel.raise_if_cancelled()
            rows = np.arange(b, min(b + ROW_BLOCK, n))
            mats = self._level_matrices(rows)
            for li in range(len(self.levels)):
                self._fill(self.state[li], li, rows, mats)
        return self.state

    # ---------------------------------------------------------------- edits
    def _replace_class(self, ci: int, li: int, v: np.ndarray) -> None:
        """Class ``ci``'s column at level ``li`` becomes ``v``: update each image's kept list."""
        lv = self.state[li]
        T = self.T
        live = np.arange(T)[None, :] < lv.depth[:, None]
        held = (lv.cls == ci) & live
        had = held.any(axis=1)
        enters = v > lv.bound
        rows = np.flatnonzero(had | enters)
        if len(rows):
            val = np.where(held[rows] | ~live[rows], -np.inf, lv.val[rows]).astype(np.float32)
            cls = np.where(held[rows] | ~live[rows], -1, lv.cls[rows])
            known = live[rows].sum(axis=1) - had[rows]
            add = enters[rows]
            val = np.concatenate([val, np.where(add, v[rows], -np.inf)[:, None].astype(np.float32)], axis=1)
            cls = np.concatenate([cls, np.where(add, ci, -1)[:, None]], axis=1)
            known = known + add
            order = np.argsort(-val, axis=1, kind="stable")
            val = np.take_along_axis(val, order, axis=1)
            cls = np.take_along_axis(cls, order, axis=1)
            over = known > T  # the smallest kept score is dropped: it bounds the others now
            lv.bound[rows] = np.where(over, np.maximum(lv.bound[rows], val[:, T]), lv.bound[rows])
            lv.val[rows], lv.cls[rows] = val[:, :T], cls[:, :T]
            lv.depth[rows] = np.minimum(known, T)
        own = self.y == ci
        lv.true_score[own] = v[own]

    def edit(self, cls: str, names: Sequence[str]) -> None:
        """Give class ``cls`` these ranked names (any edit: add, remove, rename, re-rank)."""
        if cls not in self.classes:
            raise InputError(f"class '{cls}' is not one of the run's classes", field="class")
        new = _clean({cls: names}, [cls])[cls]
        top = self.levels[-1]
        if new[:top] == self.names[cls][:top]:
            self.names[cls] = new
            return
        self.names[cls] = new
        (self._edited.add if new[:top] != self.base[cls][:top] else self._edited.discard)(cls)
        self._plan = None
        self._embed(new[:top])
        ci = self._index[cls]
        S = canonical_scores(self.X, self._class_vectors(cls))
        for li, col in enumerate(self._columns(S, len(new))):
            self._replace_class(ci, li, col)
        for li, lv in enumerate(self.state):  # images whose kept list ran out: re-score them in full
            credit, lost = lv.credit()
            rows = np.flatnonzero(lost)
            for b in range(0, len(rows), ROW_BLOCK):
                self.rescored += len(rows[b:b + ROW_BLOCK])
                self._fill(lv, li, rows[b:b + ROW_BLOCK])
            self._credit[lv.k] = lv.credit()[0] if len(rows) else credit

    def set_names(self, names: dict[str, Sequence[str]]) -> WhatIfResult:
        """Bring the scorer to these names (every class of the run), editing only the classes that changed."""
        t0 = time.perf_counter()
        missing = [c for c in self.classes if c not in names]
        extra = [c for c in names if c not in self.classes]
        if missing or extra:
            what = "; ".join(filter(None, [f"missing {', '.join(missing[:5])}" if missing else "",
                                           f"not in the run: {', '.join(extra[:5])}" if extra else ""]))
            raise InputError(f"the names' classes differ from the run's ({what})", field="class")
        for c in self.classes:
            if list(names[c]) != self.names[c]:  # edit() cleans the names as the labels reader does
                self.edit(c, names[c])
        return self.result(time.perf_counter() - t0)

    # ---------------------------------------------------------------- results
    def credits(self) -> dict[int, np.ndarray]:
        """Top-1 credit per image and level, for the current names."""
        return dict(self._credit)

    def result(self, seconds: float = 0.0) -> WhatIfResult:
        after = self.credits()
        edited = [c for c in self.classes if c in self._edited]
        C, L = len(self.classes), len(self.levels)
        level_rows = []
        rb = np.empty((L, C))
        ra = np.empty((L, C))
        for li, k in enumerate(self.levels):
            b, a = self.base_credit[k], after[k]
            level_rows.append({"level": k, "top1_before": float(b.mean()), "top1_after": float(a.mean()),
                               "change": float(a.mean() - b.mean()),
                               "n_correct_before": round(float(b.sum()), 6), "n_correct_after": round(float(a.sum()), 6)})
            rb[li] = per_class_recall(self.y, b, C)[1]
            ra[li] = per_class_recall(self.y, a, C)[1]
        # edited classes first, then the classes whose recall changed most, then the rest (by name)
        is_edited = np.isin(np.arange(C), [self._index[c] for c in edited])
        size = np.nan_to_num(np.abs(ra - rb)).max(axis=0)
        order = np.lexsort((np.asarray(self.classes, dtype=object).argsort().argsort(), -size, ~is_edited))
        ci = np.repeat(order, L)
        li = np.tile(np.arange(L), C)
        per_class = pd.DataFrame({
            "class": np.asarray(self.classes, dtype=object)[ci], "level": np.asarray(self.levels)[li],
            "n_images": self.counts[ci], "recall_before": rb[li, ci], "recall_after": ra[li, ci],
            "change": ra[li, ci] - rb[li, ci], "edited": is_edited[ci]})
        return WhatIfResult(pd.DataFrame(level_rows), per_class, edited, seconds, dict(self.base_credit), after)


# -------------------------------------------------------------------- from a run


@dataclass
class RunSource:
    """What a what-if needs of a run: its config, backbone and the scorer's inputs."""

    run_dir: Path
    backbone: str
    classes: list[str]
    names: dict[str, list[str]]
    levels: list[int]
    mode: str
    templates: list[str]


def run_backbones(run_dir: str | Path) -> list[str]:
    """Display names of a run's embedding backbones (those a what-if can re-score)."""
    meta = _meta(run_dir)
    from core.util.config import BackboneSpec

    specs = [BackboneSpec.from_dict(b) for b in meta.get("config", {}).get("backbones_resolved")
             or meta.get("config", {}).get("backbones", [])]
    return [s.display for s in specs]


def _meta(run_dir: str | Path) -> dict:
    from core.util.tables import read_user_json

    p = Path(run_dir) / "run.json"
    if not p.exists():
        raise InputError("not a run directory (no run.json): run a sweep first", file=run_dir)
    return read_user_json(p)


def open_run(run_dir: str | Path, backbone: Optional[str] = None, *, cache_dir: Optional[str] = None,
             cancel: Optional[CancelToken] = None) -> WhatIfScorer:
    """A scorer of the run's images (embeddings from the cache or the run's embedding stores) with the run's
    names, levels, mode and templates. Raises :class:`InputError` saying why when the run cannot be
    re-scored (no embeddings cached: run a sweep first)."""
    from dataclasses import replace

    from core.embedding.cache import EmbeddingCache
    from core.embedding.embed import embed_names
    from core.embedding.image_source import image_source
    from core.models.base import EMBEDDINGS
    from core.models.registry import load_model
    from core.util.config import BackboneSpec, SweepConfig

    run_dir = Path(run_dir)
    meta = _meta(run_dir)
    raw = meta.get("config", {})
    config = SweepConfig.from_dict(raw)
    specs = [BackboneSpec.from_dict(b) for b in raw.get("backbones_resolved") or raw.get("backbones", [])]
    if not specs:
        raise InputError("the run names no backbone", file=run_dir / "run.json")
    names_by = [s.display for s in specs]
    if backbone is None:
        position = 0
    elif backbone in names_by:
        position = names_by.index(backbone)
    else:
        raise InputError(f"the run has no backbone '{backbone}' (it has {', '.join(names_by)})", field="backbone")
    spec = specs[position]
    labels = raw.get("labels_resolved")
    levels = raw.get("levels_resolved")
    templates = raw.get("templates_resolved")
    if not labels or not levels or not templates:
        raise InputError("run.json lacks the resolved labels, levels or templates (a run of an older version): "
                         "run a sweep first", file=run_dir / "run.json")
    model = load_model(replace(spec, device="cpu") if spec.device not in ("cpu", "auto") else spec, lazy=True)
    if getattr(model, "output", EMBEDDINGS) != EMBEDDINGS:
        raise InputError(f"backbone '{spec.display}' scores names directly ({model.output}); the what-if "
                         "re-scores embedding backbones only", field="backbone")
    cache_root = cache_dir if cache_dir is not None else config.cache_dir
    cache = EmbeddingCache(cache_root) if config.use_cache or config.embeddings else None
    if not config.embeddings and (cache is None or not cache.knows(model.identity)):
        raise InputError(f"no cached image embeddings of '{spec.display}' in "
                         f"{cache.root if cache else 'the cache (the run used --no-cache)'}: run a sweep first",
                         file=run_dir)
    try:
        images = image_source(config)
    except InputError as e:
        raise InputError(f"the run's dataset cannot be read ({e}): run a sweep first", file=config.dataset) from e
    got = images.embeddings(model, position, cache=cache, cancel=cancel)
    listing = images.listing
    classes = list(labels)
    index = {c: i for i, c in enumerate(classes)}
    keep = [j for j, i in enumerate(got.indices) if listing.records[i].label in index]
    X = np.asarray(got.matrix)[keep]
    y = np.asarray([index[listing.records[got.indices[j]].label] for j in keep], dtype=np.int64)
    if len(X) == 0:
        raise InputError("no image of the run could be read back (none of its classes' images were scored): "
                         "run a sweep first", file=run_dir)

    def encode(new: list[str]) -> np.ndarray:
        return embed_names(model, new, templates, cache=cache, cancel=cancel)

    scorer = WhatIfScorer(X, y, classes, labels, levels, config.mode, encode, cancel=cancel)
    scorer.source = RunSource(run_dir, spec.display, classes, {c: list(v) for c, v in labels.items()},
                              list(levels), config.mode, list(templates))
    return scorer
