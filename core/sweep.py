"""Semantic-scaling sweeps: every level re-scores cached image embeddings.

Images are encoded once per backbone (see :mod:`core.embed`); each level only builds a
different text matrix from the first k names of each class and scores against it, so a
K-level sweep costs little more than one level.

* flat mode: every name is its own category; an image is correct when its best
  category belongs to its true class; a class's score (for top-5) is the max over its
  categories.
* pooled mode: a class's embedding is the normalised mean of its k name embeddings.

With several backbones (or external predictions) the same run also writes the backbone
comparison, oracle and ensembles (:mod:`core.ensemble`); with a class-frequency file,
the per-class accuracy vs frequency correlation (:mod:`core.frequency`).
"""

from __future__ import annotations

import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from . import ensemble as ens
from .backbones import load_backbone
from .config import MODES, BackboneSpec, SweepConfig  # noqa: F401  (re-exported)
from .cache import EmbeddingCache
from .controls import SYNONYMS, names_kinds
from .datasets import load_dataset
from .embed import embed_images, embed_names, logit_scale
from .errors import InputError
from .events import (CancelToken, Cancelled, EventCallback, LevelFinished, Log, Progress, RunFinished, Stage,
                     Status, TableRows, ignore_events)
from .external import ExternalPredictions, load_external_predictions
from .flips import flip_columns, flips_between
from .frequency import class_frequency, frequency_table
from .labels import LabelSet, labels_from_classes, load_labels, load_templates, parse_levels
from .metrics import bootstrap_ci, credit_count, per_class_recall, tie_ranks, topk_correct
from .runs import LEVEL_COLUMNS, PER_CLASS_COLUMNS, PREDICTION_COLUMNS, RunWriter, check_out
from .significance import ALPHA, CONTROL_COLUMNS, THRESHOLD_COLUMNS, CurveBook
from .names import slug

SCORE_CHUNK = 8192  # images scored at once; bounds memory for huge label sets


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
    class_scores: Optional[np.ndarray] = None  # [N, C] when asked for (ensembles)

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


@dataclass
class BackboneOutcome:
    """What the analysis stage needs from one backbone's sweep (ordering 0)."""

    name: str
    ids: list[str]
    y: np.ndarray
    X: np.ndarray
    scale: float
    class_scores: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class SweepResult:
    run_dir: str
    status: str
    summary: dict = field(default_factory=dict)
    levels: pd.DataFrame = field(default_factory=pd.DataFrame)


def build_categories(names: dict[str, list[str]], classes: Sequence[str], k: int):
    """(category labels, category class index, class start offsets) for level k (flat)."""
    labels, owner, starts = [], [], []
    for c, cls in enumerate(classes):
        starts.append(len(labels))
        for n in names[cls][:k]:
            labels.append(n)
            owner.append(c)
    return labels, np.asarray(owner, dtype=np.int64), np.asarray(starts, dtype=np.int64)


def _category_matrix(name_emb, name_row, names, classes, k, mode):
    """(unique category keys, their text matrix, class -> categories as gather columns, class starts).

    Categories are decided on the name text: flat mode has one category per distinct name,
    pooled mode one per distinct set of level-k names (its embedding the normalised mean in
    sorted name order, so classes with the same set get bit-identical columns). Keys are
    sorted, so nothing depends on the order of classes or names in the labels file.
    """
    if mode == "flat":
        keys = sorted({n for c in classes for n in names[c][:k]})
        T = name_emb[[name_row[n] for n in keys]]
        col_of = {n: j for j, n in enumerate(keys)}
        cat_labels, _, starts = build_categories(names, classes, k)
        cols = np.asarray([col_of[n] for n in cat_labels], dtype=np.int64)
        return keys, T, cols, starts
    sets = {c: tuple(sorted(set(names[c][:k]))) for c in classes}
    keys = sorted(set(sets.values()))
    T = np.stack([name_emb[[name_row[n] for n in key]].mean(axis=0) for key in keys])
    T /= np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
    col_of = {key: j for j, key in enumerate(keys)}
    cols = np.asarray([col_of[sets[c]] for c in classes], dtype=np.int64)
    return keys, T, cols, np.arange(len(classes), dtype=np.int64)


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
) -> LevelScores:
    """Score every image against the level-k label set (see module docstring and LevelScores)."""
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}' (choose flat or pooled)", field="mode")
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
    kept = np.empty((n, len(classes)), dtype=np.float32) if keep_class_scores else None
    for s in range(0, n, SCORE_CHUNK):
        logits = X[s : s + SCORE_CHUNK] @ T.T
        best = logits.argmax(axis=1)  # keys are sorted: an exact float tie between texts goes the same way always
        # np.take keeps the gathered columns C-ordered (logits[:, cols] is F-ordered: reduceat 5x slower)
        gathered = np.take(logits, cols, axis=1)
        class_scores = np.maximum.reduceat(gathered, starts, axis=1) if mode == "flat" else gathered
        top = class_scores == class_scores.max(axis=1, keepdims=True)  # the best category's owners
        first = np.where(top, name_rank[None, :], len(classes)).argmin(axis=1)  # a class index
        sl = slice(s, s + len(best))
        pred_cat[sl] = best
        score[sl] = logits[np.arange(len(best)), best]
        pred_class[sl] = first
        n_owners[sl] = top.sum(axis=1)
        chunk_owners = [classes[c] for c in pred_class[sl]]
        for i in np.flatnonzero(n_owners[sl] > 1):  # ties are rare: join names only for those rows
            chunk_owners[i] = "|".join(classes[c] for c in by_name[top[i, by_name]])
        owners.extend(chunk_owners)
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


