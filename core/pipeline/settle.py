"""``--levels until-settled``: add names per class until the scaling curve settles.

The candidate levels are 1, 2, 4, … up to the longest name list (the longest list itself
last). Before the sweep proper, each backbone's synonym curve (ordering 0) is scored level
by level from the embeddings it already has, and after each level the curve so far gets
its threshold verdict (:func:`core.stats.significance.threshold_verdict`). A curve has
**settled** at the first level j where

* its peak (the first level of highest top-1 among those scored) lies at least two
  levels before j, and
* the verdict of the curve up to j is ``plateau``, ``declining`` or ``fluctuating``.

The sweep keeps the levels up to the last level at which any backbone settled (all of
them, when one never settles); every backbone and curve is then scored on those levels,
so the run files look like those of an ordinary sweep with ``--levels 1,2,4,…``.

``--extend-names wordnet|neighbours[:MODEL]`` first fills every class's list up to a power
of two (``--extend-to``, else the smallest one at or above the longest list) with the
suggestion engine (:func:`core.synonyms.suggest_for_labels`); each added name keeps its
source (``wordnet``, ``neighbours:0.83``…) in ``labels_used.csv`` and ``run.json``'s
``labels_sources``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np

from core.labels.base import LabelSet
from core.labels.labelset import UNTIL_SETTLED
from core.pipeline.scoring import LevelPlan, score_level
from core.stats.significance import SETTLED, threshold_verdict
from core.util.errors import InputError
from core.util.events import CancelToken, EventCallback, Log, ignore_events

if TYPE_CHECKING:
    from core.util.config import SweepConfig

LABELS_USED = "labels_used.csv"
LABELS_USED_COLUMNS = ["class", "synonym", "source"]
FILE_SOURCE = "labels"  # the source of a name that the labels file (or the class folders) gave


def wants_settling(levels) -> bool:
    return isinstance(levels, str) and levels.strip().lower() == UNTIL_SETTLED


def settled_index(levels: Sequence[int], credit: np.ndarray, alpha: float) -> Optional[int]:
    """The first index j at which the curve ``credit`` [levels, images] has settled (module doc), or None."""
    credit = np.atleast_2d(np.asarray(credit, dtype=float))
    for j in range(2, len(credit)):
        acc = credit[: j + 1].mean(axis=1)
        peak = int(np.argmax(acc))
        if j - peak < 2:
            continue
        if threshold_verdict(list(levels[: j + 1]), credit[: j + 1], alpha, n_boot=0).trend in SETTLED:
            return j
    return None


def curve_credit(scores, y: np.ndarray, ids: list[str], names: dict, classes: list[str], k: int, mode: str,
                 top_k: int) -> np.ndarray:
    """Per-image credit of one level of a backbone's synonym curve (any model kind)."""
    plan = LevelPlan.build(names, classes, k, mode)
    if hasattr(scores, "choices"):  # an answering kind: answers matched to this level's names
        return np.asarray(scores.level(plan, y, ids)[0].credit, dtype=float)
    return np.asarray(score_level(scores, y, plan, top_k).credit, dtype=float)


def settle_levels(ctx, scored: Callable[[int, object], object]) -> list[int]:
    """The levels of an until-settled sweep (``ctx``: the :class:`core.pipeline.context.SweepContext`, which
    imports this module); ``scored(position, backbone)`` gives a backbone's scores (the runner keeps them
    for its own pass, so nothing is encoded twice)."""
    config, emit = ctx.config, ctx.emit
    candidates = list(ctx.levels)
    names = ctx.labels.ordered(0, config.seed)
    classes = ctx.labels.classes
    stop = 0
    decided = {}
    for position, backbone in enumerate(ctx.backbones):
        got = scored(position, backbone)
        curve = []
        at = None
        for j, k in enumerate(candidates):
            ctx.cancel.raise_if_cancelled()
            curve.append(curve_credit(got.scores, got.y, got.ids, names, classes, k, config.mode, config.top_k))
            at = settled_index(candidates[: j + 1], np.stack(curve), config.alpha)
            if at is not None:
                break
        decided[backbone.name] = None if at is None else int(candidates[at])
        stop = max(stop, len(candidates) - 1 if at is None else at)
        emit(Log(f"{backbone.name}: " + (f"the curve settled at {candidates[at]} names per class" if at is not None
                                         else f"the curve had not settled by {candidates[-1]} names per class "
                                              "(no names left)")))
    levels = candidates[: stop + 1]
    ctx.summary["until_settled"] = {"candidates": candidates, "levels": levels, "settled_at": decided}
    return levels


