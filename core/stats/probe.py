"""Linear probes on image features: is the class in the embedding, even where zero-shot names fail?

The protocol is CLIP_benchmark's linear probe (``clip_benchmark.metrics.linear_probe``), itself
the CLIP paper's (Radford et al. 2021, A.3): a multinomial logistic regression on L2-normalised
image features, its L2 regularisation chosen on a validation split of the training images by
the same coarse-to-fine search over ``logspace(-6, 2, 97)`` (7 coarse values, then halving
steps of 8, 4, 2, 1 grid points around the best), then refitted on all training images.

CLIP_benchmark trains the linear layer with AdamW for a few epochs on a GPU. The default
solver here (``optimum``) solves the L2-regularised objective to its optimum with full-batch
L-BFGS (scipy, analytic gradient): deterministic, and equal to scikit-learn's
``LogisticRegression(C=1 / (weight_decay * n_train))`` on the same features. The
``clip_benchmark`` solver trains as CLIP_benchmark does, to reproduce its figures. The training and
held-out images are the adaptive ensembles' seeded k-shot splits
(:func:`core.stats.ensemble.k_shot_split`), so zero-shot, probe and ensembles are compared on
the very same held-out images.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import numpy as np

from core.stats.ensemble import k_shot_split
from core.stats.metrics import bootstrap_ci, topk_correct
from core.util.errors import InputError

ALL = "all"
WD_GRID = np.logspace(-6, 2, num=97)  # CLIP_benchmark's weight-decay grid
WD_COARSE = [i for i in range(len(WD_GRID)) if i % 16 == 0]  # its 7 starting points, 1e-6 ... 1e2
NO_VALIDATION_WD = 1.0  # one shot per class leaves nothing to validate on: a strong prior (near class means)
VAL_SHARE = 0.25  # of each class's training images, for choosing the weight decay

SOLVERS = ("optimum", "clip_benchmark")
Shots = Union[int, str]


@dataclass
class SgdSettings:
    """The ``clip_benchmark`` solver: CLIP_benchmark's command-line defaults for its linear probe."""

    lr: float = 0.1
    epochs: int = 10
    batch_size: int = 64


def parse_probe_shots(value: Union[str, Sequence, None], field: str = "probe-shots") -> list[Shots]:
    """``"1,2,4,16,all"`` (or a list) as positive integers and ``"all"``, in the given order, no repeats."""
    if value is None or isinstance(value, str) and not value.strip():
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[Shots] = []
    for item in items:
        text = str(item).strip().lower()
        if not text:
            continue
        if text == ALL:
            shot: Shots = ALL
        else:
            try:
                if isinstance(item, bool) or isinstance(item, float) and not item.is_integer():
                    raise ValueError
                shot = int(float(text)) if isinstance(item, float) else int(text)
            except ValueError:
                raise InputError(f"expected positive whole numbers or 'all' (e.g. 1,2,4,16,all), got {item!r}",
                                 field=field) from None
            if shot < 1:
                raise InputError(f"shots per class must be at least 1, got {shot}", field=field)
        if shot not in out:
            out.append(shot)
    return out


def split_seed(seed: int, k: int, split: int) -> int:
    """The adaptive ensembles' seed of k-shot split ``split`` (core.stats.ensemble.adaptive_rows)."""
    return seed * 1000 + 17 * k + split


