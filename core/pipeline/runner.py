"""Semantic-scaling sweeps: every level re-scores cached image embeddings.

Images are encoded once per backbone (or read from embedding stores; :mod:`core.embedding.image_source`);
each level only builds a different text matrix from the first k names of each class and
scores against it (:mod:`core.pipeline.scoring`), so a K-level sweep costs little more than one level.

The pipeline: :func:`core.pipeline.context.prepare` resolves every input into a
:class:`~core.pipeline.context.SweepContext` before the run directory exists;
:func:`_sweep_backbone` scores each backbone's curves and writes their rows as levels
finish; with several backbones (or external predictions) :mod:`core.pipeline.analysis` then writes
the backbone comparison, oracle and ensembles (:mod:`core.stats.ensemble`), and with a
class-frequency file the per-class accuracy vs frequency correlation (:mod:`core.stats.frequency`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from core.util.memory import release_free_memory
from core.pipeline.analysis import BackboneOutcome, run_analysis
from core.embedding.cache import EmbeddingCache
from core.util.config import SweepConfig, check_numbers
from core.labels.controls import SYNONYMS
from core.embedding.embed import embed_names, logit_scale
from core.util.errors import InputError
from core.util.files import disk_full_error, is_disk_full
from core.util.events import (CancelToken, Cancelled, EventCallback, ImageSkipped, LevelFinished, Log, Progress, RunFinished, Stage,
                     Status, TableRows, ignore_events)
from core.stats.flips import flip_columns, flips_between
from core.labels.labelset import LabelSet
from core.stats.metrics import bootstrap_ci, credit_count, per_class_recall
from core.util.names import slug
from core.results.runs import LEVEL_COLUMNS, PER_CLASS_COLUMNS, PREDICTION_COLUMNS, RunWriter, check_out
from core.models.base import ANSWERS, EMBEDDINGS, SCORES
from core.pipeline.answers import AnswerScores
from core.stats.answers import ANSWER_COLUMNS, unmatched_share
from core.pipeline.scoring import EmbeddingScores, LevelPlan, MatrixScores, score_level
from core.stats.significance import CONTROL_COLUMNS, THRESHOLD_COLUMNS, CurveBook
from core.pipeline.context import SweepContext, prepare
from core.pipeline.names import level_names
from core.stats.names import NAME_COLUMNS


@dataclass
class SweepResult:
    run_dir: str
    status: str
    summary: dict = field(default_factory=dict)
    levels: pd.DataFrame = field(default_factory=pd.DataFrame)


def needed_names(labels: LabelSet | Sequence[LabelSet], levels: Sequence[int], orderings: int, seed: int) -> list[str]:
    """Names that some level of some ordering (of any names kind) uses; a 1-level run embeds only first names."""
    top = max(levels)
    seen: set[str] = set()
    for kind in [labels] if isinstance(labels, LabelSet) else labels:
        for o in range(orderings):
            for names in kind.ordered(o, seed).values():
                seen.update(names[:top])
    return sorted(seen)  # sorted: text batches (and so every float) never depend on the file's order


def logits_plan(config: SweepConfig, n_images: int, n_classes: int, n_levels: int,
                n_backbones: int) -> tuple[bool, float, str]:
    """(write logits/?, its size in MB, why) under ``save_logits`` and ``logits_limit_mb``.

    The dump is float16 [images, classes] per backbone and level (ordering 0, synonyms):
    by default (``save_logits=None``) it is written when it would take at most
    ``logits_limit_mb`` (:data:`core.util.config.DEFAULT_LOGITS_LIMIT_MB`), skipped above.
    """
    mb = n_images * n_classes * 2 * n_levels * n_backbones / 1e6
    if config.save_logits is False:
        return False, mb, "logits/ not written (save_logits off)"
    if config.save_logits is None and config.logits_limit_mb is not None and mb > config.logits_limit_mb:
        return False, mb, (f"logits/ not written: the class scores of {n_backbones} backbone(s) x {n_levels} level(s) "
                           f"would take {mb:,.0f} MB, over the {config.logits_limit_mb:g} MB limit; "
                           "use --logits always (save_logits=True) to write them")
    return True, mb, ""


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
    check_numbers(config.to_dict())  # out-of-range options are refused before any work
    check_out(config.out, config.overwrite)  # a reused or unwritable folder is refused before any work
    ctx = prepare(config, emit, cancel)
    dataset, labels, kinds, backbones = ctx.dataset, ctx.labels, ctx.kinds, ctx.backbones
    for w in [*dataset.warnings, *labels.warnings]:
        emit(Log(w, "warning"))
    emit(Log(dataset.describe()))
    resolved = {
        "templates_resolved": ctx.templates,
        "levels_resolved": ctx.levels,
        "labels_resolved": labels.names,
        "controls_resolved": {k: v.names for k, v in kinds.items() if k != SYNONYMS},
        "dataset_kind": dataset.kind,
        "dataset_classes": dataset.classes,
        "backbones_resolved": [b.spec.to_dict() for b in backbones],
    }
    writer = RunWriter(config.out, {**config.to_dict(), **resolved}, overwrite=config.overwrite)
    ctx.writer = writer
    summary = ctx.summary
    loading: Optional[threading.Thread] = None
    try:
        writer.meta["backbones"] = []
        writer.add_skipped(dataset.problems)
        for path, reason in dataset.problems:  # listed as skipped like the images that fail to open
            emit(ImageSkipped(path, reason))
        known = set(labels.classes)
        n_scored = sum(1 for r in dataset.records if r.label in known)  # at most this many rows per level
        ctx.save_logits, mb, why = logits_plan(config, n_scored, len(labels.classes), len(ctx.levels), len(backbones))
        summary["logits"] = {"saved": ctx.save_logits, "estimated_mb": round(mb, 1), "limit_mb": config.logits_limit_mb}
        if why and config.save_logits is None:
            emit(Log(why))
        ctx.cache = EmbeddingCache(config.cache_dir) if config.use_cache else None
        loading = _load_ahead(ctx)
        ctx.book = CurveBook(ctx.levels, config.bootstrap, config.seed, config.alpha)
        outcomes = [_sweep_backbone(ctx, position, backbone) for position, backbone in enumerate(backbones)]
        if config.orderings > 1:
            _write_ordering_summary(writer, ctx.all_levels)
        release_free_memory()  # the last level's scoring buffers, before the analysis allocates its own
        run_analysis(ctx, outcomes)
        writer.finish(Status.COMPLETED, summary)
        status = Status.COMPLETED
    except (Cancelled, KeyboardInterrupt) as e:
        # a stop signal (SIGTERM, SIGHUP) ends as "interrupted", Ctrl-C and the cancel button as "cancelled"
        stopped = getattr(e, "status", None) or cancel.status
        writer.finish(stopped, summary, error=cancel.reason if cancel.cancelled else str(e) or "interrupted")
        emit(RunFinished(stopped, str(writer.dir), summary))
        if isinstance(e, KeyboardInterrupt):
            raise
        return SweepResult(str(writer.dir), stopped, summary, pd.DataFrame(ctx.all_levels))
    except BaseException as e:
        if cancel.cancelled:  # e.g. data-loader workers killed by the same signal: still a stop, not a failure
            writer.finish(cancel.status, summary, error=f"{cancel.reason} ({type(e).__name__}: {e})")
            emit(RunFinished(cancel.status, str(writer.dir), summary))
            raise
        full = disk_full_error(e, *_full_where(e, writer.dir, ctx.cache)) if is_disk_full(e) else None
        try:
            writer.finish(Status.FAILED, summary, error=str(full) if full else f"{type(e).__name__}: {e}")
        except OSError:
            if full is None:
                raise  # (a full disk may refuse run.json too: it keeps its last committed state)
        emit(RunFinished(Status.FAILED, str(writer.dir), summary, error=str(full or e)))
        if full is not None:
            raise full from e
        raise
    finally:
        if loading is not None:  # a network still being built must not outlive the run (nor the process)
            loading.join()
        writer.close()  # the folder's claim, whatever happened
        if ctx.cache is not None:
            ctx.cache.close()
    emit(RunFinished(status, str(writer.dir), summary))
    return SweepResult(str(writer.dir), status, summary, pd.DataFrame(ctx.all_levels))


def _load_ahead(ctx: SweepContext) -> Optional[threading.Thread]:
    """Start building the first backbone's network while its images are hashed and looked up,
    when the cache has never seen it (a re-run from the cache never builds a model)."""
    first = ctx.backbones[0] if ctx.backbones and not ctx.config.embeddings else None
    if first is None or first.output != EMBEDDINGS or first.loaded or not hasattr(first, "prefetch"):
        return None
    if ctx.cache is None or not ctx.cache.knows(first.identity):
        return first.prefetch()
    return None


def _full_where(err: BaseException, run_dir, cache) -> tuple[str, str]:
    """(folder, what) a full disk stopped: the embedding cache's folder, else the run folder."""
    import sqlite3
    from pathlib import Path

    from core.embedding.cache import CacheUnavailable

    name = getattr(err, "filename", None)
    if cache is not None and (isinstance(err, (sqlite3.Error, CacheUnavailable))
                              or name and Path(name).is_relative_to(cache.root)):
        return str(cache.root), "the embedding cache"
    return str(run_dir), "the run folder (the levels finished before are kept)"


