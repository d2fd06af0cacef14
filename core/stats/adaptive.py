"""Adaptive ensembles fitted on k labelled images per class (torch): a global temperature per
backbone, or the Neural Logit Controller (Rodriguez-Opazo et al., ICLR 2025), which reads the
image's embeddings from all backbones and outputs one temperature per backbone.

Its own module so that a sweep without adaptive ensembles never imports torch for them
(:mod:`core.stats.ensemble` has the rest of the ensemble methods).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch


ONE_THREAD_BELOW = 1 << 20  # tensor elements under which a fit or evaluation runs on one thread


@contextmanager
def _threads_for(n_elements: int):
    """Small fits run on one intra-op thread, restored afterwards.

    A k-shot fit is hundreds of optimiser steps on tensors of a few thousand values: threads
    cannot speed those up, and every parallel region waits for a second thread to be
    scheduled. With the cores busy (the app's GUI thread, other processes) that wait made
    the whole ensemble stage 10-20x slower (benchmarks/results.md, "Ensemble stage").
    """
    before = torch.get_num_threads()
    one = n_elements < ONE_THREAD_BELOW and before != 1
    if one:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if one:
            torch.set_num_threads(before)


@dataclass
class FitSettings:
    steps: int = 300
    lr: float = 0.02
    l2_to_init: float = 0.1  # pulls log-temperatures back to each backbone's own scale
    hidden: int = 32
    weight_decay: float = 1e-3
    seed: int = 0
    patience: int = 20  # steps over which the loss must improve by min_delta to go on
    min_delta: float = 1e-4


class _Controller(torch.nn.Module):
    """log-temperature per backbone: global parameters, or a small MLP of the embeddings."""

    def __init__(self, n_backbones: int, init_log_t: torch.Tensor, in_dim: int = 0, hidden: int = 32):
        super().__init__()
        self.register_buffer("init", init_log_t)
        if in_dim:
            self.net = torch.nn.Sequential(
                torch.nn.Linear(in_dim, hidden), torch.nn.GELU(), torch.nn.Dropout(0.1), torch.nn.Linear(hidden, n_backbones)
            )
            torch.nn.init.zeros_(self.net[-1].weight)
            torch.nn.init.zeros_(self.net[-1].bias)
            self.delta = None
        else:
            self.net = None
            self.delta = torch.nn.Parameter(torch.zeros(n_backbones))

    def forward(self, feats: Optional[torch.Tensor], n: int) -> torch.Tensor:
        if self.net is not None:
            return self.init + self.net(feats)
        return (self.init + self.delta).expand(n, -1)


class AdaptiveEnsemble:
    """Fit on (scores, y) of the training images only; predict on any images."""

    def __init__(self, method: str = "global", settings: Optional[FitSettings] = None) -> None:
        if method not in ("global", "nlc"):
            raise ValueError(f"unknown adaptive method {method!r}")
        self.method = method
        self.settings = settings or FitSettings()
        self.model: Optional[_Controller] = None
        self.losses: list[float] = []

    @staticmethod
    def _stack(scores: Sequence[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack([np.asarray(s, dtype=np.float32) for s in scores], axis=1))  # [N, B, C]

    def fit(self, scores: Sequence[np.ndarray], y: np.ndarray, scales: Sequence[float],
            feats: Optional[np.ndarray] = None) -> "AdaptiveEnsemble":
        with _threads_for(sum(np.size(s) for s in scores)):
            return self._fit(scores, y, scales, feats)

    def _fit(self, scores, y, scales, feats) -> "AdaptiveEnsemble":
        s = self.settings
        torch.manual_seed(s.seed)
        S = self._stack(scores)
        Y = torch.from_numpy(np.asarray(y, dtype=np.int64))
        F = torch.from_numpy(np.asarray(feats, dtype=np.float32)) if self.method == "nlc" else None
        init = torch.log(torch.tensor(list(scales), dtype=torch.float32))
        self.model = _Controller(S.shape[1], init, in_dim=F.shape[1] if F is not None else 0, hidden=s.hidden)
        opt = torch.optim.Adam(self.model.parameters(), lr=s.lr, weight_decay=s.weight_decay if F is not None else 0.0)
        self.model.train()
        for _ in range(s.steps):
            log_t = self.model(F, len(Y))
            logits = (log_t.exp().unsqueeze(-1) * S).sum(dim=1)
            loss = torch.nn.functional.cross_entropy(logits, Y) + s.l2_to_init * ((log_t - init) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            self.losses.append(float(loss.detach()))
            # early stop once the loss no longer moves: most few-shot fits converge in < 100 steps
            if len(self.losses) > s.patience and self.losses[-s.patience - 1] - self.losses[-1] < s.min_delta:
                break
        self.model.eval()
        return self

    @torch.no_grad()
    def temperatures(self, n: int, feats: Optional[np.ndarray] = None) -> np.ndarray:
        F = torch.from_numpy(np.asarray(feats, dtype=np.float32)) if self.method == "nlc" else None
        return self.model(F, n).exp().numpy()

    @torch.no_grad()
    def logits(self, scores: Sequence[np.ndarray], feats: Optional[np.ndarray] = None) -> np.ndarray:
        S = self._stack(scores)
        with _threads_for(S.numel()):
            t = torch.from_numpy(self.temperatures(S.shape[0], feats))
            return (t.unsqueeze(-1) * S).sum(dim=1).numpy()
