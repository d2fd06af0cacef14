"""names.csv for a run made before it existed: its levels scored again from the embedding cache.

The names, templates and levels are those run.json resolved (edits to the labels file since
do not leak in); nothing is encoded again: a backbone whose image or name embeddings the
cache lacks raises :class:`~core.util.errors.InputError` saying so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.labels.base import LabelSet
from core.labels.controls import SYNONYMS
from core.models.base import ANSWERS
from core.pipeline.names import level_names
from core.pipeline.runner import _backbone_scores
from core.pipeline.scoring import LevelPlan, score_level
from core.stats.names import NAME_COLUMNS
from core.util.errors import InputError


class _NoWriter:
    """Stands in for the run writer while an old run is scored again (nothing is written)."""

    def add_skipped(self, items) -> None:
        pass


def _no_encoding(name: str):
    def refuse(*_a, **_k):
        raise InputError(f"names.csv is missing and cannot be recomputed: the embedding cache does not hold every "
                         f"image and name embedding of backbone '{name}' (nothing is encoded again); re-run the sweep "
                         "to write names.csv")
    return refuse


def recompute_names(run) -> pd.DataFrame:
    """names.csv of ``run`` (a :class:`core.results.runs.Run`) scored again from the embedding cache.

    The names, templates and levels are those run.json resolved, so edits to the labels file
    since do not leak in; a backbone whose embeddings the cache lacks raises :class:`InputError`.
    """
    from core.embedding.cache import EmbeddingCache
    from core.embedding.image_source import image_source
    from core.models.registry import load_model
    from core.pipeline.context import SweepContext
    from core.util.config import BackboneSpec, SweepConfig

    meta_config = dict(run.config or {})
    labels = meta_config.get("labels_resolved")
    levels = meta_config.get("levels_resolved")
    templates = meta_config.get("templates_resolved")
    if not isinstance(labels, dict) or not levels or not templates:
        raise InputError("names.csv is missing and cannot be recomputed: run.json lacks the resolved names, "
                         "levels or templates", file=run.dir)
    config = SweepConfig.from_dict(meta_config)
    if not config.use_cache:
        raise InputError("names.csv is missing and cannot be recomputed: the run did not use the embedding cache "
                         "(--no-cache), so no embeddings were kept; re-run the sweep to write names.csv", file=run.dir)
    specs = [BackboneSpec.from_dict(b) for b in meta_config.get("backbones_resolved") or []] or list(config.backbones)
    kinds = {SYNONYMS: LabelSet({c: list(v) for c, v in labels.items()})}
    for kind, names in (meta_config.get("controls_resolved") or {}).items():
        kinds[kind] = LabelSet({c: list(v) for c, v in names.items()})
    try:
        images = image_source(config)
        backbones = [load_model(spec, lazy=True) for spec in specs]
    except (InputError, OSError) as e:
        raise InputError(f"names.csv is missing and cannot be recomputed: {e}", file=run.dir) from None
    ctx = SweepContext(config, images, kinds[SYNONYMS], kinds, list(templates), [int(k) for k in levels], None, [],
                       backbones)
    ctx.writer = _NoWriter()
    ctx.cache = EmbeddingCache(config.cache_dir)
    rows: list[pd.DataFrame] = []
    try:
        for position, backbone in enumerate(backbones):
            if backbone.output == ANSWERS:
                continue  # names.csv covers embedding and scoring kinds
            if not backbone.loaded:
                backbone.load = _no_encoding(backbone.name)
            got = _backbone_scores(ctx, position, backbone)
            rows.extend(curve_rows(got.scores, got.y, kinds, ctx.levels, config, backbone.name))
    finally:
        ctx.cache.close()
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=NAME_COLUMNS)


def curve_rows(scores, y: np.ndarray, kinds: dict[str, LabelSet], levels: list[int], config,
               backbone: str) -> list[pd.DataFrame]:
    """names.csv rows of every curve (names kind x ordering) of one backbone, in the sweep's order."""
    rows = []
    classes = kinds[SYNONYMS].classes
    for kind in kinds:
        for o in range(config.orderings):
            names = kinds[kind].ordered(o, config.seed)
            for li, k in enumerate(levels):
                plan = LevelPlan.build(names, classes, k, config.mode)
                tally = level_names(scores, y, plan, levels[li - 1] if li else 0)
                score_level(scores, y, plan, config.top_k, attribution=tally)
                rows.append(tally.rows(backbone=backbone, ordering=o, names=kind))
    return rows

