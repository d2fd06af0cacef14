"""Semantic-scaling sweeps: every level re-scores cached image embeddings.

Images are encoded once per backbone (see :mod:`core.embed`); each level only builds a
different text matrix from the first k names of each class and scores against it, so a
K-level sweep costs little more than one level.

* flat mode: every name is its own category; an image is correct when its best
  category belongs to its true class; a class's score (for top-5) is the max over its
  categories.
* pooled mode: a class's embedding is the normalised mean of its k name embeddings.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from .backbones import BackboneSpec, load_backbone
from .cache import EmbeddingCache
from .datasets import load_dataset
from .embed import embed_images, embed_names
from .errors import InputError
from .events import CancelToken, Cancelled, EventCallback, LevelFinished, Log, Progress, RunFinished, ignore_events
from .labels import LabelSet, labels_from_classes, load_labels, load_templates, parse_levels
from .metrics import bootstrap_ci, per_class_recall, threshold_analysis, topk_correct
from .runs import LEVEL_COLUMNS, PER_CLASS_COLUMNS, PREDICTION_COLUMNS, RunWriter

MODES = ("flat", "pooled")
SCORE_CHUNK = 8192  # images scored at once; bounds memory for huge label sets


@dataclass
class SweepConfig:
    """Everything a sweep needs; stored in run.json so a run can be repeated exactly."""

    dataset: str
    out: str
    backbones: list[BackboneSpec]
    labels: Optional[str] = None
    templates: Any = "simple"  # preset name, template file, or list of strings
    levels: Any = None  # None = 1,2,4,… up to the longest name list
    mode: str = "flat"
    orderings: int = 1
    seed: int = 0
    batch_size: int = 64
    num_workers: Optional[int] = None
    cache_dir: Optional[str] = None
    use_cache: bool = True
    bootstrap: int = 1000
    top_k: int = 5
    tolerance: float = 0.01
    allow_absolute_paths: bool = False
    save_predictions: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["backbones"] = [b.to_dict() for b in self.backbones]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SweepConfig":
        d = dict(d)
        d["backbones"] = [BackboneSpec(**b) for b in d.get("backbones", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class LevelScores:
    """Scores of all images at one level (rows follow the embedding matrix)."""

    level: int
    n_categories: int
    pred_class: np.ndarray
    pred_label: list[str]
    score: np.ndarray
    correct: np.ndarray
    correct_topk: np.ndarray
    names_per_class: np.ndarray


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
) -> LevelScores:
    """Score every image against the level-k label set (see module docstring)."""
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}' (choose flat or pooled)", field="mode")
    cat_labels, owner, starts = build_categories(names, classes, k)
    n_names = np.diff(np.append(starts, len(cat_labels)))
    if mode == "flat":
        T = name_emb[[name_row[n] for n in cat_labels]]
        label_of = cat_labels
        n_cat = len(cat_labels)
    else:
        T = np.stack([name_emb[[name_row[n] for n in names[c][:k]]].mean(axis=0) for c in classes])
        T /= np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
        label_of = [names[c][0] for c in classes]
        n_cat = len(classes)
    n = len(X)
    pred_class = np.empty(n, dtype=np.int64)
    pred_cat = np.empty(n, dtype=np.int64)
    score = np.empty(n, dtype=np.float32)
    topk = np.empty(n, dtype=bool)
    for s in range(0, n, SCORE_CHUNK):
        logits = X[s : s + SCORE_CHUNK] @ T.T
        best = logits.argmax(axis=1)
        pred_cat[s : s + SCORE_CHUNK] = best
        score[s : s + SCORE_CHUNK] = logits[np.arange(len(best)), best]
        if mode == "flat":
            class_scores = np.maximum.reduceat(logits, starts, axis=1)
            pred_class[s : s + SCORE_CHUNK] = owner[best]
        else:
            class_scores = logits
            pred_class[s : s + SCORE_CHUNK] = best
        topk[s : s + SCORE_CHUNK] = topk_correct(class_scores, y[s : s + SCORE_CHUNK], top_k)
    return LevelScores(
        level=k,
        n_categories=n_cat,
        pred_class=pred_class,
        pred_label=[label_of[i] for i in pred_cat],
        score=score,
        correct=pred_class == y,
        correct_topk=topk,
        names_per_class=n_names,
    )


def _prepare(config: SweepConfig):
    if config.mode not in MODES:
        raise InputError(f"unknown mode '{config.mode}' (choose flat or pooled)", field="mode")
    if not config.backbones:
        raise InputError("no backbone given (use --model)", field="model")
    if config.orderings < 1:
        raise InputError("orderings must be at least 1", field="orderings")
    dataset = load_dataset(config.dataset, allow_absolute=config.allow_absolute_paths)
    labels = load_labels(config.labels) if config.labels else labels_from_classes(dataset.classes)
    templates = load_templates(config.templates)
    levels = parse_levels(config.levels, labels.max_names)
    return dataset, labels, templates, levels


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
    dataset, labels, templates, levels = _prepare(config)
    for w in labels.warnings:
        emit(Log(w, "warning"))
    emit(Log(dataset.describe()))
    resolved = {
        "templates_resolved": templates,
        "levels_resolved": levels,
        "labels_resolved": labels.names,
        "dataset_kind": dataset.kind,
        "dataset_classes": dataset.classes,
    }
    writer = RunWriter(config.out, {**config.to_dict(), **resolved})
    writer.meta["backbones"] = []
    writer.add_skipped(dataset.problems)
    summary: dict[str, Any] = {"backbones": {}}
    all_levels: list[dict] = []
    try:
        cache = EmbeddingCache(config.cache_dir) if config.use_cache else None
        for spec in config.backbones:
            _sweep_backbone(config, spec, dataset, labels, templates, levels, writer, cache, emit, cancel, summary, all_levels)
        if config.orderings > 1:
            _write_ordering_summary(writer, all_levels)
        writer.finish("completed", summary)
        status = "completed"
    except (Cancelled, KeyboardInterrupt) as e:
        writer.finish("cancelled", summary, error="interrupted" if isinstance(e, KeyboardInterrupt) else "cancelled by user")
        emit(RunFinished("cancelled", str(writer.dir), summary))
        if isinstance(e, KeyboardInterrupt):
            raise
        return SweepResult(str(writer.dir), "cancelled", summary, pd.DataFrame(all_levels))
    except BaseException as e:
        writer.finish("failed", summary, error=f"{type(e).__name__}: {e}")
        emit(RunFinished("failed", str(writer.dir), summary, error=str(e)))
        raise
    finally:
        if config.use_cache and "cache" in locals() and cache is not None:
            cache.close()
    emit(RunFinished(status, str(writer.dir), summary))
    return SweepResult(str(writer.dir), status, summary, pd.DataFrame(all_levels))


def _sweep_backbone(config, spec, dataset, labels: LabelSet, templates, levels, writer, cache, emit, cancel, summary, all_levels):
    emit(Progress("load-model", 0, 1, None, spec.display, f"loading {spec.display}"))
    backbone = load_backbone(spec)
    emit(Progress("load-model", 1, 1, None, backbone.name))
    writer.meta["backbones"].append(backbone.describe())
    writer.update()
    name = backbone.name

    t0 = time.perf_counter()
    emb = embed_images(backbone, dataset, cache=cache, batch_size=config.batch_size,
                       num_workers=config.num_workers, emit=emit, cancel=cancel)
    t_images = time.perf_counter() - t0
    writer.add_skipped(emb.skipped)

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

    t1 = time.perf_counter()
    all_names = labels.all_names()
    name_emb = embed_names(backbone, all_names, templates, cache=cache, emit=emit, cancel=cancel)
    t_text = time.perf_counter() - t1
    name_row = {n: j for j, n in enumerate(all_names)}
    classes = labels.classes

    rows0 = []
    total = config.orderings * len(levels)
    for o in range(config.orderings):
        names = labels.ordered(o, config.seed)
        for li, k in enumerate(levels):
            cancel.raise_if_cancelled()
            ts = time.perf_counter()
            s = score_level(X, y, name_emb, name_row, names, classes, k, config.mode, config.top_k)
            lo, hi = bootstrap_ci(s.correct, config.bootstrap, seed=config.seed + 7919 * o + k)
            row = {
                "backbone": name, "ordering": o, "level": k, "n_categories": s.n_categories,
                "n_images": len(y), "top1": float(s.correct.mean()), "top5": float(s.correct_topk.mean()),
                "ci_low": round(lo, 6), "ci_high": round(hi, 6), "n_correct": int(s.correct.sum()),
                "seconds": round(time.perf_counter() - ts, 4),
            }
            counts, recall = per_class_recall(y, s.correct, len(classes))
            _, recall5 = per_class_recall(y, s.correct_topk, len(classes))
            hits = np.bincount(y, weights=s.correct.astype(float), minlength=len(classes)).astype(int)
            per_class = [
                {"backbone": name, "ordering": o, "level": k, "class": c, "n_images": int(counts[ci]),
                 "n_correct": int(hits[ci]), "recall": float(recall[ci]), "top5_recall": float(recall5[ci]),
                 "n_names": int(s.names_per_class[ci])}
                for ci, c in enumerate(classes)
            ]
            if config.save_predictions:
                writer.append("predictions.csv", pd.DataFrame({
                    "image": ids, "true_class": [classes[c] for c in y], "level": k,
                    "predicted_label": s.pred_label, "predicted_class": [classes[c] for c in s.pred_class],
                    "correct": s.correct.astype(int), "ordering": o, "backbone": name, "score": np.round(s.score, 5),
                }), PREDICTION_COLUMNS)
            writer.append("per_class.csv", per_class, PER_CLASS_COLUMNS)
            writer.append("levels.csv", [row], LEVEL_COLUMNS)
            all_levels.append(row)
            if o == 0:
                rows0.append(row)
            emit(LevelFinished(k, o, row, per_class, name))
            emit(Progress("score", o * len(levels) + li + 1, total, None, name))

    df = pd.DataFrame([r for r in all_levels if r["backbone"] == name])
    mean_top1 = df.groupby("level")["top1"].mean()
    summary["backbones"][name] = {
        "n_images_scored": int(len(y)),
        "n_skipped": len(emb.skipped),
        "images_encoded": emb.n_encoded,
        "images_from_cache": emb.n_cached,
        "seconds_images": round(t_images, 3),
        "seconds_text": round(t_text, 3),
        "threshold": threshold_analysis(list(mean_top1.index), list(mean_top1.values), config.tolerance),
    }
    writer.update(summary=summary)


def _write_ordering_summary(writer: RunWriter, rows: list[dict]) -> None:
    df = pd.DataFrame(rows)
    g = df.groupby(["backbone", "level"])
    out = g.agg(
        n_categories=("n_categories", "max"), n_images=("n_images", "first"),
        top1_mean=("top1", "mean"), top1_sd=("top1", "std"), top1_min=("top1", "min"), top1_max=("top1", "max"),
        top5_mean=("top5", "mean"), orderings=("ordering", "nunique"),
    ).reset_index()
    out.to_csv(writer.dir / "levels_summary.csv", index=False)
