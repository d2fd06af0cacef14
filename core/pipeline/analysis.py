"""The multi-backbone analysis of a sweep: comparison, pairs, oracle, ensembles, frequency.

It runs after every backbone has been scored. Per level it needs each backbone's [N, C]
class scores (ordering 0 of the synonym curve); rather than keeping every level's matrix
from the scoring stage, each :class:`BackboneOutcome` keeps the small inputs (image
matrix, name embeddings, names) and recomputes one level's scores when the analysis
reaches it (:func:`core.pipeline.scoring.level_class_scores`, the very floats the scoring stage
computed). A level's scores are dropped once its rows are written, so memory holds one
level, not all of them.

Writes ``backbones.csv``, ``pairs.csv`` and ``ensembles.csv`` (with two or more systems)
and ``frequency.csv`` / ``frequency_summary.csv`` (with class frequencies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np
import pandas as pd

from core.util.memory import release_free_memory
from core.stats import ensemble as ens
from core.util.events import EventCallback, Log, Progress, Stage, TableRows
from core.stats.frequency import frequency_table
from core.stats.metrics import credit_count, per_class_recall
from core.pipeline.scoring import LevelPlan, level_class_scores
from core.pipeline.shared_images import common_rows
from core.pipeline.similarity import write_similarity

if TYPE_CHECKING:
    from core.results.runs import RunWriter
    from core.pipeline.context import SweepContext

TABLE_COLUMNS = {
    "backbones": ["level", "backbone", "kind", "top1", "n_images", "agreement_with_best_clip"],
    "pairs": ["level", "a", "b", "disagreement", "only_a_right", "only_b_right", "both_wrong"],
    "ensembles": ["level", "method", "k", "split", "n_fit", "n_eval", "top1"],
}


@dataclass
class BackboneOutcome:
    """What the analysis needs from one backbone's sweep: enough to rescore ordering 0 at any level."""

    name: str
    ids: list[str]
    y: np.ndarray
    X: Optional[np.ndarray]  # [N, D] image embeddings of the scored images (embedding kinds; the NLC's input)
    scale: float
    scores: Optional[object] = None  # core.pipeline.scoring.EmbeddingScores or MatrixScores
    names: Optional[dict] = None  # class -> names, ordering 0 of the synonym curve
    classes: Optional[list[str]] = None
    mode: str = "flat"
    kind: str = ""  # the model kind (core.models.registry), e.g. "open_clip", "vlm", "openai"

    @property
    def answers_only(self) -> bool:
        """An answering kind: per level a choice of classes (matched answers), no scores."""
        return hasattr(self.scores, "choices")

    @property
    def kind_label(self) -> str:
        """backbones.csv's ``kind``: clip for CLIP kinds, else the kind's name."""
        return "clip" if self.kind in ("", "open_clip", "clip-server") else self.kind

    def choices(self, k: int, rows: Optional[np.ndarray] = None, class_order: Optional[np.ndarray] = None) -> np.ndarray:
        """[len(rows), C] choices at level k of an answering kind (1/m on each of m matched classes)."""
        plan = LevelPlan.build(self.names, self.classes, k, self.mode)
        return self.scores.choices(plan, self.y, rows=rows, class_order=class_order)

    def class_scores(self, k: int, rows: Optional[np.ndarray] = None,
                     class_order: Optional[np.ndarray] = None) -> np.ndarray:
        """[len(rows), C] class scores at level k (rows of ``X``, columns in ``class_order``)."""
        plan = LevelPlan.build(self.names, self.classes, k, self.mode)
        return level_class_scores(self.scores, plan, rows=rows, class_order=class_order)


def write_table(writer: "RunWriter", emit: EventCallback, name: str, rows: list[dict]) -> None:
    """Append rows to ``<name>.csv`` (columns of TABLE_COLUMNS) and show them live."""
    if rows:
        writer.append(f"{name}.csv", rows, TABLE_COLUMNS[name])
        writer.commit()
        emit(TableRows(name, rows))


