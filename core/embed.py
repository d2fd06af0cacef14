"""Encoding images and category names, each exactly once per backbone, through the cache.

Images: content hashes → cache lookup → a torch DataLoader decodes only the misses in
worker processes → the encoder runs in batches (halving the batch on out-of-memory) →
new embeddings are written to the cache batch by batch, so an interrupted run resumes.
Texts: one normalised embedding per (template, name), cached; a name's category
embedding is the normalised mean over templates (open_clip's zero-shot convention).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from .backbones import Backbone
from .cache import EmbeddingCache
from .datasets import Dataset
from .events import CancelToken, EventCallback, ImageSkipped, Log, Progress, Stage, ignore_events
from .gpu_decode import RawJpeg, decode_batch, read_jpeg, tensor_preprocess
from .images import MAX_PIXELS, BadImage, decode_at_least
from .memory import release_free_memory


@dataclass
class ImageEmbeddings:
    """Embeddings of the usable images; row j belongs to dataset record ``indices[j]``."""

    indices: np.ndarray
    matrix: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    n_encoded: int = 0
    n_cached: int = 0
    seconds: float = 0.0


class _DecodeSet(TorchDataset):
    """Record j → (dataset index, preprocessed tensor or None, reason it was skipped)."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], preprocess, draft_side: Optional[int] = None,
                 raw_jpeg: bool = False) -> None:
        self.dataset = dataset
        self.indices = list(indices)
        self.preprocess = preprocess
        self.draft_side = draft_side  # JPEGs decode at reduced scale down to this shorter side (None: full size)
        self.raw_jpeg = raw_jpeg  # JPEG files come back as bytes (a RawJpeg) for batched GPU decoding

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int):
        i = self.indices[j]
        try:
            path = self.dataset.records[i].path
            if self.raw_jpeg and path is not None:
                raw = read_jpeg(path, MAX_PIXELS)
                if raw is not None:
                    return i, raw, ""
            with decode_at_least(self.draft_side):
                im = self.dataset.open(i)
            return i, self.preprocess(im), ""
        except BadImage as e:
            return i, None, str(e)
        except Exception as e:  # a transform failing on one odd image must not end the run
            return i, None, f"cannot preprocess image ({type(e).__name__}: {e})"


def _collate(items):
    good = [(i, x) for i, x, _ in items if isinstance(x, torch.Tensor)]
    bad = [(i, r) for i, x, r in items if x is None]
    xs = torch.stack([x for _, x in good]) if good else None
    jpegs = [(i, x) for i, x, _ in items if isinstance(x, RawJpeg)]
    return ([i for i, _ in good], xs, bad, jpegs) if jpegs else ([i for i, _ in good], xs, bad)


def _decode_on_device(jpegs: list[tuple[int, RawJpeg]], idx: list[int], xs: Optional[torch.Tensor], device: str,
                      prep, dataset: Dataset, preprocess):
    """Join a batch's CPU-decoded tensors with its JPEGs decoded on ``device``; a JPEG the device
    cannot decode is opened on the CPU (which names the reason if it is broken)."""
    decoded = decode_batch([j for _, j in jpegs], device, prep)
    parts = [xs.to(device, non_blocking=True)] if xs is not None else []
    idx, bad = list(idx), []
    for (i, _), x in zip(jpegs, decoded):
        if x is None:
            try:
                x = preprocess(dataset.open(i)).to(device)
            except BadImage as e:
                bad.append((i, str(e)))
                continue
            except Exception as e:
                bad.append((i, f"cannot preprocess image ({type(e).__name__}: {e})"))
                continue
        parts.append(x.unsqueeze(0))
        idx.append(i)
    return idx, (torch.cat(parts) if parts else None), bad


def default_workers(n_items: int, device: str = "cpu") -> int:
    """Decode processes: none for a few images; on a CPU encoder one per core up to 4 (the encoder
    gets its threads back while they wait, see :func:`_encoder_threads`); feeding a GPU, all cores
    but one, up to 16."""
    cores = os.cpu_count() or 1
    if n_items < 64 or cores < 2:
        return 0
    if device.startswith("cuda"):
        return max(1, min(16, cores - 1))
    return min(4, cores)


@contextmanager
def _encoder_threads(device: str, workers: int):
    """Run the CPU encoder on the cores the decode workers leave, not on all of them.

    With every core decoding, an encoder using as many intra-op threads as cores keeps waiting
    for a thread that is not scheduled: measured 5-7x slower per batch on 2 cores than one
    thread. Restored afterwards (the setting is per process).
    """
    before = torch.get_num_threads()
    want = max(1, min(before, (os.cpu_count() or 1) - workers)) if workers and device == "cpu" else before
    if want != before:
        torch.set_num_threads(want)
    try:
        yield
    finally:
        if want != before:
            torch.set_num_threads(before)