def needed_names(labels: LabelSet | Sequence[LabelSet], levels: Sequence[int], orderings: int, seed: int) -> list[str]:
    """Names that some level of some ordering (of any names kind) uses; a 1-level run embeds only first names."""
    top = max(levels)
    seen: set[str] = set()
    for kind in [labels] if isinstance(labels, LabelSet) else labels:
        for o in range(orderings):
            for names in kind.ordered(o, seed).values():
                seen.update(names[:top])
    return sorted(seen)  # sorted: text batches (and so every float) never depend on the file's order


def _prepare(config: SweepConfig):
    if config.mode not in MODES:
        raise InputError(f"unknown mode '{config.mode}' (choose flat or pooled)", field="mode")
    store_data = None
    specs = list(config.backbones)
    if config.embeddings:  # image embeddings from stores (core.store); the images themselves are never opened
        from .store import store_specs, stores_dataset

        store_data = stores_dataset(config.embeddings)
        if not specs:  # the config keeps what was asked for; run.json records these as backbones_resolved
            specs = store_specs(config.embeddings)
        elif len(specs) != len(config.embeddings):
            raise InputError(f"{len(config.embeddings)} embedding stores but {len(specs)} backbones; give "
                             "one backbone per store, in the same order (or none)", field="embeddings")
    if not specs:
        raise InputError("no backbone given (use --model)", field="model")
    if config.orderings < 1:
        raise InputError("orderings must be at least 1", field="orderings")
    if any(int(k) < 1 for k in config.ensemble_shots):
        raise InputError("ensemble shots must be positive integers", field="ensemble-shots")
    names = [b.display for b in specs]
    if len(set(names)) != len(names):
        raise InputError("two backbones have the same name; give them labels", field="model")
    dataset = store_data if store_data is not None else load_dataset(
        config.dataset, allow_absolute=config.allow_absolute_paths, split=config.split,
        image_column=config.image_column, label_column=config.label_column, data_root=config.data_root)
    labels = (load_labels(config.labels, dataset.classes, config.data_root) if config.labels
              else labels_from_classes(dataset.classes))
    templates = load_templates(config.templates)
    levels = parse_levels(config.levels, labels.max_names)
    kinds = names_kinds(labels, config.controls, config.seed, config.vocabulary)
    freq = class_frequency(config.class_frequency, labels.names) if config.class_frequency else None
    externals = [load_external_predictions(s, labels) for s in config.external_predictions]
    # resolve every backbone now (names, checkpoint hashes, weights present) so a bad one
    # fails before the run directory exists; the networks themselves are built on first use
    backbones = [load_backbone(spec, lazy=True) for spec in specs]
    for b in backbones:
        b.ensure_weights()
    return dataset, labels, kinds, templates, levels, freq, externals, backbones