def run_analysis(ctx: "SweepContext", outcomes: list[BackboneOutcome]) -> None:
    """Backbone comparison, oracle, ensembles and class-frequency correlation."""
    config, writer, emit = ctx.config, ctx.writer, ctx.emit
    classes = ctx.classes
    levels = ctx.levels
    externals = ctx.externals
    per_class_rows = list(ctx.all_per_class)
    if ctx.n_systems >= 2:
        # the images every backbone could use, in the first backbone's order
        ids, sel = common_rows(outcomes)
        y = outcomes[0].y[sel[0]]
        # systems with scores first (ensembles fit them), then answering kinds and external predictions
        # (a choice of classes per image only)
        answering = [(o, s) for o, s in zip(outcomes, sel) if o.answers_only]
        scored = [(o, s) for o, s in zip(outcomes, sel) if not o.answers_only]
        scales = [o.scale for o, _ in scored]
        with_features = [(o, s) for o, s in scored if o.X is not None]
        feats = np.concatenate([o.X[s] for o, s in with_features], axis=1) if with_features else None
        write_similarity(ctx, with_features, y)  # similarity.csv (two or more embedding backbones)
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
        names = [o.name for o, _ in scored] + [o.name for o, _ in answering] + [e.name for e in externals]
        kind_labels = ([o.kind_label for o, _ in scored] + [o.kind_label for o, _ in answering]
                       + ["external"] * len(externals))
        step = _StageSteps(ctx, len(levels) * (1 + _adaptive_splits(config, len(scored))))
        for li, k in enumerate(levels):
            ctx.cancel.raise_if_cancelled()
            step.message = f"level {k}"
            step.report()
            scores = [o.class_scores(k, rows=s, class_order=by_name) for o, s in scored]
            level_choices = ext_choices
            if answering:
                answered = np.stack([o.choices(k, rows=s, class_order=by_name) for o, s in answering])
                level_choices = answered if ext_choices is None else np.concatenate([answered, ext_choices])
            ens_summary[int(k)] = _level(ctx, k, scores, scales, y, feats, level_choices, names, len(scored),
                                         kind_labels, step)
            del scores  # one level's matrices at a time
            release_free_memory()
        step.message = "done"
        step.report()
        ctx.summary["ensembles"] = ens_summary
    if ctx.freq is not None:
        per_class = pd.DataFrame(per_class_rows)
        missing = [c for c in classes if c not in ctx.freq]
        if missing:
            emit(Log(f"no frequency for {len(missing)} classes (e.g. {', '.join(missing[:3])}); they are left out", "warning"))
        table, corr = frequency_table(per_class, ctx.freq)
        table.to_csv(writer.dir / "frequency.csv", index=False)
        corr.to_csv(writer.dir / "frequency_summary.csv", index=False)
        emit(TableRows("frequency", table.to_dict("records")))
        emit(TableRows("frequency_summary", corr.to_dict("records")))
        ctx.summary["frequency"] = corr.to_dict("records")
    # linear probes on each backbone's image embeddings, on the ensembles' k-shot splits (--probe-shots)
    from core.pipeline.probes import run_probes

    run_probes(ctx, outcomes)


def _adaptive_splits(config, n_clip: int) -> int:
    """k-shot fits (splits) per level: the ensemble stage's unit of progress besides the level itself."""
    if n_clip >= 2 and config.ensemble_shots and config.ensemble_splits > 0:
        return len(config.ensemble_shots) * config.ensemble_splits
    return 0


class _StageSteps:
    """Progress of the ensemble stage: one step per level's fixed statistics and one per k-shot split,
    with a rate, so the run panel and the CLI can show an ETA."""

    def __init__(self, ctx: "SweepContext", total: int) -> None:
        import time

        self._clock = time.perf_counter
        self.ctx, self.total, self.done, self.message = ctx, max(total, 1), 0, ""
        self.t0 = self._clock()

    def report(self) -> None:
        secs = self._clock() - self.t0
        rate = self.done / secs if self.done and secs > 0 else None
        self.ctx.emit(Progress(Stage.ENSEMBLES, min(self.done, self.total), self.total, rate, "ensemble", self.message))

    def advance(self, message: str = "") -> None:
        self.ctx.cancel.raise_if_cancelled()
        self.done += 1
        if message:
            self.message = message
        self.report()


ANALYSIS_ROWS = 2048  # images per step of the per-image statistics (bounds the [B, n, C] temporaries)


