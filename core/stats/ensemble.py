"""Backbone synergy: oracle, fixed ensembles and adaptive k-shot ensembles.

All functions take per-backbone class scores over the same images and label set:
``scores`` is a list of [N, C] arrays of cosine similarities (flat mode: max over a class's
names), ``scales`` each backbone's logit scale, ``y`` the true class per image.

The adaptive ensembles follow "Synergy and Diversity in CLIP" (Rodriguez-Opazo et al.,
ICLR 2025): the ensemble logits are a temperature-weighted sum of the backbones' logits.
``global`` learns one positive temperature per backbone; ``nlc`` (Neural Logit
Controller) is input-aware: a small network reads the image's embeddings from all
backbones and outputs one temperature per backbone. Both start at each backbone's own
logit scale (i.e. at the plain mean of logits) and are pulled back towards it by an L2
penalty, which keeps 1-shot fits from running away. Fitting only ever sees the training
split; evaluation images are passed separately and never touch the optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from core.util.memory import release_free_memory
from core.stats.metrics import top_choice


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def choices(scores: Sequence[np.ndarray]) -> np.ndarray:
    """[B, N, C] top-1 choice of each backbone under a fair tie-break (see metrics.top_choice).

    A name shared by m classes gives those classes one exact score, so the backbone's
    choice is 1/m to each of them rather than whichever class the labels file lists first.
    """
    return np.stack([top_choice(s) for s in scores])


def predictions_as_choices(preds: np.ndarray, n_classes: int) -> np.ndarray:
    """[B, N, C] one-hot choices of systems that give one class per image; -1 (no answer) gives a zero row."""
    preds = np.asarray(preds, dtype=np.int64)
    out = np.zeros((*preds.shape, n_classes), dtype=np.float32)
    b, n = np.nonzero(preds >= 0)
    out[b, n, preds[b, n]] = 1.0
    return out


def credit(choice: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-image credit of a [N, C] choice: the chance that the chosen class is the true one."""
    return choice[np.arange(len(y)), y].astype(float)