def half_split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``all`` shots: half of each class's images (rounded down) to train on, the rest held out."""
    rng = np.random.default_rng(seed)
    train = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        train.extend(idx[: len(idx) // 2].tolist())
    train = np.array(sorted(train), dtype=np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[train] = False
    return train, np.flatnonzero(mask)


def probe_split(y: np.ndarray, shots: Shots, seed: int, split: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) rows: k shots per class exactly as the adaptive ensembles draw them, or halves for ``all``."""
    if shots == ALL:
        return half_split(y, split_seed(seed, 0, split))
    return k_shot_split(y, int(shots), seed=split_seed(seed, int(shots), split))


def validation_split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) rows of the training images: a quarter of each class with two or more
    (at least one), the rest fitted; classes with one image stay in the fit."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < 2:
            continue
        rng.shuffle(idx)
        val.extend(idx[: max(1, int(round(len(idx) * VAL_SHARE)))].tolist())
    val = np.array(sorted(val), dtype=np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[val] = False
    return np.flatnonzero(mask), val


def normalise(X: np.ndarray) -> np.ndarray:
    """L2-normalised rows (float32), as CLIP_benchmark's Featurizer(normalize=True) gives them."""
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def fit_logistic(X: np.ndarray, y: np.ndarray, n_classes: int, weight_decay: float,
                 max_iter: int = 1000, init: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """(W [C, D], b [C]) minimising mean cross-entropy + weight_decay / 2 · ‖W‖² (bias not penalised).

    The optimum of scikit-learn's ``LogisticRegression(C=1 / (weight_decay · n))``: the problem is
    convex, so scipy's L-BFGS-B from zeros with the analytic gradient reaches it; a few-shot fit
    takes milliseconds (torch's per-operation overhead made the same fit 20x slower). ``init``
    (W and b flattened, e.g. the solution at a neighbouring weight decay) only saves iterations.
    """
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    X = np.ascontiguousarray(X, dtype=np.float64)
    n, d = X.shape
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), np.asarray(y, dtype=np.int64)] = 1.0

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W = theta[: n_classes * d].reshape(n_classes, d)
        b = theta[n_classes * d:]
        logp = log_softmax(X @ W.T + b, axis=1)
        loss = -float((onehot * logp).sum()) / n + 0.5 * weight_decay * float((W * W).sum())
        g = (np.exp(logp) - onehot) / n  # d loss / d logits
        return loss, np.concatenate([(g.T @ X + weight_decay * W).ravel(), g.sum(axis=0)])

    x0 = np.zeros(n_classes * (d + 1)) if init is None else np.asarray(init, dtype=np.float64)
    with _one_blas_thread(n * d * n_classes):
        res = minimize(loss_grad, x0, jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter, "gtol": 1e-8, "ftol": 1e-12})
    return res.x[: n_classes * d].reshape(n_classes, d), res.x[n_classes * d:]


def fit_clip_benchmark(X: np.ndarray, y: np.ndarray, n_classes: int, weight_decay: float, seed: int = 0,
                       settings: Optional[SgdSettings] = None) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) trained as CLIP_benchmark's ``linear_probe.train`` trains them: a torch linear layer
    (its default initialisation after ``torch.manual_seed(seed)``), AdamW with decoupled weight
    decay, a cosine learning rate without warm-up, shuffled batches, a fixed number of epochs.

    Not the optimum of the regularised loss (few-shot fits stop after a few dozen steps), but
    CLIP_benchmark's figures: the solver to reproduce them. The global torch RNG is left as it was.
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from core.stats.adaptive import _threads_for

    st = settings or SgdSettings()
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    Yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    with torch.random.fork_rng(devices=[]), _threads_for(Xt.numel() * n_classes):
        torch.manual_seed(seed)
        model = torch.nn.Linear(Xt.shape[1], n_classes)
        opt = torch.optim.AdamW(model.parameters(), lr=st.lr, weight_decay=weight_decay)
        loader = DataLoader(TensorDataset(Xt, Yt), batch_size=st.batch_size, shuffle=True)
        steps = st.epochs * len(loader)
        for epoch in range(st.epochs):
            for i, (xb, yb) in enumerate(loader):
                step = i + epoch * len(loader)
                for group in opt.param_groups:
                    group["lr"] = 0.5 * (1 + np.cos(np.pi * step / steps)) * st.lr
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
    return model.weight.detach().numpy().astype(np.float64), model.bias.detach().numpy().astype(np.float64)


