"""Everything one sweep works with, resolved once before the run directory exists.

:func:`prepare` checks the config and builds a :class:`SweepContext`: the image source,
labels and control name sets, templates, levels, class frequencies, external
predictions and backbones. :func:`core.pipeline.runner.run_sweep` then adds the run's writer, cache
and progress callbacks and hands the context to each stage (per-backbone scoring, the
multi-backbone analysis), which append their rows to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

from core.embedding.cache import EmbeddingCache, cache_has
from core.models.base import ModelKind
from core.results.runs import RunWriter
from core.stats.significance import CurveBook
from core.util.config import MODES, SweepConfig, check_numbers
from core.labels.controls import names_kinds
from core.util.errors import InputError
from core.util.events import CancelToken, EventCallback, ignore_events
from core.stats.external import ExternalPredictions, load_external_predictions
from core.stats.frequency import class_frequency
from core.embedding.image_source import ImageSource, Listing, image_source
from core.labels.labelset import LabelSet, labels_from_classes, load_labels, load_templates, parse_levels


@dataclass
class SweepContext:
    """One sweep's inputs (fixed after :func:`prepare`) and what its stages accumulate."""

    config: SweepConfig
    images: ImageSource
    labels: LabelSet
    kinds: dict[str, LabelSet]  # "synonyms" (the labels file) and any control name sets
    templates: list[str]
    levels: list[int]
    freq: Optional[dict]
    externals: list[ExternalPredictions]
    backbones: list[ModelKind]  # resolved lazily: networks are built, servers asked, on first use
    emit: EventCallback = ignore_events
    cancel: CancelToken = field(default_factory=CancelToken)
    writer: Optional[RunWriter] = None  # once the run directory exists
    cache: Optional[EmbeddingCache] = None  # None with --no-cache
    book: Optional[CurveBook] = None  # paired tests along every curve
    save_logits: bool = False  # decided once per run (core.pipeline.runner.logits_plan)
    summary: dict[str, Any] = field(default_factory=lambda: {"backbones": {}})
    all_levels: list[dict] = field(default_factory=list)  # every levels.csv row so far
    all_per_class: list[dict] = field(default_factory=list)  # per_class.csv rows of ordering 0, synonyms
    prescored: dict[int, Any] = field(default_factory=dict)  # until-settled: scores computed before the sweep

    @property
    def dataset(self) -> Listing:
        return self.images.listing

    @property
    def classes(self) -> list[str]:
        return self.labels.classes

    @property
    def n_systems(self) -> int:
        """Backbones plus external systems: with two or more the run compares and ensembles them."""
        return len(self.backbones) + len(self.externals)


def prepare(config: SweepConfig, emit: EventCallback = ignore_events,
            cancel: Optional[CancelToken] = None) -> SweepContext:
    """Check ``config`` and resolve every input; raises :class:`InputError` before anything is written."""
    from core.models.registry import load_model
    from core.pipeline.answers import check_closed_prompts
    from core.stats.answers import MATCH_RULES

    check_numbers(config.to_dict())
    if config.mode not in MODES:
        raise InputError(f"unknown mode '{config.mode}' (choose flat or pooled)", field="mode")
    specs = list(config.backbones)
    images = image_source(config) if config.embeddings else None  # stores are checked first
    if config.embeddings:
        if not specs:  # the config keeps what was asked for; run.json records these as backbones_resolved
            specs = [replace(s.spec, device="auto") for s in images.listing.stores]  # the stores opened above
        elif len(specs) != len(config.embeddings):
            raise InputError(f"{len(config.embeddings)} embedding stores but {len(specs)} backbones; give "
                             "one backbone per store, in the same order (or none)", field="embeddings")
    if not specs:
        raise InputError("no backbone given (use --model)", field="model")
    if config.orderings < 1:
        raise InputError("orderings must be at least 1", field="orderings")
    if any(int(k) < 1 for k in config.ensemble_shots):
        raise InputError("ensemble shots must be positive integers", field="ensemble-shots")
    if config.probe_shots:  # "1,2,all" -> [1, 2, "all"]; run.json keeps the checked list
        from core.stats.probe import parse_probe_shots

        config.probe_shots = parse_probe_shots(config.probe_shots)
    if getattr(config, "probe_solver", "optimum") not in ("optimum", "clip_benchmark"):
        raise InputError(f"unknown probe solver '{config.probe_solver}' (choose optimum or clip_benchmark)",
                         field="probe-solver")
    names = [b.display for b in specs]
    if len(set(names)) != len(names):
        raise InputError("two backbones have the same name; give them labels", field="model")
    images = images or image_source(config)
    dataset = images.listing
    labels = (load_labels(config.labels, dataset.classes, config.data_root) if config.labels
              else labels_from_classes(dataset.classes))
    templates = load_templates(config.templates)
    if config.extend_names:  # fill the lists up to a power of two (core.pipeline.settle)
        from core.pipeline.settle import extend_labels

        labels = extend_labels(config, labels, specs[0] if specs else None, templates, emit, cancel)
    levels = parse_levels(config.levels, labels.max_names)
    kinds = names_kinds(labels, config.controls, config.seed, config.vocabulary)
    freq = class_frequency(config.class_frequency, labels.names) if config.class_frequency else None
    externals = [load_external_predictions(s, labels) for s in config.external_predictions]
    # resolve every backbone now (names, checkpoint hashes, weights present) so a bad one
    # fails before the run directory exists; the networks themselves are built on first use
    backbones = [load_model(spec, lazy=True) for spec in specs]
    if config.vlm_match not in MATCH_RULES:
        raise InputError(f"unknown answer matching '{config.vlm_match}' (choose from {', '.join(MATCH_RULES)})",
                         field="vlm-match")
    for b in backbones:
        # a backbone whose results the cache already holds was loaded by an earlier run (its identity
        # hashes its weights): a cached re-run never imports its library just to test-load them again
        b.cache_seen = bool(config.use_cache and cache_has(config.cache_dir, b.identity))
        b.check()
        check_closed_prompts(b, labels, levels)  # a closed-world prompt longer than the context: refused now
    return SweepContext(config, images, labels, kinds, templates, levels, freq, externals, backbones,
                        emit=emit, cancel=cancel or CancelToken())
