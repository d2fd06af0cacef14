"""names.csv: per-name attribution scored with the sweep's own chunks.

:func:`level_names` builds a level's :class:`core.stats.names.LevelNames` for
:func:`core.pipeline.scoring.score_level` to feed (pooled mode also gets the class scores
without each entering name, from the embeddings or score matrix already in memory: nothing
is encoded again). Runs made before names.csv existed: :mod:`core.pipeline.names_recompute`.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from core.pipeline.scoring import LevelPlan
from core.stats.names import LevelNames


def level_names(scores, y: np.ndarray, plan: LevelPlan, previous_level: int) -> LevelNames:
    """The attribution of one level, to pass to ``score_level(..., attribution=...)``."""
    tally = LevelNames(y, plan.classes, plan.names, plan.level, previous_level, plan.mode, plan.cols, plan.starts)
    if plan.mode == "pooled":
        sets = [tuple(sorted(set(rest))) for _, rest in tally.loo_sets()]
        filled = [j for j, key in enumerate(sets) if key]
        cats = scores.categories(SimpleNamespace(mode="pooled", keys=[sets[j] for j in filled])) if filled else None

        def loo_scores(start: int, stop: int) -> np.ndarray:
            if len(filled) == len(sets):
                return scores.block(cats, start, stop)
            n = min(stop, scores.n_images) - start
            out = np.full((n, len(sets)), -np.inf, dtype=np.float32)  # a class left without names never wins
            if filled:
                out[:, filled] = scores.block(cats, start, stop)
            return out

        tally.loo_scores = loo_scores
    return tally