def _fixed_stats(scores: list[np.ndarray], scales: list[float], y: np.ndarray, ext_choices: Optional[np.ndarray],
                 names: list[str], n_clip: int,
                 kind_labels: Optional[list[str]] = None) -> tuple[list[dict], list[dict], dict]:
    """(backbones rows, pairs rows, fixed ensembles) of one level, streamed over images.

    Every number is a mean over images of a per-image value, so the images are taken
    ANALYSIS_ROWS at a time (with the very functions of :mod:`core.stats.ensemble`) and the
    means recombined: no [systems, N, C] array of the whole level is ever built.
    """
    n = len(y)
    n_sys = len(names)
    credit = np.zeros(n_sys)
    agree = np.zeros((n_sys, n_sys))  # sum over images of the chance two systems choose alike
    pair_keys = ("disagreement", "only_a_right", "only_b_right", "both_wrong")
    pairs: dict[tuple[str, str], dict[str, float]] = {}
    fixed_sum: dict[str, float] = {}
    for a in range(0, n, ANALYSIS_ROWS):
        sl = slice(a, min(a + ANALYSIS_ROWS, n))
        m = sl.stop - sl.start
        part = [s[sl] for s in scores]
        yc = y[sl]
        choice = ens.choices(part) if part else None
        ext = ext_choices[:, sl] if ext_choices is not None else None
        if ext is not None:
            choice = np.concatenate([choice, ext]) if choice is not None else ext
        for j in range(n_sys):
            credit[j] += ens.credit(choice[j], yc).sum()
        if ext is not None and n_clip:
            for j in range(n_clip):
                for e in range(n_clip, n_sys):
                    agree[e, j] += float((choice[e] * choice[j]).sum(axis=1).sum())
        for r in ens.pairwise_disagreement(choice, yc, names):
            acc = pairs.setdefault((r["a"], r["b"]), dict.fromkeys(pair_keys, 0.0))
            for key in pair_keys:
                acc[key] += r[key] * m
        del choice
        for key, v in ens.fixed_ensembles(part, scales, yc, ext).items():
            fixed_sum[key] = fixed_sum.get(key, 0.0) + v * m
    top1 = credit / n
    kind_labels = kind_labels or ["clip" if j < n_clip else "external" for j in range(n_sys)]
    bb_rows = [{"backbone": nm, "kind": kind_labels[j], "top1": float(top1[j]), "n_images": n}
               for j, nm in enumerate(names)]
    if ext_choices is not None and n_clip:
        best_clip = int(np.argmax(top1[:n_clip]))
        for e in range(n_clip, n_sys):
            bb_rows[e]["agreement_with_best_clip"] = float(agree[e, best_clip] / n)
    pair_rows = [{"a": a, "b": b, **{key: float(v / n) for key, v in acc.items()}} for (a, b), acc in pairs.items()]
    fixed = {key: float(v / n) for key, v in fixed_sum.items()}
    fixed["best_single"] = float(top1.max())  # the best system over all images, not per step
    fixed["oracle_gain"] = fixed["oracle"] - fixed["best_single"]
    return bb_rows, pair_rows, fixed


def _level(ctx: "SweepContext", k: int, scores: list[np.ndarray], scales: list[float], y: np.ndarray,
           feats: Optional[np.ndarray], ext_choices: Optional[np.ndarray], names: list[str], n_clip: int,
           kind_labels: Optional[list[str]] = None, step: Optional[_StageSteps] = None) -> dict:
    """One level's backbones/pairs/ensembles rows; returns its summary entry."""
    config, writer, emit = ctx.config, ctx.writer, ctx.emit
    bb_rows, pair_rows, fixed = _fixed_stats(scores, scales, y, ext_choices, names, n_clip, kind_labels)
    release_free_memory()  # its per-step temporaries, before the ensembles are fitted
    write_table(writer, emit, "backbones", [{"level": k, **r} for r in bb_rows])
    write_table(writer, emit, "pairs", [{"level": k, **r} for r in pair_rows])
    write_table(writer, emit, "ensembles", [{"level": k, "method": m, "k": 0, "split": 0, "n_fit": 0,
                                             "n_eval": len(y), "top1": v} for m, v in fixed.items() if m != "oracle_gain"])
    lvl_sum = {"oracle_gain": fixed["oracle_gain"], "oracle": fixed["oracle"], "best_single": fixed["best_single"]}
    if step is not None:
        step.advance()
    if n_clip >= 2 and config.ensemble_shots and config.ensemble_splits > 0:
        n_splits = config.ensemble_splits

        def on_split(shots: int, split: int) -> None:
            if step is not None:
                step.advance(f"level {k}, {shots}-shot split {split + 1} of {n_splits}")

        rows = ens.adaptive_rows(scores, scales, y, feats, config.ensemble_shots, config.ensemble_splits,
                                 seed=config.seed, methods=config.ensemble_methods, on_split=on_split)
        write_table(writer, emit, "ensembles", [{"level": k, **r} for r in rows])
        df = pd.DataFrame(rows)
        if not df.empty:
            m = df.groupby(["k", "method"])["top1"].mean().unstack()
            lvl_sum["adaptive"] = {int(kk): {c: float(m.loc[kk, c]) for c in m.columns} for kk in m.index}
    return lvl_sum