def is_oom(err: BaseException) -> bool:
    if isinstance(err, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


@dataclass
class BatchBackoff:
    """Largest batch that fits; halves on out-of-memory and stays there."""

    size: int
    reductions: int = 0

    def run(self, fn: Callable[[torch.Tensor], torch.Tensor], xs: torch.Tensor, emit: EventCallback) -> torch.Tensor:
        out, start = [], 0
        while start < len(xs):
            n = min(self.size, len(xs) - start)
            try:
                out.append(fn(xs[start : start + n]))
                start += n
            except Exception as e:
                if not is_oom(e) or n <= 1:
                    raise
                self.size = max(1, n // 2)
                self.reductions += 1
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                emit(Log(f"out of memory at batch size {n}; continuing with {self.size}", "warning"))
        return torch.cat(out) if out else torch.empty(0)


def ensure_loaded(backbone: Backbone, emit: EventCallback) -> None:
    """Build the network now that something needs encoding (reported as its own stage)."""
    if not backbone.loaded:
        emit(Progress(Stage.LOAD_MODEL, 0, 1, None, backbone.name, f"loading {backbone.name}"))
        backbone.load()
        emit(Progress(Stage.LOAD_MODEL, 1, 1, None, backbone.name))


def logit_scale(backbone: Backbone, cache: Optional[EmbeddingCache]) -> float:
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


TRIM_EVERY = 16  # batches between returns of freed memory to the OS (core.memory)


def embed_images(
    backbone: Backbone,
    dataset: Dataset,
    *,
    cache: Optional[EmbeddingCache] = None,
    batch_size: int = 64,
    num_workers: Optional[int] = None,
    emit: EventCallback = ignore_events,
    cancel: Optional[CancelToken] = None,
    backoff: Optional[BatchBackoff] = None,
    prefetch_factor: int = 4,
) -> ImageEmbeddings:
    """Embed every usable image once; cached images are not decoded or encoded at all.

    ``prefetch_factor``: batches each decode worker keeps ready, so the encoder (a GPU above
    all) never waits for the next one.
    """
    cancel = cancel or CancelToken()
    t_start = time.perf_counter()
    name = backbone.name
    skipped: list[tuple[str, str]] = []
    vectors: dict[int, np.ndarray] = {}

    if cache is not None:
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
        keys = [None] * len(dataset)
        todo = list(range(len(dataset)))
        n_cached = 0
    if cache is not None and n_cached:
        emit(Log(f"{name}: {n_cached} of {len(dataset)} images found in the cache"))

    backoff = backoff or BatchBackoff(batch_size)
    workers = default_workers(len(todo), backbone.device) if num_workers is None else num_workers
    done, encoded, t0 = 0, 0, time.perf_counter()
    emit(Progress(Stage.ENCODE_IMAGES, 0, len(todo), None, name))
    # nothing to encode: do not touch backbone.preprocess, which would build the model
    if todo:
        ensure_loaded(backbone, emit)
    cuda = backbone.device.startswith("cuda")
    gpu_prep = None
    if todo and backbone.spec.decode == "gpu":
        try:
            gpu_prep = tensor_preprocess(backbone.preprocess)
        except ValueError as e:
            emit(Log(f"{name}: {e}; decoding on the CPU instead", "warning"))
    loader = DataLoader(
        _DecodeSet(dataset, todo, backbone.preprocess, backbone.draft_side, raw_jpeg=gpu_prep is not None),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=cuda,  # page-locked batches: the host-to-GPU copy runs asynchronously
        prefetch_factor=prefetch_factor if workers else None,
    ) if todo else []
    it = iter(loader)
    batches = 0
    bad_content: dict[str, tuple[str, str]] = {}  # content key -> (id, reason) of a copy that failed
    try:
        with _encoder_threads(backbone.device, workers):
            for idx, xs, bad, *jpegs in it:
                cancel.raise_if_cancelled()
                if jpegs:
                    idx, xs, more = _decode_on_device(jpegs[0], idx, xs, backbone.device, gpu_prep, dataset,
                                                      backbone.preprocess)
                    bad = bad + more
                for i, reason in bad:
                    skipped.append((dataset.records[i].id, reason))
                    if keys[i] is not None:
                        bad_content[keys[i]] = (dataset.records[i].id, reason)
                    emit(ImageSkipped(dataset.records[i].id, reason))
                if xs is not None:
                    feats = backoff.run(backbone.encode_images, xs, emit).numpy()
                    encoded += len(idx)
                    for i, v in zip(idx, feats):
                        vectors[i] = v
                    if cache is not None:
                        cache.put_images(backbone.identity, [(keys[i], v) for i, v in zip(idx, feats)], backbone.identity_info)
                done += len(idx) + len(bad)
                batches += 1
                if batches % TRIM_EVERY == 0:  # freed batches stay in the allocator's arenas otherwise
                    release_free_memory()
                rate = encoded / max(time.perf_counter() - t0, 1e-9)
                emit(Progress(Stage.ENCODE_IMAGES, done, len(todo), rate, name))
    finally:
        del it  # shuts DataLoader workers down promptly on cancel
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


class PromptEncoder:
    """Text embeddings of a causal CLIP text tower, run only as far as the batch's longest prompt.

    open_clip pads every prompt to the full context (77 tokens for most models) and pools
    the end-of-text token. Under a causal attention mask no position sees the positions
    after it, so cutting the padding after the batch's last end-of-text token leaves every
    pooled feature unchanged (up to float rounding), at a fraction of the cost: prompts
    are usually under 15 tokens. Used only for open_clip's standard ``CLIP`` text tower
    with a causal mask and ``argmax``/``eos`` pooling, and checked once per backbone
    against the full-context encoder; anything else uses ``Backbone.encode_texts``.
    """

    TOLERANCE = {"fp32": 1e-4}  # largest difference to the full-context features accepted (else 3e-2)

    def __init__(self, backbone: Backbone) -> None:
        self.backbone = backbone
        self.checked: Optional[bool] = None if self._applicable() else False

    def _applicable(self) -> bool:
        m = self.backbone.model
        mask = getattr(m, "attn_mask", None)
        if type(m).__name__ != "CLIP" or getattr(m, "text_pool_type", None) not in ("argmax", "eos"):
            return False
        if mask is None or mask.ndim != 2 or not all(hasattr(m, a) for a in
                                                     ("token_embedding", "positional_embedding", "ln_final")):
            return False
        upper = torch.ones(mask.shape, dtype=torch.bool, device=mask.device).triu(1)
        return bool(torch.equal(torch.isneginf(mask), upper))

    @torch.no_grad()
    def _short(self, texts: list[str]) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        bb, m = self.backbone, self.backbone.model
        tokens = bb.tokenizer(texts).to(bb.device)
        eos = getattr(m, "text_eos_id", None)
        ends = tokens.argmax(dim=-1) if m.text_pool_type == "argmax" else (tokens == eos).int().argmax(dim=-1)
        n = int(ends.max()) + 1
        tokens = tokens[:, :n]
        with bb.autocast():  # the steps of open_clip's CLIP.encode_text, on the first n positions
            cast = m.transformer.get_cast_dtype()
            x = m.token_embedding(tokens).to(cast) + m.positional_embedding[:n].to(cast)
            x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask[:n, :n]))
            x = text_global_pool(x, tokens, m.text_pool_type, eos_token_id=eos)
            if m.text_projection is not None:
                x = m.text_projection(x) if isinstance(m.text_projection, torch.nn.Linear) else x @ m.text_projection
        return torch.nn.functional.normalize(x.float(), dim=-1).cpu()

    def __call__(self, texts: list[str]) -> torch.Tensor:
        if self.checked is None:  # once: the same features as the full context, else never again
            probe = texts[:4]
            diff = float((self._short(probe) - self.backbone.encode_texts(probe)).abs().max())
            self.checked = diff <= self.TOLERANCE.get(self.backbone.precision, 3e-2)
        return self._short(texts) if self.checked else self.backbone.encode_texts(texts)


def embed_names(
    backbone: Backbone,
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
        encode = PromptEncoder(backbone)
    for start in range(0, len(missing), batch_size):
        cancel.raise_if_cancelled()
        chunk = missing[start : start + batch_size]
        feats = encode([t.format(n) for t, n in chunk]).numpy()
        for p, v in zip(chunk, feats):
            prompts[rows_of[p]] = v
        if cache is not None:
            cache.put_texts(backbone.identity, list(zip(chunk, feats)), backbone.identity_info)
        done = start + len(chunk)
        emit(Progress(Stage.ENCODE_TEXT, done, total, done / max(time.perf_counter() - t0, 1e-9), backbone.name))
    out = prompts.reshape(len(names), len(templates), dim).mean(axis=1)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32, copy=False)