def run_sweep(
    config: SweepConfig,
    emit: EventCallback = ignore_events,
    cancel: Optional[CancelToken] = None,
) -> SweepResult:
    """Run a full sweep, writing the run directory as levels finish.

    Bad input raises :class:`InputError` before anything is written. Cancelling (token
    or Ctrl-C) stops between batches and leaves a valid run marked ``cancelled``;
    KeyboardInterrupt is re-raised after the run directory is closed.
    """
    cancel = cancel or CancelToken()
    check_out(config.out, config.overwrite)  # a reused or unwritable folder is refused before any work
    dataset, labels, kinds, templates, levels, freq, externals, backbones = _prepare(config)
    for w in labels.warnings:
        emit(Log(w, "warning"))
    emit(Log(dataset.describe()))
    resolved = {
        "templates_resolved": templates,
        "levels_resolved": levels,
        "labels_resolved": labels.names,
        "controls_resolved": {k: v.names for k, v in kinds.items() if k != SYNONYMS},
        "dataset_kind": dataset.kind,
        "dataset_classes": dataset.classes,
        "backbones_resolved": [b.spec.to_dict() for b in backbones],
    }
    writer = RunWriter(config.out, {**config.to_dict(), **resolved}, overwrite=config.overwrite)
    writer.meta["backbones"] = []
    writer.add_skipped(dataset.problems)
    summary: dict[str, Any] = {"backbones": {}}
    all_levels: list[dict] = []
    all_per_class: list[dict] = []
    cache = None
    keep = len(backbones) + len(externals) >= 2
    try:
        cache = EmbeddingCache(config.cache_dir) if config.use_cache else None
        outcomes = []
        book = CurveBook(levels, config.bootstrap, config.seed, config.alpha)
        for position, backbone in enumerate(backbones):
            outcomes.append(_sweep_backbone(config, position, backbone, dataset, kinds, templates, levels, writer,
                                            cache, emit, cancel, summary, all_levels, all_per_class, keep, book))
        if config.orderings > 1:
            _write_ordering_summary(writer, all_levels)
        _analysis(config, labels, levels, outcomes, externals, freq, all_per_class, writer, emit, cancel, summary)
        writer.finish(Status.COMPLETED, summary)
        status = Status.COMPLETED
    except (Cancelled, KeyboardInterrupt) as e:
        # a stop signal (SIGTERM, SIGHUP) ends as "interrupted", Ctrl-C and the cancel button as "cancelled"
        stopped = getattr(e, "status", None) or cancel.status
        writer.finish(stopped, summary, error=cancel.reason if cancel.cancelled else str(e) or "interrupted")
        emit(RunFinished(stopped, str(writer.dir), summary))
        if isinstance(e, KeyboardInterrupt):
            raise
        return SweepResult(str(writer.dir), stopped, summary, pd.DataFrame(all_levels))
    except BaseException as e:
        if cancel.cancelled:  # e.g. data-loader workers killed by the same signal: still a stop, not a failure
            writer.finish(cancel.status, summary, error=f"{cancel.reason} ({type(e).__name__}: {e})")
            emit(RunFinished(cancel.status, str(writer.dir), summary))
            raise
        writer.finish(Status.FAILED, summary, error=f"{type(e).__name__}: {e}")
        emit(RunFinished(Status.FAILED, str(writer.dir), summary, error=str(e)))
        raise
    finally:
        if cache is not None:
            cache.close()
    emit(RunFinished(status, str(writer.dir), summary))
    return SweepResult(str(writer.dir), status, summary, pd.DataFrame(all_levels))


