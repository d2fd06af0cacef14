"""Encoding images and category names, each exactly once per backbone, through the cache.

Images: content hashes → cache lookup → a torch DataLoader decodes only the misses in
worker processes → the encoder runs in batches (halving the batch on out-of-memory) →
new embeddings are written to the cache batch by batch, so an interrupted run resumes.
Texts: one normalised embedding per (template, name), cached; a name's category
embedding is the normalised mean over templates (open_clip's zero-shot convention).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from core.data import Dataset
from core.embedding.cache import EmbeddingCache
from core.models.base import EmbeddingModel
from core.util.events import CancelToken, EventCallback, ImageSkipped, Log, Progress, Stage, ignore_events
from core.util.memory import release_free_memory

if TYPE_CHECKING:
    from core.models.local_images import BatchBackoff


@dataclass
class ImageEmbeddings:
    """Embeddings of the usable images; row j belongs to dataset record ``indices[j]``."""

    indices: np.ndarray
    matrix: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    n_encoded: int = 0
    n_cached: int = 0
    seconds: float = 0.0


def ensure_loaded(backbone: EmbeddingModel, emit: EventCallback) -> None:
    """Build the network now that something needs encoding (reported as its own stage)."""
    if not backbone.loaded:
        emit(Progress(Stage.LOAD_MODEL, 0, 1, None, backbone.name, f"loading {backbone.name}"))
        backbone.load()
        emit(Progress(Stage.LOAD_MODEL, 1, 1, None, backbone.name))


def logit_scale(backbone: EmbeddingModel, cache: Optional[EmbeddingCache]) -> float:
    """The model's logit scale, remembered in the cache so warm runs need not build the model."""
    if cache is not None and not backbone.loaded:
        v = cache.get_meta(backbone.identity, "logit_scale")
        if v is not None:
            return float(v)
    scale = backbone.logit_scale
    if cache is not None:
        cache.put_meta(backbone.identity, "logit_scale", repr(scale))
    return scale


def _content_keys(dataset: Dataset, cache: Optional[EmbeddingCache], emit, cancel, backbone_name: str):
    """Content hash per record (None where the file cannot be read)."""
    keys: list[Optional[str]] = [None] * len(dataset)
    reasons: dict[int, str] = {}
    fresh = []
    t0 = time.perf_counter()
    for i, r in enumerate(dataset.records):
        if i % 256 == 0:
            cancel.raise_if_cancelled()
            emit(Progress(Stage.HASH, i, len(dataset), None, backbone_name))
        h = cache.known_hash(r.path) if (cache is not None and r.path is not None) else None
        if h is None:
            try:
                h = dataset.content_hash(i)
            except PermissionError:
                reasons[i] = "permission denied"
                continue
            except OSError as e:
                reasons[i] = f"cannot read file ({e.strerror or e})"
                continue
            if r.path is not None:
                fresh.append((r.path, h))
        keys[i] = h
    if cache is not None and fresh:
        cache.remember_hashes(fresh)
    emit(Progress(Stage.HASH, len(dataset), len(dataset), len(dataset) / max(time.perf_counter() - t0, 1e-9), backbone_name))
    return keys, reasons


TRIM_EVERY = 16  # batches between returns of freed memory to the OS (core.util.memory)


