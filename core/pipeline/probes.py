"""The linear-probe stage of a sweep (``--probe-shots``): ``probes.csv``.

For each backbone with image embeddings, a logistic-regression probe (:mod:`core.stats.probe`)
is fitted on k images per class and scored on the held-out images, next to the backbone's
zero-shot top-1 on the very same images. The images and their class numbers are the ensemble
stage's (:func:`core.pipeline.analysis.run_analysis`): the images every system could use, in the
first backbone's order, classes numbered in name order, so a probe's split ``s`` at k shots
holds out exactly the images the adaptive ensembles' split ``s`` at k shots holds out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.pipeline.shared_images import common_rows
from core.stats.metrics import topk_correct
from core.util.events import Log, Progress, Stage, TableRows

if TYPE_CHECKING:
    from core.pipeline.context import SweepContext


def probe_inputs(outcomes: list, classes: list[str]) -> tuple[list[str], list[np.ndarray], np.ndarray, np.ndarray]:
    """(ids, rows of each outcome, y in name order, name order) exactly as the ensemble stage builds them."""
    ids, sel = common_rows(outcomes)
    by_name = np.argsort(np.asarray(classes, dtype=object), kind="stable")
    y = np.argsort(by_name)[outcomes[0].y[sel[0]]]
    return ids, sel, y, by_name


def run_probes(ctx: "SweepContext", outcomes: list) -> None:
    """Write probes.csv for every backbone with image embeddings (no-op without ``probe_shots``).

    ``outcomes`` are the sweep's :class:`core.pipeline.analysis.BackboneOutcome` (not imported here:
    the analysis imports this module)."""
    from core.stats.probe import PROBE_COLUMNS, parse_probe_shots, probe_rows

    config, writer, emit = ctx.config, ctx.writer, ctx.emit
    shots = parse_probe_shots(getattr(config, "probe_shots", None))
    if not shots or not outcomes:
        return
    probed = [(j, o) for j, o in enumerate(outcomes) if o.X is not None and not o.answers_only]
    if not probed:
        emit(Log("linear probes need image embeddings; no backbone of this run has them", "warning"))
        return
    ids, sel, y, by_name = probe_inputs(outcomes, ctx.classes)
    n_splits = max(int(config.ensemble_splits), 1)
    total = len(probed) * len(shots) * n_splits
    done = 0
    summary = {}
    for j, o in probed:
        rows_o = sel[j]
        credit = np.stack([topk_correct(o.class_scores(k, rows=rows_o, class_order=by_name), y, 1)
                           for k in ctx.levels])

        def on_split(k, split, name=o.name):
            nonlocal done
            ctx.cancel.raise_if_cancelled()
            done += 1
            emit(Progress(Stage.ENSEMBLES, done, total, None, name, f"linear probe, {k} shots, split {split + 1}"))

        rows = probe_rows(o.name, o.X[rows_o], y, len(ctx.classes), ctx.levels, credit, shots, n_splits,
                          seed=config.seed, n_boot=config.bootstrap, on_split=on_split,
                          solver=getattr(config, "probe_solver", "optimum"))
        if rows:
            writer.append("probes.csv", rows, PROBE_COLUMNS)
            writer.commit()
            emit(TableRows("probes", rows))
        summary[o.name] = {str(r["shots"]): {"top1": r["top1"], "zeroshot_top1": r["zeroshot_top1"]}
                           for r in rows if r["split"] == "mean"}
    ctx.summary["probes"] = summary
