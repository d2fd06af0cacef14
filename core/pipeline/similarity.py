"""similarity.csv: how alike two embedding backbones see the same images (core.stats.similarity).

Runs once per sweep, from the image embeddings the analysis already holds (no re-encoding):
it needs two or more backbones with image embeddings, and uses the images every system
could score, in the same order for every backbone.
"""

from __future__ import annotations

import numpy as np

from core.stats.similarity import KNN_K, SIMILARITY_COLUMNS, similarity_rows
from core.util.events import Log, TableRows


def write_similarity(ctx, with_features: list, y: np.ndarray) -> None:
    """Write similarity.csv for every pair of backbones in ``with_features``: (outcome, rows) pairs of
    :class:`core.pipeline.analysis.BackboneOutcome` and the rows of the shared images; ``ctx`` is the sweep's
    :class:`core.pipeline.context.SweepContext` (not imported here: the analysis imports this module)."""
    if len(with_features) < 2:
        return
    k = int(ctx.config.similarity_k if ctx.config.similarity_k is not None else KNN_K)
    feats = {o.name: o.X[s] for o, s in with_features}
    rows = similarity_rows(feats, y, list(ctx.classes), k=k, cancel=ctx.cancel)
    ctx.writer.rewrite("similarity.csv", rows, SIMILARITY_COLUMNS)
    ctx.writer.commit()
    ctx.emit(TableRows("similarity", rows))
    overall = [r for r in rows if r["scope"] == "overall"]
    ctx.summary["similarity"] = [{key: r[key] for key in ("backbone_a", "backbone_b", "cka", "knn_agreement")}
                                 for r in overall]
    for r in overall:
        knn = f", {r['knn_k']}-NN agreement {r['knn_agreement']:.3f}" if r["knn_k"] else ""
        ctx.emit(Log(f"{r['backbone_a']} vs {r['backbone_b']}: linear CKA {r['cka']:.3f}{knn}"))
