"""Decoding and batching images for a model that runs in this process.

Worker processes decode (and preprocess) only the images the cache does not hold; the
encoder runs in batches that halve on out-of-memory; on a GPU, JPEGs can be decoded in
batches on the device (nvJPEG). :func:`encode_local` yields one
:class:`~core.models.base.EncodedBatch` per decoded batch.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from core.data import Dataset
from core.data.gpu_decode import RawJpeg, decode_batch, read_jpeg, tensor_preprocess
from core.data.images import MAX_PIXELS, BadImage, decode_at_least
from core.models.base import EncodedBatch
from core.util.events import CancelToken, EventCallback, Log, ignore_events


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
    cannot decode is opened on the CPU (which names the reason if it is broken). A perturbed
    dataset (core.data.perturb) perturbs each decoded tensor on the device, as its ``open`` does."""
    perturbs = ([dataset.tensor_perturbation(i) for i, _ in jpegs]
                if getattr(dataset, "perturbation", None) is not None else None)
    decoded = decode_batch([j for _, j in jpegs], device, prep, perturbs)
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


def encode_local(backbone, dataset: Dataset, indices: Sequence[int], *, batch_size: int = 64,
                 num_workers: Optional[int] = None, emit: EventCallback = ignore_events,
                 cancel: Optional[CancelToken] = None, backoff: Optional[BatchBackoff] = None,
                 prefetch_factor: int = 4) -> Iterator[EncodedBatch]:
    """Decode ``indices`` in worker processes and encode them with ``backbone.encode_images``.

    ``prefetch_factor``: batches each decode worker keeps ready, so the encoder (a GPU above
    all) never waits for the next one.
    """
    cancel = cancel or CancelToken()
    todo = list(indices)
    if not todo:
        return
    backoff = backoff or BatchBackoff(batch_size)
    workers = default_workers(len(todo), backbone.device) if num_workers is None else num_workers
    cuda = backbone.device.startswith("cuda")
    gpu_prep = None
    if backbone.spec.decode == "gpu":
        try:
            gpu_prep = tensor_preprocess(backbone.preprocess)
        except ValueError as e:
            emit(Log(f"{backbone.name}: {e}; decoding on the CPU instead", "warning"))
    loader = DataLoader(
        _DecodeSet(dataset, todo, backbone.preprocess, backbone.draft_side, raw_jpeg=gpu_prep is not None),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=cuda,  # page-locked batches: the host-to-GPU copy runs asynchronously
        prefetch_factor=prefetch_factor if workers else None,
    )
    it = iter(loader)
    try:
        with _encoder_threads(backbone.device, workers):
            for idx, xs, bad, *jpegs in it:
                cancel.raise_if_cancelled()
                if jpegs:
                    idx, xs, more = _decode_on_device(jpegs[0], idx, xs, backbone.device, gpu_prep, dataset,
                                                      backbone.preprocess)
                    bad = bad + more
                feats = backoff.run(backbone.encode_images, xs, emit).numpy() if xs is not None else None
                yield EncodedBatch(list(idx) if feats is not None else [], feats, list(bad))
    finally:
        del it  # shuts DataLoader workers down promptly on cancel