def _sweep_backbone(ctx: SweepContext, position: int, backbone) -> BackboneOutcome:
    """Encode (or read) one backbone's images and names, score every level of every curve, write the rows."""
    config, writer, emit, cancel = ctx.config, ctx.writer, ctx.emit, ctx.cancel
    kinds, levels, summary = ctx.kinds, ctx.levels, ctx.summary
    writer.meta["backbones"].append(backbone.describe())
    writer.update()
    name = backbone.name

    got = _backbone_scores(ctx, position, backbone)
    ids, y, scores = got.ids, got.y, got.scores
    labels = kinds[SYNONYMS]
    classes = labels.classes
    outcome = BackboneOutcome(name, ids, y, got.X, got.scale, scores, labels.ordered(0, config.seed), classes,
                              config.mode, kind=getattr(backbone, "kind", ""))
    n_skipped, n_encoded, n_cached, t_images, t_text = got.n_skipped, got.n_encoded, got.n_cached, got.t_images, got.t_text
    if not backbone.loaded:
        emit(Log(f"{name}: every image and prompt came from the cache; the model was not loaded"))
    logit_dir = writer.dir / "logits" / slug(name, fallback="backbone")
    if ctx.save_logits and not isinstance(scores, AnswerScores):
        logit_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"image": ids, "true_class": [classes[c] for c in y]}).to_csv(logit_dir / "images.csv", index=False)
    true_class = [classes[c] for c in y]

    curves = [(kind, o) for kind in kinds for o in range(config.orderings)]
    total = len(curves) * len(levels)
    unmatched: dict[int, Optional[float]] = {}  # answering kinds: share of answers matching no class, per level
    for ci_, (kind, o) in enumerate(curves):
        names = kinds[kind].ordered(o, config.seed)
        key = (name, kind, o)
        curve_rows = []
        previous: Optional[pd.DataFrame] = None  # the last level's predictions of this curve, for flips.csv
        for li, k in enumerate(levels):
            cancel.raise_if_cancelled()
            release_free_memory()  # the previous level's buffers (core.util.memory)
            ts = time.perf_counter()
            dump = None
            plan = LevelPlan.build(names, classes, k, config.mode)
            if isinstance(scores, AnswerScores):  # answers matched to this level's names
                s, answer_rows = scores.level(plan, y, ids)
                if kind == SYNONYMS and o == 0:
                    writer.append("answers.csv", answer_rows, ANSWER_COLUMNS)
                    share = unmatched_share(answer_rows)
                    unmatched[int(k)] = None if share is None else round(share, 6)
            elif ctx.save_logits and kind == SYNONYMS and o == 0:  # float16, written chunk by chunk
                dump = np.lib.format.open_memmap(logit_dir / f"level_{k}.npy", mode="w+", dtype=np.float16,
                                                 shape=(len(y), len(classes)))
                _reserve(logit_dir / f"level_{k}.npy")
            names_tally = None  # names.csv: embedding and scoring kinds (core.stats.names)
            if not isinstance(scores, AnswerScores):
                if config.save_names:
                    names_tally = level_names(scores, y, plan, levels[li - 1] if li else 0)
                s = score_level(scores, y, plan, config.top_k, class_scores_out=dump, attribution=names_tally)
            if dump is not None:
                dump.flush()
                s.class_scores = None
                del dump
            p1, p_prev = ctx.book.add(key, s.credit)
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
            frame = pd.DataFrame({
                "image": ids, "true_class": true_class, "level": k,
                "predicted_label": s.pred_label, "predicted_class": [classes[c] if c >= 0 else "" for c in s.pred_class],
                "correct": s.correct.astype(int), "ordering": o, "backbone": name, "score": np.round(s.score, 5),
                "credit": np.round(s.credit, 6), "n_owners": s.n_owners, "predicted_classes": s.owners,
                "names": kind,
            })
            del s
            if config.save_predictions:
                writer.append("predictions.csv", frame, PREDICTION_COLUMNS)
            writer.ensure_header("flips.csv", flip_columns(frame))
            if previous is not None:  # flips.csv: what changed since the previous level of this curve
                writer.append("flips.csv", flips_between(previous, frame), flip_columns(frame))
            previous = frame
            writer.append("per_class.csv", per_class, PER_CLASS_COLUMNS)
            writer.append("levels.csv", [row], LEVEL_COLUMNS)
            if names_tally is not None:
                writer.append("names.csv", names_tally.rows(backbone=name, ordering=o, names=kind), NAME_COLUMNS)
                del names_tally
            writer.commit()  # the level's rows in every file are whole: readers trust up to here
            ctx.all_levels.append(row)
            curve_rows.append(row)
            if o == 0 and kind == SYNONYMS:
                ctx.all_per_class.extend(per_class)
            emit(LevelFinished(k, o, row, per_class, name))
            emit(Progress(Stage.SCORE, ci_ * len(levels) + li + 1, total, None, name))
        # the curve is complete: Holm along it and the peak shares, written into its levels.csv rows
        holm_p, share = ctx.book.finish(key)
        for row, p, sh in zip(curve_rows, holm_p, share):
            row["p_vs_level1_holm"] = float(p)
            row["peak_share"] = round(float(sh), 6)
        writer.rewrite("levels.csv", ctx.all_levels, LEVEL_COLUMNS)
        writer.commit()

    thresholds, verdicts = ctx.book.threshold_rows(name)
    controls = ctx.book.control_rows(name)
    writer.append("threshold.csv", thresholds, THRESHOLD_COLUMNS)
    writer.append("controls.csv", controls, CONTROL_COLUMNS)
    writer.commit()
    for table, rows in (("threshold", thresholds), ("controls", controls)):
        if rows:
            emit(TableRows(table, rows))
    summary["backbones"][name] = {
        "n_images_scored": int(len(y)),
        "n_skipped": n_skipped,
        "images_encoded": n_encoded,
        "images_from_cache": n_cached,
        "seconds_images": round(t_images, 3),
        "seconds_text": round(t_text, 3),
        "logit_scale": outcome.scale,
        "model_loaded": backbone.loaded,
        "threshold": verdicts.get(SYNONYMS, {}),
        **({"kind": backbone.kind, "mode": getattr(backbone, "mode", None), "unmatched_share": unmatched}
           if isinstance(scores, AnswerScores) else {}),
    }
    if len(kinds) > 1:
        summary["backbones"][name]["controls"] = {kind: verdicts[kind] for kind in kinds if kind != SYNONYMS}
        summary["backbones"][name]["semantic_effect"] = {
            c: {int(r["level"]): {"effect": r["effect"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                                  "p_value": r["p_value"]} for r in controls if r["control"] == c}
            for c in kinds if c != SYNONYMS}
    writer.update(summary=summary)
    if ctx.n_systems < 2:  # nothing rescores this backbone later: keep only what the summary needs
        outcome.X = outcome.scores = None
    return outcome


@dataclass
class _Scored:
    """One backbone's scored images: ids, true classes and where the level scorer gets its scores."""

    ids: list[str]
    y: np.ndarray
    scores: object  # EmbeddingScores or MatrixScores
    X: Optional[np.ndarray]  # image embeddings (embedding kinds), the adaptive ensemble's input
    scale: float
    n_skipped: int
    n_encoded: int
    n_cached: int
    t_images: float
    t_text: float


def _backbone_scores(ctx: SweepContext, position: int, backbone) -> _Scored:
    """Images and names through the backbone's kind: embeddings (cached) or a score matrix (cached)."""
    config, writer, cache, emit, cancel = ctx.config, ctx.writer, ctx.cache, ctx.emit, ctx.cancel
    dataset, kinds, levels = ctx.dataset, ctx.kinds, ctx.levels
    labels = kinds[SYNONYMS]
    class_index = {c: i for i, c in enumerate(labels.classes)}
    all_names = needed_names(list(kinds.values()), levels, config.orderings, config.seed)
    name_row = {n: j for j, n in enumerate(all_names)}

    t0 = time.perf_counter()
    if backbone.output == EMBEDDINGS:
        got = ctx.images.embeddings(backbone, position, cache=cache, emit=emit, cancel=cancel)
        skipped, n_encoded, n_cached = got.skipped, got.n_encoded, got.n_cached
    elif backbone.output == SCORES:
        wanted = [i for i, r in enumerate(dataset.records) if r.label in class_index]
        got = backbone.score_names(dataset, wanted, all_names, cache=cache, emit=emit, cancel=cancel)
        skipped = [(dataset.records[i].id, why) for i, why in got.skipped]
        n_encoded, n_cached = got.n_computed, len(got.indices) - got.n_computed
    elif backbone.output == ANSWERS:
        wanted = [i for i, r in enumerate(dataset.records) if r.label in class_index]
        got = AnswerScores(backbone, dataset, wanted, labels.classes, rule=config.vlm_match, seed=config.seed,
                           cache=cache, emit=emit, cancel=cancel)
        skipped = [(dataset.records[i].id, why) for i, why in got.skipped]
        n_encoded, n_cached = got.n_computed, len(got.indices) - got.n_computed
    else:
        raise InputError(f"backbone '{backbone.name}' gives '{backbone.output}', which no stage reads", field="model")
    t_images = time.perf_counter() - t0
    writer.add_skipped(skipped)

    keep = [j for j, i in enumerate(got.indices) if dataset.records[i].label in class_index]
    no_names = [(dataset.records[i].id, f"class '{dataset.records[i].label}' has no names in the labels file")
                for i in got.indices if dataset.records[i].label not in class_index]
    if no_names:
        writer.add_skipped(no_names)
        for path, reason in no_names:
            emit(ImageSkipped(path, reason))
        emit(Log(f"{len(no_names)} images belong to classes missing from the labels file and are not scored", "warning"))
    if backbone.output == ANSWERS:  # answers are matched level by level; keep the images with a class
        if len(keep) < len(got.indices):
            got.indices = got.indices[keep]
            if got.open_answers is not None:
                got.open_answers = [got.open_answers[j] for j in keep]
            if got.keys is not None:
                got.keys = [got.keys[j] for j in keep]
        rows = got.indices
    else:
        rows = got.matrix[keep] if len(keep) < len(got.matrix) else np.asarray(got.matrix)
    idx = got.indices[keep] if backbone.output != ANSWERS else got.indices
    if len(rows) == 0:
        raise InputError("no usable images to score (see skipped.csv)", file=config.dataset)
    y = np.array([class_index[dataset.records[i].label] for i in idx], dtype=np.int64)
    ids = [dataset.records[i].id for i in idx]
    # every image of the listing this backbone did not score: those skipped.csv lists for it
    n_skipped = len(dataset.problems) + len(skipped) + len(no_names)
    answers = got if backbone.output == ANSWERS else None
    del got, keep

    t1 = time.perf_counter()
    if answers is not None:  # matched per level (core.pipeline.answers)
        scores, X, scale = answers, None, 1.0
    elif backbone.output == EMBEDDINGS:
        name_emb = embed_names(backbone, all_names, ctx.templates, cache=cache, emit=emit, cancel=cancel)
        scores, X, scale = EmbeddingScores(rows, name_emb, name_row), rows, logit_scale(backbone, cache)
    else:  # the names were scored with the images
        scores, X, scale = MatrixScores(rows, name_row), None, 1.0
    t_text = time.perf_counter() - t1
    return _Scored(ids, y, scores, X, scale, n_skipped, n_encoded, n_cached, t_images, t_text)


def _reserve(path) -> None:
    """Allocate a memory-mapped file's blocks now: a full disk is then an ENOSPC here, not a
    SIGBUS that kills the process when a page is first written."""
    import os

    if hasattr(os, "posix_fallocate"):
        with open(path, "r+b") as f:
            try:
                os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
            except OSError as e:
                if is_disk_full(e):
                    raise
                # the file system cannot preallocate (EOPNOTSUPP...): write as before


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
    writer.rewrite("levels_summary.csv", out.to_dict("records"), list(out.columns))
