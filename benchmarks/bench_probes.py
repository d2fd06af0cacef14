"""Linear probes: semscale's probe (``core.stats.probe``) against CLIP_benchmark's own linear probe
(``clip_benchmark.metrics.linear_probe``, 1.6.2) on the same features and the same splits.

Workload: structured synthetic image features, 20 classes x 100 images in 128 dimensions:
each class a direction on the sphere plus a shared nuisance subspace (a few strong directions
every image varies along) and isotropic noise, scaled so a probe lands well below 100%. Per
shot count (2, 4, 16 per class and ``all`` = half of each class) and seeded split, both
probes see the same training images (the adaptive ensembles' k-shot split) and the same
validation part of them (:func:`core.stats.probe.validation_split`), and are scored on the
same held-out images.

CLIP_benchmark's side runs its ``find_peak`` (the coarse-to-fine weight-decay search), ``train``
(a linear layer, AdamW, cosine schedule; its command line's defaults: lr 0.1, 10 epochs, batches
of 64) and ``infer`` on DataLoaders of those features, as its ``evaluate`` does once the
features are cached. Its ``train`` moves the layer to CUDA unconditionally; without a GPU the
``.cuda()`` calls are made no-ops, and its ``accuracy`` gets a NumPy-2.4-safe twin
(:func:`clip_benchmark_compat`); everything else is its own code, with autocast off on the CPU
(there it would be bfloat16).
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from typing import Optional

import numpy as np

SHOTS = (2, 4, 16, "all")


def _accuracy(output, target, topk=(1,)):
    """CLIP_benchmark's ``accuracy`` line for line, but ``.item()`` where it calls ``float()`` on a
    one-element array, which NumPy >= 2.4 refuses ("only 0-dimensional arrays can be converted")."""
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    n = len(target)
    return [correct[:k].reshape(-1).float().sum(0, keepdim=True).cpu().item() / n for k in topk]


@contextlib.contextmanager
def clip_benchmark_compat():
    """What CLIP_benchmark 1.6.2's linear probe needs to run here, and nothing else: its
    ``accuracy`` made NumPy-2.4-safe, and without a GPU ``.cuda()`` on modules and tensors
    returning them unchanged (its ``train`` calls it unconditionally). Yields the device."""
    import torch

    from clip_benchmark.metrics import linear_probe as lp

    saved = lp.accuracy, torch.nn.Module.cuda, torch.Tensor.cuda
    lp.accuracy = _accuracy
    gpu = torch.cuda.is_available()
    if not gpu:
        torch.nn.Module.cuda = lambda self, *a, **k: self
        torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield "cuda" if gpu else "cpu"
    finally:
        lp.accuracy, torch.nn.Module.cuda, torch.Tensor.cuda = saved


def clip_benchmark_probe(X_fit: np.ndarray, y_fit: np.ndarray, X_val: Optional[np.ndarray], y_val: Optional[np.ndarray],
                         X_test: np.ndarray, y_test: np.ndarray, n_classes: int, seed: int = 0, lr: float = 0.1,
                         epochs: int = 10, batch_size: int = 64,
                         train_all: Optional[tuple[np.ndarray, np.ndarray]] = None) -> tuple[float, float]:
    """(top-1 on the test features, chosen weight decay) by CLIP_benchmark's linear-probe functions.

    Features are L2-normalised first (its Featurizer's ``normalize=True``). The weight decay is
    searched with its ``find_peak`` on (fit, validation) when a validation part exists, else 0 as
    its ``evaluate`` does without a validation loader; the final layer is trained on fit +
    validation (all the training shots, as semscale refits; ``train_all`` gives them in the order
    semscale holds them, which decides the shuffled batches) and scored with its ``infer``.
    """
    import torch
    from torch.utils.data import DataLoader

    from clip_benchmark.metrics import linear_probe as lp
    from core.stats.probe import normalise

    def loader(X, y):
        ds = lp.FeatureDataset(torch.from_numpy(normalise(X)), torch.from_numpy(np.asarray(y, dtype=np.int64)))
        return DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=0)

    d = X_fit.shape[1]
    with clip_benchmark_compat() as device, contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        amp = device == "cuda"
        if X_val is not None and len(X_val):
            wd_list = np.logspace(-6, 2, num=97).tolist()
            wd_init = [i for i, v in enumerate(wd_list) if v in np.logspace(-6, 2, num=7).tolist()]
            fit_l, val_l = loader(X_fit, y_fit), loader(X_val, y_val)
            peak = lp.find_peak(wd_list, wd_init, fit_l, val_l, d, n_classes, lr, epochs, amp, device, False, seed)
            span = 8
            while span > 0:
                left, right = max(peak - span, 0), min(peak + span, len(wd_list) - 1)
                peak = lp.find_peak(wd_list, [left, peak, right], fit_l, val_l, d, n_classes, lr, epochs, amp, device,
                                    False, seed)
                span //= 2
            wd = wd_list[peak]
            X_all, y_all = train_all or (np.concatenate([X_fit, X_val]), np.concatenate([y_fit, y_val]))
        else:
            wd, X_all, y_all = 0.0, X_fit, y_fit
        model = lp.train(loader(X_all, y_all), d, n_classes, wd, lr, epochs, amp, device, seed)
        logits, target = lp.infer(model, loader(X_test, y_test), amp, device)
        (acc1,) = _accuracy(logits.float(), target.float(), topk=(1,))
    return float(acc1), float(wd)


def structured_features(n_classes: int = 20, per_class: int = 150, dim: int = 128, seed: int = 0,
                        signal: float = 0.35, nuisance: float = 1.0, noise: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Class directions + a shared low-rank nuisance + isotropic noise: linearly separable only in part."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n_classes, dim))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    basis = np.linalg.qr(rng.normal(size=(dim, 8)))[0]  # 8 nuisance directions every image varies along
    y = np.repeat(np.arange(n_classes), per_class)
    X = signal * means[y] + nuisance * rng.normal(size=(len(y), 8)) @ basis.T / np.sqrt(8) \
        + noise * rng.normal(size=(len(y), dim)) / np.sqrt(dim)
    order = rng.permutation(len(y))
    return X[order].astype(np.float32), y[order]


def parity(n_classes: int = 20, per_class: int = 100, dim: int = 128, splits: int = 2, seed: int = 0,
           shots=SHOTS) -> dict:
    """semscale's two solvers and CLIP_benchmark per shot count and split: top-1 means, gaps, times."""
    from core.stats.probe import ALL, fit_probe, normalise, probe_split, split_seed, validation_split

    X, y = structured_features(n_classes, per_class, dim, seed)
    Xn = normalise(X)
    out = {"n_images": len(y), "n_classes": n_classes, "dim": dim, "splits": splits, "shots": {}}
    for k in shots:
        acc = {"optimum": [], "clip_benchmark": [], "theirs": []}
        secs = dict.fromkeys(acc, 0.0)
        wds = []
        for split in range(splits):
            tr, te = probe_split(y, k, seed, split)
            vseed = split_seed(seed, 0 if k == ALL else int(k), split)
            chosen = []
            for solver in ("optimum", "clip_benchmark"):
                t0 = time.perf_counter()
                fit = fit_probe(Xn[tr], y[tr], seed=vseed, solver=solver, train_seed=seed)
                acc[solver].append(float(np.mean(np.argmax(fit.scores_for(Xn[te], n_classes), axis=1) == y[te])))
                secs[solver] += time.perf_counter() - t0
                chosen.append(fit.weight_decay)
            f_rows, v_rows = validation_split(y[tr], vseed)
            t0 = time.perf_counter()
            a, wd = clip_benchmark_probe(X[tr][f_rows], y[tr][f_rows], X[tr][v_rows], y[tr][v_rows], X[te], y[te],
                                         n_classes, seed=seed, train_all=(X[tr], y[tr]))
            secs["theirs"] += time.perf_counter() - t0
            acc["theirs"].append(a)
            wds.append([*chosen, wd])
        mean = {key: statistics.mean(v) for key, v in acc.items()}
        out["shots"][str(k)] = {
            "optimum_top1": mean["optimum"], "clip_benchmark_solver_top1": mean["clip_benchmark"],
            "clip_benchmark_top1": mean["theirs"],
            "optimum_diff_points": 100 * (mean["optimum"] - mean["theirs"]),
            "solver_diff_points": 100 * (mean["clip_benchmark"] - mean["theirs"]),
            "solver_max_split_diff_points": 100 * max(abs(a - b) for a, b in zip(acc["clip_benchmark"], acc["theirs"])),
            "optimum_seconds": secs["optimum"], "clip_benchmark_solver_seconds": secs["clip_benchmark"],
            "clip_benchmark_seconds": secs["theirs"],
            "weight_decays": wds, "n_train": int(len(tr)), "n_test": int(len(te)),
        }
        print(f"  {k} shots: {out['shots'][str(k)]}", flush=True)
    return out


def markdown(r: dict) -> list[str]:
    out = ["", "## Linear probes: parity with CLIP_benchmark",
           f"Structured synthetic features ({r['n_images']:,} images, {r['n_classes']} classes, {r['dim']} dimensions), "
           f"{r['splits']} seeded splits per shot count; every probe on the same L2-normalised features, the same "
           "training images (the adaptive ensembles' k-shot split; `all` = half of each class), the same validation "
           "part of them and the same held-out images. CLIP_benchmark 1.6.2: its own `find_peak` / `train` / `infer` "
           "(AdamW, lr 0.1, 10 epochs, batches of 64" + (", on the CPU with its `.cuda()` calls made no-ops"
                                                         if r.get("device") == "cpu" else "")
           + "; its `accuracy` made NumPy-2.4-safe). semscale's `--probe-solver clip_benchmark` trains the same way; "
           "the default `optimum` solves the L2-regularised logistic regression exactly (scipy L-BFGS).", "",
           "| shots per class | CLIP_benchmark | semscale `clip_benchmark` | difference (points) | largest split "
           "difference | semscale `optimum` | difference (points) | seconds: CLIP_benchmark / `clip_benchmark` / "
           "`optimum` |", "|---|---|---|---|---|---|---|---|"]
    for k, s in r["shots"].items():
        out.append(f"| {k} | {100 * s['clip_benchmark_top1']:.1f}% | {100 * s['clip_benchmark_solver_top1']:.1f}% | "
                   f"**{s['solver_diff_points']:+.2f}** | {s['solver_max_split_diff_points']:.2f} | "
                   f"{100 * s['optimum_top1']:.1f}% | {s['optimum_diff_points']:+.2f} | "
                   f"{s['clip_benchmark_seconds']:.1f} / {s['clip_benchmark_solver_seconds']:.1f} / "
                   f"{s['optimum_seconds']:.1f} |")
    out += ["", "Target: `--probe-solver clip_benchmark` within one point of CLIP_benchmark per shot count. The "
            "`optimum` column shows how far CLIP_benchmark's ten epochs are from the optimum of the loss they "
            "minimise: with few images per class there are only a few dozen AdamW steps."]
    return out


def run(quick: bool = False) -> dict:
    import torch

    r = parity(n_classes=8, per_class=40, splits=1) if quick else parity()
    r["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    return r