def oracle_correct(choice: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Chance per image that some system is right (any backbone right), tie-breaks independent."""
    c = np.stack([credit(ch, y) for ch in choice])
    return 1.0 - np.prod(1.0 - c, axis=0)


def mean_logits(scores: Sequence[np.ndarray], scales: Sequence[float]) -> np.ndarray:
    return np.mean([s * a for s, a in zip(scores, scales)], axis=0)


def mean_probabilities(scores: Sequence[np.ndarray], scales: Sequence[float]) -> np.ndarray:
    return np.mean([_softmax(s * a) for s, a in zip(scores, scales)], axis=0)


def majority_vote(choice: np.ndarray, tiebreak: Optional[np.ndarray] = None) -> np.ndarray:
    """[N, C] choice of the vote of [B, N, C] system choices.

    A system whose own top-1 is tied splits its vote equally, a system without an answer
    (zero row) gives none. Equal votes go to the class with the higher ``tiebreak`` score
    (e.g. the mean probability); what is still equal is shared fairly.
    """
    votes = np.asarray(choice, dtype=float).sum(axis=0)
    lead = votes >= votes.max(axis=1, keepdims=True) - 1e-9  # split votes are sums of fractions
    if tiebreak is None:
        return top_choice(np.where(lead, 1.0, 0.0))
    return top_choice(np.where(lead, tiebreak, -np.inf))


def pairwise_disagreement(choice: np.ndarray, y: np.ndarray, names: Sequence[str]) -> list[dict]:
    """Disagreement and who-is-right shares per pair of systems, expected over fair tie-breaks."""
    rows = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            ca, cb = credit(choice[a], y), credit(choice[b], y)
            same = (choice[a].astype(float) * choice[b]).sum(axis=1)
            rows.append({
                "a": names[a], "b": names[b],
                "disagreement": float(np.mean(1.0 - same)),
                "only_a_right": float(np.mean(ca * (1 - cb))),
                "only_b_right": float(np.mean(cb * (1 - ca))),
                "both_wrong": float(np.mean((1 - ca) * (1 - cb))),
            })
    return rows


def k_shot_split(y: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """k labelled images per class for fitting, the rest for evaluation.

    Classes with k or fewer images put all but one into fitting so every class keeps at
    least one evaluation image when it can.
    """
    rng = np.random.default_rng(seed)
    train = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        take = min(k, max(len(idx) - 1, 0))
        train.extend(idx[:take].tolist())
    train = np.array(sorted(train), dtype=np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[train] = False
    return train, np.flatnonzero(mask)


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
        t = torch.from_numpy(self.temperatures(S.shape[0], feats))
        return (t.unsqueeze(-1) * S).sum(dim=1).numpy()


def fixed_ensembles(scores: Sequence[np.ndarray], scales: Sequence[float], y: np.ndarray,
                    extra_preds: Optional[np.ndarray] = None) -> dict[str, float]:
    """Top-1 of oracle, mean of logits, mean of probabilities, majority vote, best single.

    ``extra_preds`` are systems without scores (external predictions), as [E, N] classes
    (-1 = no answer) or [E, N, C] choices: they join the oracle and the vote, not the score
    averages. Every top-1 is a credit under the tie policy (metrics.topk_correct).
    """
    extra = None if extra_preds is None else np.asarray(extra_preds)
    if scores:
        n_classes = scores[0].shape[1]
    else:
        n_classes = extra.shape[2] if extra.ndim == 3 else int(max(y.max(), extra.max()) + 1)
    parts = [choices(scores)] if scores else []
    if extra is not None:
        parts.append(extra if extra.ndim == 3 else predictions_as_choices(extra, n_classes))
    every = np.concatenate(parts)
    out = {
        "best_single": float(max(credit(ch, y).mean() for ch in every)),
        "oracle": float(oracle_correct(every, y).mean()),
    }
    if scores:
        mp = mean_probabilities(scores, scales)
        out["mean_logits"] = float(credit(top_choice(mean_logits(scores, scales)), y).mean())
        out["mean_probs"] = float(credit(top_choice(mp), y).mean())
        out["majority_vote"] = float(credit(majority_vote(every, tiebreak=mp), y).mean())
    else:
        out["majority_vote"] = float(credit(majority_vote(every), y).mean())
    out["oracle_gain"] = out["oracle"] - out["best_single"]
    return out


def top1(scores: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of [N, C] scores under the tie policy."""
    return float(credit(top_choice(scores), y).mean())


EVAL_ROWS = 2048  # evaluation images scored at once (bounds the [n, B, C] temporaries of big label sets)


def _eval_top1(logits_of, idx: np.ndarray, y: np.ndarray) -> float:
    """Top-1 over the images ``idx``, EVAL_ROWS at a time: ``logits_of(rows)`` gives their [n, C] scores.
    Every method scores each image on its own, so this is the top-1 of the whole set at once."""
    total = 0.0
    for a in range(0, len(idx), EVAL_ROWS):
        rows = idx[a : a + EVAL_ROWS]
        total += float(credit(top_choice(logits_of(rows)), y[rows]).sum())
    return total / len(idx)


def adaptive_rows(scores: Sequence[np.ndarray], scales: Sequence[float], y: np.ndarray, feats: Optional[np.ndarray],
                  shots: Sequence[int], n_splits: int, seed: int = 0, methods: Sequence[str] = ("global", "nlc"),
                  settings: Optional[FitSettings] = None) -> list[dict]:
    """k-shot evaluation over seeded splits, with best single and plain mean on the same splits."""
    rows = []
    for k in shots:
        for split in range(n_splits):
            tr, ev = k_shot_split(y, k, seed=seed * 1000 + 17 * k + split)
            if len(ev) == 0 or len(tr) == 0:
                continue
            release_free_memory()  # the previous split's fit and evaluation buffers (core.util.memory)
            s_tr = [s[tr] for s in scores]  # k per class: small; the evaluation images are scored in steps
            base = {"k": k, "split": split, "n_fit": len(tr), "n_eval": len(ev)}
            singles = [_eval_top1(lambda r, s=s: s[r], ev, y) for s in scores]
            # the best single backbone is chosen on the fitting images, like a user would
            chosen = int(np.argmax([top1(s, y[tr]) for s in s_tr]))
            rows.append({**base, "method": "best_single", "top1": singles[chosen]})
            rows.append({**base, "method": "best_single_oracle", "top1": max(singles)})
            rows.append({**base, "method": "mean_logits",
                         "top1": _eval_top1(lambda r: mean_logits([s[r] for s in scores], scales), ev, y)})
            for m in methods:
                if m == "nlc" and feats is None:
                    continue
                st = settings or FitSettings()
                st = FitSettings(**{**st.__dict__, "seed": seed + split})
                ens = AdaptiveEnsemble(m, st).fit(s_tr, y[tr], scales, feats[tr] if feats is not None else None)
                rows.append({**base, "method": m, "top1": _eval_top1(
                    lambda r: ens.logits([s[r] for s in scores], feats[r] if feats is not None else None), ev, y)})
    return rows
