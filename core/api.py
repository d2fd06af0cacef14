"""The Python API: sweeps from a notebook or script, with results as pandas DataFrames.

These functions are thin: they build the same :class:`~core.util.config.SweepConfig` the
command line builds, run the same engine and read the same run directory back, so a
result from ``core.sweep(...)`` is the run the CLI would have written. With ``out=None``
the run goes to a temporary folder that is removed before returning; the tables stay in
memory and nothing is written into the working folder.
"""

from __future__ import annotations

import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from core.util import config as defaults
from core.models.registry import as_backbone
from core.util.config import BackboneSpec, Levels, SweepConfig, Templates
from core.util.errors import InputError
from core.util.events import CancelToken, EventCallback, ignore_events
from core.results.runs import Run, load_run as _read_run

RunResult = Run
"""What :func:`sweep`, :func:`score_embeddings` and :func:`load_run` return (a :class:`core.results.runs.Run`)."""

Backbones = Sequence[Union[str, BackboneSpec]]

# SweepConfig fields that the named parameters of sweep() set (the rest are **options)
_NAMED = {"dataset", "out", "backbones", "labels", "templates", "levels", "mode"}


def _config(dataset: str, labels: Optional[Union[str, Path]], backbones: Backbones, levels: Levels,
            templates: Templates, mode: str, out: Path, device: str, precision: str,
            options: dict[str, Any]) -> SweepConfig:
    known = {f.name for f in fields(SweepConfig)} - _NAMED
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})",
                         field=unknown[0])
    if isinstance(backbones, (str, BackboneSpec)):
        backbones = [backbones]
    specs = [as_backbone(b, device=device, precision=precision) for b in backbones]
    if isinstance(templates, tuple):
        templates = list(templates)
    if isinstance(levels, tuple):
        levels = list(levels)
    return SweepConfig(dataset=str(dataset), out=str(out), backbones=specs,
                       labels=str(labels) if labels is not None else None, templates=templates, levels=levels,
                       mode=mode, **options)


def _run(config: SweepConfig, keep_dir: bool, emit: EventCallback, cancel: Optional[CancelToken]) -> RunResult:
    from core.pipeline.runner import run_sweep

    result = run_sweep(config, emit=emit, cancel=cancel)
    run = load_run(result.run_dir)
    if not keep_dir:
        run.dir = None
    return run


def sweep(
    dataset: Union[str, Path, None] = None,
    labels: Union[str, Path, None] = None,
    backbones: Backbones = ("demo-resnet",),
    levels: Levels = defaults.DEFAULT_LEVELS,
    templates: Templates = defaults.DEFAULT_TEMPLATES,
    mode: str = defaults.DEFAULT_MODE,
    out: Union[str, Path, None] = None,
    *,
    device: str = defaults.DEFAULT_DEVICE,
    precision: str = defaults.DEFAULT_PRECISION,
    emit: EventCallback = ignore_events,
    cancel: Optional[CancelToken] = None,
    **options: Any,
) -> RunResult:
    """Run a semantic-scaling sweep and return its tables.

    ``backbones`` are names as on the command line (``"demo-resnet"``,
    ``"ViT-B-32@laion2b_s34b_b79k"``, ``"NAME=CHECKPOINT"``) or :class:`BackboneSpec`
    objects; ``options`` are any other :class:`SweepConfig` field (``orderings``, ``seed``,
    ``bootstrap``, ``class_frequency``, ``external_predictions``, ``ensemble_shots``, ``probe_shots``,
    ``embeddings``, ``cache_dir``, ``use_cache`` ...). ``out=None`` writes nothing that
    outlives the call; otherwise ``out`` is the run directory and ``result.run_dir`` points
    at it. Bad input raises :class:`~core.util.errors.InputError` before anything is written.
    """
    if dataset is None and not options.get("embeddings"):
        raise InputError("give dataset= (images) or embeddings= (stores written by 'semscale embed')",
                         field="dataset")
    if dataset is None:
        dataset = options["embeddings"][0]
    if out is not None:
        config = _config(str(dataset), labels, backbones, levels, templates, mode, Path(out), device, precision,
                         options)
        return _run(config, True, emit, cancel)
    with tempfile.TemporaryDirectory(prefix="semscale-run-") as tmp:
        config = _config(str(dataset), labels, backbones, levels, templates, mode, Path(tmp) / "run", device,
                         precision, options)
        return _run(config, False, emit, cancel)