@contextmanager
def _one_blas_thread(n_elements: int):
    """Small fits on one BLAS thread: hundreds of tiny products, where waiting for a second
    thread on a busy machine cost 10x (the reason of :func:`core.stats.adaptive._threads_for`)."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn and scipy users
    except ImportError:  # pragma: no cover
        yield
        return
    if n_elements >= 1 << 22:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@dataclass
class ProbeFit:
    """A fitted probe: weights over the training classes and how its weight decay was chosen."""

    W: np.ndarray  # [C_train, D]
    b: np.ndarray
    classes: np.ndarray  # class index of each row of W
    weight_decay: float
    n_train: int
    n_val: int  # 0: no validation possible (one image per class), NO_VALIDATION_WD used
    val_top1: float  # validation accuracy at the chosen weight decay (NaN without validation)

    solver: str = "optimum"

    @property
    def C(self) -> float:
        """scikit-learn's inverse regularisation for the same optimum (NaN for the clip_benchmark solver,
        whose decoupled weight decay is no L2 penalty, and for weight decay 0)."""
        if self.solver != "optimum" or self.weight_decay <= 0:
            return float("nan")
        return 1.0 / (self.weight_decay * self.n_train)

    def scores(self, X: np.ndarray) -> np.ndarray:
        """[N, n_classes] logits of normalised features ``X``; classes never trained on score -inf."""
        n_classes = int(self.classes.max()) + 1 if len(self.classes) else 0
        return self.scores_for(X, n_classes)

    def scores_for(self, X: np.ndarray, n_classes: int) -> np.ndarray:
        out = np.full((len(X), n_classes), -np.inf, dtype=np.float64)
        out[:, self.classes] = X.astype(np.float64) @ self.W.T + self.b
        return out


class _Validator:
    """Validation accuracy per weight decay; each fit starts from the solution at the nearest
    weight decay already fitted (a convex problem: same optimum, fewer iterations)."""

    def __init__(self, X: np.ndarray, y: np.ndarray, fit_rows: np.ndarray, val_rows: np.ndarray,
                 train: Optional[Callable] = None) -> None:
        self.classes, self.yi = np.unique(y[fit_rows], return_inverse=True)
        self.Xf, self.Xv, self.yv = X[fit_rows], X[val_rows], y[val_rows]
        self.solved: dict[float, np.ndarray] = {}
        self.train = train  # another solver (X, y, n_classes, wd) -> (W, b); None: the optimum

    def __call__(self, wd: float) -> float:
        if self.train is not None:
            W, b = self.train(self.Xf, self.yi, len(self.classes), wd)
        else:
            near = min(self.solved, key=lambda w: abs(np.log(w / wd)), default=None)
            init = self.solved[near] if near is not None else None
            W, b = fit_logistic(self.Xf, self.yi, len(self.classes), wd, init=init)
            self.solved[wd] = np.concatenate([W.ravel(), b])
        pred = self.classes[np.argmax(self.Xv @ W.T + b, axis=1)]
        return float(np.mean(pred == self.yv))


def find_peak(evaluate: Callable[[float], float]) -> tuple[int, float]:
    """CLIP_benchmark's weight-decay search: the best of 7 coarse values, then the best of
    (left, peak, right) at 8, 4, 2 and 1 grid steps. A value must beat the best so far
    strictly (the first one tried wins ties). Returns (grid index, its validation accuracy)."""
    memo: dict[int, float] = {}

    def best_of(idxs: Sequence[int]) -> int:
        best, top = 0, 0.0
        for i in idxs:
            if i not in memo:
                memo[i] = evaluate(float(WD_GRID[i]))
            if top < memo[i]:
                best, top = i, memo[i]
        return best

    peak = best_of(WD_COARSE)
    span = 8
    while span > 0:
        peak = best_of([max(peak - span, 0), peak, min(peak + span, len(WD_GRID) - 1)])
        span //= 2
    return peak, memo.get(peak, float("nan"))


def fit_probe(X: np.ndarray, y: np.ndarray, seed: int = 0, solver: str = "optimum", train_seed: int = 0,
              sgd: Optional[SgdSettings] = None) -> ProbeFit:
    """Weight decay chosen on a validation split of (normalised) ``X``, then refitted on all of it.

    ``seed`` draws the validation split; ``solver`` is ``optimum`` (:func:`fit_logistic`) or
    ``clip_benchmark`` (:func:`fit_clip_benchmark`, seeded with ``train_seed`` as CLIP_benchmark
    seeds every fit with its one ``--seed``; without validation it uses weight decay 0 as
    CLIP_benchmark does without a validation set).
    """
    if solver not in SOLVERS:
        raise InputError(f"unknown probe solver {solver!r} (choose {' or '.join(SOLVERS)})", field="probe-solver")
    train = None
    if solver == "clip_benchmark":
        def train(Xs, ys, n, wd):
            return fit_clip_benchmark(Xs, ys, n, wd, seed=train_seed, settings=sgd)
    fit_rows, val_rows = validation_split(y, seed)
    usable = len(val_rows) > 0 and len(np.unique(y[fit_rows])) >= 2
    if usable:
        idx, val_top1 = find_peak(_Validator(X, y, fit_rows, val_rows, train))
        wd = float(WD_GRID[idx])
    else:
        wd, val_top1 = (NO_VALIDATION_WD if train is None else 0.0), float("nan")
    classes, yi = np.unique(y, return_inverse=True)
    W, b = (train or fit_logistic)(X, yi, len(classes), wd)
    return ProbeFit(W, b, classes, wd, len(y), len(val_rows) if usable else 0, val_top1, solver)


def ci_over_splits(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean over splits (scipy.stats); NaN with fewer than two splits."""
    from scipy import stats

    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) < 2:
        return float("nan"), float("nan")
    sem = stats.sem(v)
    if sem == 0:
        return float(v.mean()), float(v.mean())
    lo, hi = stats.t.interval(level, len(v) - 1, loc=v.mean(), scale=sem)
    return float(lo), float(hi)