def _sweep_backbone(config, position, backbone, dataset, kinds: dict[str, LabelSet], templates, levels, writer, cache,
                    emit, cancel, summary, all_levels, all_per_class, keep_scores: bool, book: CurveBook) -> BackboneOutcome:
    writer.meta["backbones"].append(backbone.describe())
    writer.update()
    name = backbone.name

    t0 = time.perf_counter()
    if config.embeddings:  # from this backbone's store (core.store.StoreDataset): no image is opened
        emb = dataset.image_embeddings(position, backbone, cache)
    else:
        emb = embed_images(backbone, dataset, cache=cache, batch_size=config.batch_size,
                           num_workers=config.num_workers, emit=emit, cancel=cancel)
    t_images = time.perf_counter() - t0
    writer.add_skipped(emb.skipped)

    labels = kinds[SYNONYMS]
    class_index = {c: i for i, c in enumerate(labels.classes)}
    keep = [j for j, i in enumerate(emb.indices) if dataset.records[i].label in class_index]
    no_names = [(dataset.records[i].id, f"class '{dataset.records[i].label}' has no names in the labels file")
                for i in emb.indices if dataset.records[i].label not in class_index]
    if no_names:
        writer.add_skipped(no_names)
        emit(Log(f"{len(no_names)} images belong to classes missing from the labels file and are not scored", "warning"))
    X = emb.matrix[keep]
    idx = emb.indices[keep]
    if len(X) == 0:
        raise InputError("no usable images to score (see skipped.csv)", file=config.dataset)
    y = np.array([class_index[dataset.records[i].label] for i in idx], dtype=np.int64)
    ids = [dataset.records[i].id for i in idx]
    outcome = BackboneOutcome(name, ids, y, X, 0.0)

    t1 = time.perf_counter()
    all_names = needed_names(list(kinds.values()), levels, config.orderings, config.seed)
    name_emb = embed_names(backbone, all_names, templates, cache=cache, emit=emit, cancel=cancel)
    t_text = time.perf_counter() - t1
    name_row = {n: j for j, n in enumerate(all_names)}
    classes = labels.classes
    outcome.scale = logit_scale(backbone, cache)
    if not backbone.loaded:
        emit(Log(f"{name}: every image and prompt came from the cache; the model was not loaded"))
    logit_dir = writer.dir / "logits" / slug(name, fallback="backbone")
    if config.save_logits:
        logit_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"image": ids, "true_class": [classes[c] for c in y]}).to_csv(logit_dir / "images.csv", index=False)

    curves = [(kind, o) for kind in kinds for o in range(config.orderings)]
    total = len(curves) * len(levels)
    for ci_, (kind, o) in enumerate(curves):
        names = kinds[kind].ordered(o, config.seed)
        key = (name, kind, o)
        curve_rows = []
        previous: Optional[pd.DataFrame] = None  # the last level's predictions of this curve, for flips.csv
        for li, k in enumerate(levels):
            cancel.raise_if_cancelled()
            ts = time.perf_counter()
            want_scores = kind == SYNONYMS and o == 0 and (keep_scores or config.save_logits)
            s = score_level(X, y, name_emb, name_row, names, classes, k, config.mode, config.top_k, want_scores)
            p1, p_prev = book.add(key, s.credit)
            lo, hi = bootstrap_ci(s.credit, config.bootstrap, seed=config.seed + 7919 * o + k)
            row = {
                "backbone": name, "ordering": o, "level": k, "n_categories": s.n_categories,
                "n_images": len(y), "top1": float(s.credit.mean()), "top5": float(s.credit_topk.mean()),
                "ci_low": round(lo, 6), "ci_high": round(hi, 6), "n_correct": credit_count(s.credit.sum()),
                "seconds": round(time.perf_counter() - ts, 4), "n_tied": s.n_tied, "names": kind,
                "p_vs_level1": p1, "p_vs_previous": p_prev,
            }
            counts, recall = per_class_recall(y, s.credit, len(classes))
            _, recall5 = per_class_recall(y, s.credit_topk, len(classes))
            hits = np.bincount(y, weights=s.credit, minlength=len(classes))
            per_class = [
                {"backbone": name, "ordering": o, "level": k, "class": c, "n_images": int(counts[ci]),
                 "n_correct": credit_count(hits[ci]), "recall": float(recall[ci]), "top5_recall": float(recall5[ci]),
                 "n_names": int(s.names_per_class[ci]), "names": kind}
                for ci, c in enumerate(classes)
            ]
            if s.class_scores is not None:
                if config.save_logits:
                    np.save(logit_dir / f"level_{k}.npy", s.class_scores.astype(np.float16))
                if keep_scores:
                    outcome.class_scores[k] = s.class_scores
            frame = pd.DataFrame({
                "image": ids, "true_class": [classes[c] for c in y], "level": k,
                "predicted_label": s.pred_label, "predicted_class": [classes[c] for c in s.pred_class],
                "correct": s.correct.astype(int), "ordering": o, "backbone": name, "score": np.round(s.score, 5),
                "credit": np.round(s.credit, 6), "n_owners": s.n_owners, "predicted_classes": s.owners,
                "names": kind,
            })
            if config.save_predictions:
                writer.append("predictions.csv", frame, PREDICTION_COLUMNS)
            writer.ensure_header("flips.csv", flip_columns(frame))
            if previous is not None:  # flips.csv: what changed since the previous level of this curve
                writer.append("flips.csv", flips_between(previous, frame), flip_columns(frame))
            previous = frame
            writer.append("per_class.csv", per_class, PER_CLASS_COLUMNS)
            writer.append("levels.csv", [row], LEVEL_COLUMNS)
            all_levels.append(row)
            curve_rows.append(row)
            if o == 0 and kind == SYNONYMS:
                all_per_class.extend(per_class)
            emit(LevelFinished(k, o, row, per_class, name))
            emit(Progress(Stage.SCORE, ci_ * len(levels) + li + 1, total, None, name))
        # the curve is complete: Holm along it and the peak shares, written into its levels.csv rows
        holm_p, share = book.finish(key)
        for row, p, sh in zip(curve_rows, holm_p, share):
            row["p_vs_level1_holm"] = float(p)
            row["peak_share"] = round(float(sh), 6)
        writer.rewrite("levels.csv", all_levels, LEVEL_COLUMNS)

    thresholds, verdicts = book.threshold_rows(name)
    controls = book.control_rows(name)
    writer.append("threshold.csv", thresholds, THRESHOLD_COLUMNS)
    writer.append("controls.csv", controls, CONTROL_COLUMNS)
    for table, rows in (("threshold", thresholds), ("controls", controls)):
        if rows:
            emit(TableRows(table, rows))
    summary["backbones"][name] = {
        "n_images_scored": int(len(y)),
        "n_skipped": len(emb.skipped),
        "images_encoded": emb.n_encoded,
        "images_from_cache": emb.n_cached,
        "seconds_images": round(t_images, 3),
        "seconds_text": round(t_text, 3),
        "logit_scale": outcome.scale,
        "model_loaded": backbone.loaded,
        "threshold": verdicts.get(SYNONYMS, {}),
    }
    if len(kinds) > 1:
        summary["backbones"][name]["controls"] = {kind: verdicts[kind] for kind in kinds if kind != SYNONYMS}
        summary["backbones"][name]["semantic_effect"] = {
            c: {int(r["level"]): {"effect": r["effect"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                                  "p_value": r["p_value"]} for r in controls if r["control"] == c}
            for c in kinds if c != SYNONYMS}
    writer.update(summary=summary)
    return outcome


def _write_ordering_summary(writer: RunWriter, rows: list[dict]) -> None:
    df = pd.DataFrame(rows)
    g = df.groupby(["backbone", "names", "level"], sort=False)
    out = g.agg(
        n_categories=("n_categories", "max"), n_images=("n_images", "first"),
        top1_mean=("top1", "mean"), top1_sd=("top1", "std"), top1_min=("top1", "min"), top1_max=("top1", "max"),
        top5_mean=("top5", "mean"), orderings=("ordering", "nunique"),
    ).reset_index()
    # the columns of earlier versions first, in their order; "names" (control curves) is an addition
    out = out[[c for c in out.columns if c != "names"] + ["names"]]
    out.to_csv(writer.dir / "levels_summary.csv", index=False)


TABLE_COLUMNS = {
    "backbones": ["level", "backbone", "kind", "top1", "n_images", "agreement_with_best_clip"],
    "pairs": ["level", "a", "b", "disagreement", "only_a_right", "only_b_right", "both_wrong"],
    "ensembles": ["level", "method", "k", "split", "n_fit", "n_eval", "top1"],
}


def _table(writer: RunWriter, emit: EventCallback, name: str, rows: list[dict]) -> None:
    if rows:
        writer.append(f"{name}.csv", rows, TABLE_COLUMNS[name])
        emit(TableRows(name, rows))


def _analysis(config, labels: LabelSet, levels, outcomes: list[BackboneOutcome], externals: list[ExternalPredictions],
              freq, all_per_class, writer, emit, cancel, summary) -> None:
    """Backbone comparison, oracle, ensembles and class-frequency correlation."""
    classes = labels.classes
    per_class_rows = list(all_per_class)
    systems = len(outcomes) + len(externals)
    if systems >= 2:
        # the images every backbone could use, in the first backbone's order
        common = set(outcomes[0].ids)
        for o in outcomes[1:]:
            common &= set(o.ids)
        ids = [i for i in outcomes[0].ids if i in common]
        rows_of = [{i: r for r, i in enumerate(o.ids)} for o in outcomes]
        sel = [np.array([ro[i] for i in ids], dtype=np.int64) for ro in rows_of]
        y = outcomes[0].y[sel[0]]
        scales = [o.scale for o in outcomes]
        feats = np.concatenate([o.X[s] for o, s in zip(outcomes, sel)], axis=1) if outcomes else None
        ext_choices = np.stack([e.choices(ids, len(classes)) for e in externals]) if externals else None
        for e in externals:
            cov = e.coverage(ids)
            if cov < 1:
                emit(Log(f"{e.name}: no prediction for {round((1 - cov) * len(ids))} of {len(ids)} images (counted wrong)", "warning"))
            if e.unmatched_answers:
                top = ", ".join(f"'{a}'" for a in list(e.unmatched_answers)[:5])
                emit(Log(f"{e.name}: {sum(e.unmatched_answers.values())} answers name no class (e.g. {top})", "warning"))
            ext_credit = ens.credit(e.choices(ids, len(classes)), y)
            counts, recall = per_class_recall(y, ext_credit, len(classes))
            hits = np.bincount(y, weights=ext_credit, minlength=len(classes))
            for lvl in levels:
                per_class_rows += [{"backbone": e.name, "ordering": 0, "level": lvl, "class": c, "n_images": int(counts[ci]),
                                    "n_correct": credit_count(hits[ci]), "recall": float(recall[ci])}
                                   for ci, c in enumerate(classes)]
        ens_summary = {}
        # the ensemble stage sees the classes in name order: its k-shot splits and fits never depend on
        # the order of classes in the labels file
        by_name = np.argsort(np.asarray(classes, dtype=object), kind="stable")
        y = np.argsort(by_name)[y]
        ext_choices = ext_choices[:, :, by_name] if ext_choices is not None else None
        names = [o.name for o in outcomes] + [e.name for e in externals]
        for li, k in enumerate(levels):
            cancel.raise_if_cancelled()
            emit(Progress(Stage.ENSEMBLES, li, len(levels), None, "ensemble"))
            scores = [o.class_scores[k][s][:, by_name] for o, s in zip(outcomes, sel)]
            parts = [ens.choices(scores)] if scores else []
            if ext_choices is not None:
                parts.append(ext_choices)
            all_choices = np.concatenate(parts)  # [systems, N, C] under the tie policy
            bb_rows = [{"level": k, "backbone": n, "kind": "clip" if j < len(outcomes) else "external",
                        "top1": float(ens.credit(all_choices[j], y).mean()), "n_images": len(y)} for j, n in enumerate(names)]
            if ext_choices is not None and len(outcomes):
                best_clip = int(np.argmax([r["top1"] for r in bb_rows[: len(outcomes)]]))
                for r, ec in zip(bb_rows[len(outcomes):], all_choices[len(outcomes):]):
                    r["agreement_with_best_clip"] = float((ec * all_choices[best_clip]).sum(axis=1).mean())
            _table(writer, emit, "backbones", bb_rows)
            _table(writer, emit, "pairs", [{"level": k, **r} for r in ens.pairwise_disagreement(all_choices, y, names)])
            fixed = ens.fixed_ensembles(scores, scales, y, ext_choices)
            _table(writer, emit, "ensembles", [{"level": k, "method": m, "k": 0, "split": 0, "n_fit": 0, "n_eval": len(y),
                                                "top1": v} for m, v in fixed.items() if m != "oracle_gain"])
            lvl_sum = {"oracle_gain": fixed["oracle_gain"], "oracle": fixed["oracle"], "best_single": fixed["best_single"]}
            if len(outcomes) >= 2 and config.ensemble_shots and config.ensemble_splits > 0:
                rows = ens.adaptive_rows(scores, scales, y, feats, config.ensemble_shots, config.ensemble_splits,
                                         seed=config.seed, methods=config.ensemble_methods)
                _table(writer, emit, "ensembles", [{"level": k, **r} for r in rows])
                df = pd.DataFrame(rows)
                if not df.empty:
                    m = df.groupby(["k", "method"])["top1"].mean().unstack()
                    lvl_sum["adaptive"] = {int(kk): {c: float(m.loc[kk, c]) for c in m.columns} for kk in m.index}
            ens_summary[int(k)] = lvl_sum
        emit(Progress(Stage.ENSEMBLES, len(levels), len(levels), None, "ensemble"))
        summary["ensembles"] = ens_summary
    if freq is not None:
        per_class = pd.DataFrame(per_class_rows)
        missing = [c for c in classes if c not in freq]
        if missing:
            emit(Log(f"no frequency for {len(missing)} classes (e.g. {', '.join(missing[:3])}); they are left out", "warning"))
        table, corr = frequency_table(per_class, freq)
        table.to_csv(writer.dir / "frequency.csv", index=False)
        corr.to_csv(writer.dir / "frequency_summary.csv", index=False)
        emit(TableRows("frequency", table.to_dict("records")))
        emit(TableRows("frequency_summary", corr.to_dict("records")))
        summary["frequency"] = corr.to_dict("records")


class _SweepModule(types.ModuleType):
    """Lets ``core.sweep(...)`` stay the public API function even after this module is imported
    (importing ``core.sweep`` makes the attribute the module, so the module forwards calls)."""

    def __call__(self, *args: Any, **kwargs: Any):
        from .api import sweep

        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _SweepModule