def score_embeddings(
    image_embeddings: np.ndarray,
    true_classes: Sequence[str],
    labels: Union[str, Path, None],
    text_backbone: Union[str, BackboneSpec],
    levels: Levels = defaults.DEFAULT_LEVELS,
    templates: Templates = defaults.DEFAULT_TEMPLATES,
    mode: str = defaults.DEFAULT_MODE,
    out: Union[str, Path, None] = None,
    *,
    image_ids: Optional[Sequence[str]] = None,
    logit_scale: Optional[float] = None,
    device: str = defaults.DEFAULT_DEVICE,
    precision: str = defaults.DEFAULT_PRECISION,
    emit: EventCallback = ignore_events,
    cancel: Optional[CancelToken] = None,
    **options: Any,
) -> RunResult:
    """Score image embeddings already in memory (an [N, D] array from ``text_backbone``'s
    image tower) against a labels file, level by level, without a dataset on disk.

    ``true_classes[i]`` is image i's class (a key of the labels file); ``image_ids`` name
    the rows in predictions.csv (default ``image-00000`` …). The rows are L2-normalised
    here. The arrays are written into a temporary embedding store that the ordinary sweep
    reads (so the run is exactly what ``semscale sweep --embeddings`` would write) and that
    is removed afterwards; ``out`` works as in :func:`sweep`.
    """
    from core.models.openclip import load_backbone
    from core.data import Dataset, ImageRecord
    from core.embedding.store import StoreWriter, dataset_info

    X = np.asarray(image_embeddings, dtype=np.float32)
    if X.ndim != 2 or len(X) == 0:
        raise InputError(f"image_embeddings must be a non-empty [N, D] array, got shape {X.shape}",
                         field="image_embeddings")
    classes = [str(c) for c in true_classes]
    if len(classes) != len(X):
        raise InputError(f"{len(X)} embeddings but {len(classes)} true classes", field="true_classes")
    ids = [str(i) for i in image_ids] if image_ids is not None else [f"image-{i:05d}" for i in range(len(X))]
    if len(ids) != len(X) or len(set(ids)) != len(ids):
        raise InputError("image_ids must be unique, one per embedding", field="image_ids")
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    spec = as_backbone(text_backbone, device=device, precision=precision)
    backbone = load_backbone(spec, lazy=True)
    if backbone.config and "embed_dim" in backbone.config and int(backbone.config["embed_dim"]) != X.shape[1]:
        raise InputError(f"the embeddings are {X.shape[1]}-d but '{backbone.name}' is "
                         f"{backbone.config['embed_dim']}-d", field="image_embeddings")
    with tempfile.TemporaryDirectory(prefix="semscale-embeddings-") as tmp:
        root = Path(tmp) / "store"
        listing = Dataset(root=root, kind="memory", records=[ImageRecord(i, c) for i, c in zip(ids, classes)],
                          classes=list(dict.fromkeys(classes)))
        info = {"name": backbone.name, "spec": spec.to_dict(), "identity": backbone.identity,
                "identity_info": backbone.identity_info, "embed_dim": int(X.shape[1]), "logit_scale": logit_scale}
        writer = StoreWriter.open(root, backbone=info, dataset=dataset_info(listing, "memory"), shard_size=len(X))
        try:
            writer.commit(0, ids, classes, X, [], record_ids=ids, engine="memory")
        finally:
            writer.close()
        options = {**options, "embeddings": [str(root)]}
        return sweep(str(root), labels, [spec], levels, templates, mode, out, device=device, precision=precision,
                     emit=emit, cancel=cancel, **options)


def load_run(path: Union[str, Path]) -> RunResult:
    """A run directory read back as DataFrames; ``run.names`` is names.csv, or for a run made
    before it existed is scored again from the embedding cache (:func:`core.pipeline.names_recompute.recompute_names`)."""
    from core.pipeline.names_recompute import recompute_names

    run = _read_run(path)
    run.names_source = recompute_names
    return run


def report(run: Union[str, Path, RunResult], out: Union[str, Path, None] = None) -> Path:
    """Write one self-contained HTML report of a run (a folder or a :class:`RunResult`) or of a
    study folder (every dataset and the cross-dataset summary); ``out`` defaults to
    ``report.html`` inside the folder. Returns the file's path."""
    from core.reporting.report import write_report

    return write_report(run, out)


__all__ = ["RunResult", "load_run", "report", "score_embeddings", "sweep"]