PROBE_COLUMNS = ["backbone", "shots", "split", "n_train", "n_test", "top1", "ci_low", "ci_high",
                 "zeroshot_top1", "zeroshot_level", "zeroshot_first_top1", "weight_decay", "C", "n_val", "val_top1",
                 "n_splits", "solver"]


def probe_rows(backbone: str, X: np.ndarray, y: np.ndarray, n_classes: int, levels: Sequence[int],
               zeroshot_credit: np.ndarray, shots: Sequence[Shots], n_splits: int, seed: int = 0,
               n_boot: int = 1000, on_split: Optional[Callable[[Shots, int], None]] = None,
               solver: str = "optimum") -> list[dict]:
    """probes.csv rows of one backbone: one per (shots, split) and a summary row (``split = "mean"``) per shots.

    ``X`` are the raw image features of the images, ``y`` their classes (name order, as the
    ensemble stage numbers them), ``zeroshot_credit`` [levels, N] the zero-shot top-1 credit of
    each image at each level. Zero-shot is reported on the same held-out images at the first
    level and at the level that scores best on the training images (no peeking at the held-out ones).
    """
    Xn = normalise(X)
    levels = list(levels)
    rows: list[dict] = []
    for k in shots:
        cell: list[dict] = []
        for split in range(n_splits):
            tr, te = probe_split(y, k, seed, split)
            if len(tr) == 0 or len(te) == 0 or len(np.unique(y[tr])) < 2:
                if on_split is not None:
                    on_split(k, split)
                continue
            fit = fit_probe(Xn[tr], y[tr], seed=split_seed(seed, 0 if k == ALL else int(k), split), solver=solver,
                            train_seed=seed)
            credit = topk_correct(fit.scores_for(Xn[te], n_classes), y[te], 1)
            on_train = zeroshot_credit[:, tr].mean(axis=1)
            best = int(np.argmax(on_train))  # first of equals: the fewest names
            cell.append({
                "backbone": backbone, "shots": k, "split": split, "n_train": len(tr), "n_test": len(te),
                "top1": float(credit.mean()), "ci_low": np.nan, "ci_high": np.nan,
                "zeroshot_top1": float(zeroshot_credit[best, te].mean()), "zeroshot_level": levels[best],
                "zeroshot_first_top1": float(zeroshot_credit[0, te].mean()),
                "weight_decay": fit.weight_decay, "C": fit.C, "n_val": fit.n_val, "val_top1": fit.val_top1,
                "n_splits": 1, "solver": solver,
            })
            if n_splits == 1:  # no spread over splits: the bootstrap over held-out images instead
                cell[-1]["ci_low"], cell[-1]["ci_high"] = bootstrap_ci(credit, n_boot=n_boot, seed=seed)
            if on_split is not None:
                on_split(k, split)
        rows += cell
        if cell:
            rows.append(summary_row(backbone, k, cell))
    return rows


def summary_row(backbone: str, k: Shots, cell: list[dict]) -> dict:
    """Mean over splits, with a t-interval over splits (one split: that split's bootstrap CI)."""
    top1 = [r["top1"] for r in cell]
    lo, hi = ci_over_splits(top1) if len(cell) >= 2 else (cell[0]["ci_low"], cell[0]["ci_high"])
    mean = lambda key: float(np.mean([r[key] for r in cell]))  # noqa: E731
    levels = sorted({r["zeroshot_level"] for r in cell})
    return {
        "backbone": backbone, "shots": k, "split": "mean", "n_train": mean("n_train"), "n_test": mean("n_test"),
        "top1": float(np.mean(top1)), "ci_low": lo, "ci_high": hi,
        "zeroshot_top1": mean("zeroshot_top1"), "zeroshot_level": levels[0] if len(levels) == 1 else ";".join(map(str, levels)),
        "zeroshot_first_top1": mean("zeroshot_first_top1"),
        "weight_decay": _geomean([r["weight_decay"] for r in cell]),
        "C": np.nan, "n_val": mean("n_val"), "val_top1": float(np.nanmean([r["val_top1"] for r in cell]))
        if any(np.isfinite(r["val_top1"]) for r in cell) else np.nan,
        "n_splits": len(cell), "solver": cell[0]["solver"],
    }


def _geomean(values: Sequence[float]) -> float:
    """Geometric mean of the chosen weight decays (they lie on a log grid); 0 when one is 0."""
    v = np.asarray(values, dtype=float)
    return 0.0 if np.any(v <= 0) else float(np.exp(np.mean(np.log(v))))