# ---------------------------------------------------------------- filling the name lists


def next_power_of_two(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


def parse_extend(spec: str) -> tuple[str, Optional[str]]:
    """``wordnet`` / ``neighbours`` / ``neighbours:MODEL`` as (source, model or None)."""
    source, _, model = (spec or "").strip().partition(":")
    source = source.strip().lower()
    if source not in ("wordnet", "neighbours"):
        raise InputError(f"unknown name source '{spec}' (choose wordnet, neighbours or neighbours:MODEL)",
                         field="extend-names")
    if source == "wordnet" and model:
        raise InputError(f"'{spec}': the wordnet source takes no model", field="extend-names")
    return source, (model.strip() or None)


def with_sources(labels: LabelSet) -> dict[str, list[str]]:
    """Each class's names' sources, the labels file's own names as ``labels`` (unless it gave one)."""
    out = {}
    for c, ns in labels.names.items():
        src = list(labels.sources.get(c, []))
        out[c] = [(src[i] if i < len(src) and src[i] else FILE_SOURCE) for i in range(len(ns))]
    return out


def extend_labels(config: "SweepConfig", labels: LabelSet, first_spec=None, templates: Optional[list[str]] = None,
                  emit: EventCallback = ignore_events, cancel: Optional[CancelToken] = None) -> LabelSet:
    """``labels`` with every class filled up to the target power of two from the configured source."""
    from core import synonyms as syn

    source, model = parse_extend(config.extend_names)
    target = int(config.extend_to) if config.extend_to else next_power_of_two(max(1, labels.max_names))
    if target & (target - 1):
        raise InputError(f"must be a power of two, got {target}", field="extend-to")
    if all(len(ns) >= target for ns in labels.names.values()):
        return labels
    reader = backbone = cache = None
    try:
        reader = syn.open_wordnet(None)
    except InputError:
        if source == "wordnet" or not config.vocabulary:
            raise
    if source == "neighbours":
        from core.embedding.cache import EmbeddingCache
        from core.models.registry import load_model
        from core.util.config import BackboneSpec

        spec = BackboneSpec(model=model, device=getattr(first_spec, "device", "auto")) if model else first_spec
        if spec is None:
            raise InputError("--extend-names neighbours needs a backbone (--model, or neighbours:MODEL)",
                             field="extend-names")
        backbone = load_model(spec)
        cache = EmbeddingCache(config.cache_dir) if config.use_cache else None
    vocabulary = None
    if source == "neighbours" and config.vocabulary:
        vocabulary = syn.load_vocabulary(config.vocabulary)
    try:
        report = syn.suggest_for_labels(labels, target, sources=(source,), wordnet_reader=reader, backbone=backbone,
                                        templates=templates, vocabulary=vocabulary, cache=cache, emit=emit,
                                        cancel=cancel)
    finally:
        if cache is not None:
            cache.close()
    out = report.labels
    own = with_sources(labels)  # the file's names keep their sources; the added ones bring theirs
    out.sources = {c: own[c] + list(out.sources.get(c, []))[len(labels.names[c]):] for c in out.names}
    added = sum(report.added.values())
    short = sum(len(ns) < target for ns in out.names.values())
    emit(Log(f"{source}: added {added} names to reach {target} per class"
             + (f"; {short} classes have fewer (no more suggestions)" if short else "")))
    out.warnings = list(labels.warnings) + list(out.warnings or [])
    out.path = labels.path
    return out


def labels_used_rows(labels: LabelSet) -> list[dict]:
    """labels_used.csv: the names the run used, in rank order, with where each came from."""
    sources = with_sources(labels)
    return [{"class": c, "synonym": n, "source": sources[c][i]} for c, ns in labels.names.items()
            for i, n in enumerate(ns)]