def embed_images(
    backbone: EmbeddingModel,
    dataset: Dataset,
    *,
    cache: Optional[EmbeddingCache] = None,
    batch_size: int = 64,
    num_workers: Optional[int] = None,
    emit: EventCallback = ignore_events,
    cancel: Optional[CancelToken] = None,
    backoff: Optional["BatchBackoff"] = None,
    prefetch_factor: int = 4,
    perturbation=None,
) -> ImageEmbeddings:
    """Embed every usable image once; cached images are not decoded or encoded at all.

    ``prefetch_factor``: batches each decode worker keeps ready, so the encoder (a GPU above
    all) never waits for the next one. ``perturbation`` (:class:`core.data.perturb.Perturbation`):
    embed the perturbed images instead, seeded by each image's content key and cached under
    ``<content key>|<perturbation key>``.
    """
    cancel = cancel or CancelToken()
    t_start = time.perf_counter()
    name = backbone.name
    skipped: list[tuple[str, str]] = []
    vectors: dict[int, np.ndarray] = {}

    if perturbation is not None:
        from core.data.perturb import PerturbedDataset

        keys, unreadable = _content_keys(dataset, cache, emit, cancel, name)
        dataset = PerturbedDataset(dataset, perturbation, keys)
        keys = [None if k is None else f"{k}|{perturbation.key}" for k in keys]
        if cache is None:  # the keys only seeded the perturbation; every image is encoded
            for i, reason in unreadable.items():
                skipped.append((dataset.records[i].id, reason))
            keys = [None] * len(dataset)
    if cache is not None:
        if perturbation is None:
            keys, unreadable = _content_keys(dataset, cache, emit, cancel, name)
        for i, reason in unreadable.items():
            skipped.append((dataset.records[i].id, reason))
        hit = cache.get_images(backbone.identity, [k for k in keys if k is not None], dim=backbone.embed_dim)
        first_for_key: dict[str, int] = {}
        todo = []
        for i, k in enumerate(keys):
            if k is None:
                continue
            if k in hit:
                vectors[i] = hit[k]
            elif k not in first_for_key:
                first_for_key[k] = i
                todo.append(i)
        n_cached = len(vectors)
    else:
        todo = [i for i in range(len(dataset)) if perturbation is None or i not in unreadable]
        keys = [None] * len(dataset)
        n_cached = 0
    if cache is not None and n_cached:
        emit(Log(f"{name}: {n_cached} of {len(dataset)} images found in the cache"))

    done, encoded, t0 = 0, 0, time.perf_counter()
    emit(Progress(Stage.ENCODE_IMAGES, 0, len(todo), None, name))
    # nothing to encode: the model is never built
    if todo:
        ensure_loaded(backbone, emit)
    # kinds that decode in this process take the batch-size backoff and the prefetch depth
    local = {"backoff": backoff, "prefetch_factor": prefetch_factor} if getattr(backbone, "decodes_locally", False) else {}
    batches = 0
    bad_content: dict[str, tuple[str, str]] = {}  # content key -> (id, reason) of a copy that failed
    try:
        for batch in (backbone.embed_records(dataset, todo, batch_size=batch_size, num_workers=num_workers,
                                             emit=emit, cancel=cancel, **local) if todo else ()):
            cancel.raise_if_cancelled()
            for i, reason in batch.skipped:
                skipped.append((dataset.records[i].id, reason))
                if keys[i] is not None:
                    bad_content[keys[i]] = (dataset.records[i].id, reason)
                emit(ImageSkipped(dataset.records[i].id, reason))
            if len(batch.indices):
                encoded += len(batch.indices)
                for i, v in zip(batch.indices, batch.vectors):
                    vectors[i] = v
                if cache is not None:
                    cache.put_images(backbone.identity, [(keys[i], v) for i, v in zip(batch.indices, batch.vectors)],
                                     backbone.identity_info)
            done += len(batch.indices) + len(batch.skipped)
            batches += 1
            if batches % TRIM_EVERY == 0:  # freed batches stay in the allocator's arenas otherwise
                release_free_memory()
            rate = encoded / max(time.perf_counter() - t0, 1e-9)
            emit(Progress(Stage.ENCODE_IMAGES, done, len(todo), rate, name))
    finally:
        release_free_memory()
    cancel.raise_if_cancelled()

    # duplicates of an encoded image share its embedding
    if cache is not None:
        by_key = {keys[i]: v for i, v in vectors.items()}
        for i, k in enumerate(keys):
            if k is not None and i not in vectors and k in by_key:
                vectors[i] = by_key[k]
            elif k in bad_content and dataset.records[i].id != bad_content[k][0]:
                # only the first copy of this content was decoded: every copy gets its own skip row
                first, reason = bad_content[k]
                skipped.append((dataset.records[i].id, f"{reason} (same content as {first})"))
                emit(ImageSkipped(dataset.records[i].id, skipped[-1][1]))
    bad_ids = {s[0] for s in skipped}
    indices = np.array(sorted(i for i in vectors if dataset.records[i].id not in bad_ids), dtype=np.int64)
    dim = backbone.embed_dim
    matrix = np.stack([vectors[i] for i in indices]).astype(np.float32) if len(indices) else np.zeros((0, dim), np.float32)
    return ImageEmbeddings(indices, matrix, skipped, encoded, n_cached, time.perf_counter() - t_start)


def embed_names(
    backbone: EmbeddingModel,
    names: Sequence[str],
    templates: Sequence[str],
    *,
    cache: Optional[EmbeddingCache] = None,
    batch_size: int = 256,
    emit: EventCallback = ignore_events,
    cancel: Optional[CancelToken] = None,
) -> np.ndarray:
    """Category embedding per name: normalised mean over templates of normalised prompts.

    Prompts live in one [names x templates, dim] matrix: cached rows come from one batched
    cache lookup, only the missing (template, name) pairs are encoded (each once), and the
    means are taken for all names at once, so a cached re-run of millions of prompts is
    bounded by reading the cache, not by Python loops.
    """
    cancel = cancel or CancelToken()
    pairs = [(t, n) for n in names for t in templates]
    dim = backbone.embed_dim
    if cache is not None:
        prompts, found = cache.get_text_matrix(backbone.identity, pairs, dim)
    else:
        prompts, found = np.zeros((len(pairs), dim), dtype=np.float32), np.zeros(len(pairs), dtype=bool)
    rows_of: dict[tuple[str, str], list[int]] = {}
    for i in np.flatnonzero(~found):
        rows_of.setdefault(pairs[i], []).append(int(i))
    missing = list(rows_of)  # in name-major order, each pair once
    total, t0 = len(missing), time.perf_counter()
    if missing:
        ensure_loaded(backbone, emit)
        emit(Progress(Stage.ENCODE_TEXT, 0, total, None, backbone.name))
    for start in range(0, len(missing), batch_size):
        cancel.raise_if_cancelled()
        chunk = missing[start : start + batch_size]
        feats = backbone.embed_texts([t.format(n) for t, n in chunk])
        for p, v in zip(chunk, feats):
            prompts[rows_of[p]] = v
        if cache is not None:
            cache.put_texts(backbone.identity, list(zip(chunk, feats)), backbone.identity_info)
        done = start + len(chunk)
        emit(Progress(Stage.ENCODE_TEXT, done, total, done / max(time.perf_counter() - t0, 1e-9), backbone.name))
    out = prompts.reshape(len(names), len(templates), dim).mean(axis=1)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32, copy=False)
