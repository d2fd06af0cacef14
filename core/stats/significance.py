"""Paired significance along a scaling curve, the threshold verdict and its uncertainty.

Every level of a curve (one backbone x names kind x ordering) is scored on the same
images, so two levels are compared with a paired test: the exact two-sided McNemar test,
i.e. a binomial test of the discordant pairs (images right at one level and wrong at the
other) against p = 1/2.

Fractional credit (a tie between m classes earns 1/m, see the tie policy) enters as
expected credit: an image whose credit goes from ``a`` to ``b`` adds ``max(a - b, 0)`` to
the discordant count "right only at the first level" and ``max(b - a, 0)`` to "right only
at the second". With 0/1 credit this is the textbook count; a prediction that stays tied
the same way is concordant. The two sums are rounded to whole pairs for the binomial test,
and their difference is exactly the difference in summed credit of the two levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
from scipy.special import bdtr

from core.labels.controls import SYNONYMS
from core.util.config import DEFAULT_ALPHA as ALPHA  # one default, shared with SweepConfig

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Discordance:
    """Discordant pairs of two paired credit vectors (``a_only`` + ``b_only`` = n)."""

    a_only: int
    b_only: int

    @property
    def n(self) -> int:
        return self.a_only + self.b_only


def discordant_pairs(a: np.ndarray, b: np.ndarray) -> Discordance:
    """Discordant counts of two paired credit vectors in [0, 1] (expected credit, rounded)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired vectors differ in length ({a.shape} vs {b.shape})")
    d = a - b
    return Discordance(int(np.rint(d[d > 0].sum())), int(np.rint(-d[d < 0].sum())))


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sided McNemar p-value of two paired credit vectors (1 with no discordance)."""
    dis = discordant_pairs(a, b)
    if dis.n == 0:
        return 1.0
    # With p = 1/2 the binomial is symmetric, so the two-sided p-value is twice the lower
    # tail (what scipy.stats.binomtest returns, to ~1e-12). scipy.special's CDF spares every
    # sweep the import of scipy.stats (about 50 MB resident and 0.7 s).
    return float(min(1.0, 2.0 * bdtr(min(dis.a_only, dis.b_only), dis.n, 0.5)))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (NaNs stay NaN and are not counted in the family)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


@dataclass
class CurveTests:
    """Paired tests of one curve, aligned with its levels."""

    p_vs_level1: np.ndarray
    p_vs_previous: np.ndarray
    p_vs_level1_holm: np.ndarray


def curve_tests(credit: np.ndarray) -> CurveTests:
    """McNemar of every level vs the first and vs the previous one; Holm over levels 2..K.

    ``credit`` is [levels, images]. The first level's ``p_vs_level1`` is 1 (it is the
    reference, outside the Holm family) and its ``p_vs_previous`` is NaN.
    """
    credit = np.atleast_2d(np.asarray(credit, dtype=float))
    n_levels = len(credit)
    vs1 = np.array([mcnemar_exact(credit[0], credit[j]) for j in range(n_levels)])
    prev = np.array([np.nan] + [mcnemar_exact(credit[j - 1], credit[j]) for j in range(1, n_levels)])
    adj = np.ones(n_levels)
    if n_levels > 1:
        adj[1:] = holm(vs1[1:])
    return CurveTests(vs1, prev, adj)


def _resampled_sums(rows: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Column sums of ``rows`` [images, k] over ``n_boot`` bootstrap resamples of the images.

    Resampling n images with replacement draws each distinct row pattern a Multinomial(n,
    share of that pattern) number of times, so we draw those counts directly: the same
    distribution as resampling image indices, at a cost that grows with the number of
    distinct patterns (a few dozen for 0/1 credit) instead of with n.
    """
    patterns, counts = np.unique(rows, axis=0, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(rows), counts / counts.sum(), size=n_boot)  # [n_boot, patterns]
    return draws @ patterns


def peak_distribution(credit: np.ndarray, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Share of paired image-bootstrap resamples in which each level is the peak.

    Each resample draws the images with replacement (the same draw for every level) and
    recomputes every level's accuracy; a resample where several levels tie for the peak
    counts 1/t for each of the t tied levels, so the shares sum to 1.
    """
    credit = np.atleast_2d(np.asarray(credit, dtype=float))
    n_levels, n = credit.shape
    if n == 0 or n_boot <= 0:
        return np.full(n_levels, np.nan)
    acc = _resampled_sums(credit.T, n_boot, seed)  # [n_boot, levels], summed credit (accuracy x n)
    top = acc >= acc.max(axis=1, keepdims=True) - 1e-9
    return (top / top.sum(axis=1, keepdims=True)).sum(axis=0) / n_boot


def paired_difference_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 1000, level: float = 0.95,
                         seed: int = 0) -> tuple[float, float]:
    """Percentile CI of mean(a) - mean(b) over paired image-bootstrap resamples."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    if n == 0 or n_boot <= 0:
        return float("nan"), float("nan")
    means = _resampled_sums(d[:, None], n_boot, seed)[:, 0] / n
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def verdicts_from_predictions(predictions: "pd.DataFrame", alpha: float = ALPHA, n_boot: int = 1000,
                              seed: int = 0) -> dict[tuple[str, str], "Verdict"]:
    """Threshold verdicts per (backbone, names kind) from a run's predictions.csv (ordering 0), for runs
    written before threshold.csv existed. Credits are the file's ``credit`` column (tie credit), else
    ``correct``; only images scored at every level of the curve are used, so the tests stay paired."""
    if predictions is None or predictions.empty or "level" not in predictions:
        return {}
    p = predictions
    if "ordering" in p:
        p = p[p["ordering"] == 0]
    col = "credit" if "credit" in p else "correct"
    names = p["names"].astype(str) if "names" in p else SYNONYMS
    p = p.assign(_names=names, _backbone=p["backbone"].astype(str) if "backbone" in p else "")
    out = {}
    for (bb, kind), g in p.groupby(["_backbone", "_names"], sort=False):
        wide = g.pivot_table(index="level", columns="image", values=col, aggfunc="first").dropna(axis=1)
        if wide.shape[1] == 0:
            continue
        out[(bb, kind)] = threshold_verdict([int(k) for k in wide.index], wide.to_numpy(dtype=float), alpha, n_boot,
                                            seed)
    return out


TRENDS = ("rising", "plateau", "declining", "fluctuating", "unknown")
SETTLED = ("plateau", "declining", "fluctuating")  # verdicts under which adding names has stopped paying


def fluctuation(credit: np.ndarray, alpha: float = ALPHA) -> Optional[dict]:
    """The ``fluctuating`` test of a curve (``credit`` [levels, images]), or None when it does not hold.

    Consecutive levels are compared with McNemar, Holm-adjusted over the K - 1 steps of the
    curve; the curve fluctuates when some step is a significant rise, some other step a
    significant fall, and the last level does not differ significantly from the first (raw
    McNemar). Returns the adjusted p of the strongest rise and fall and the first-vs-last p.
    """
    credit = np.atleast_2d(np.asarray(credit, dtype=float))
    if len(credit) < 3 or credit.shape[1] == 0:
        return None
    acc = credit.mean(axis=1)
    steps = holm([mcnemar_exact(credit[i - 1], credit[i]) for i in range(1, len(credit))])
    delta = np.diff(acc)
    rises, falls = steps[(steps < alpha) & (delta > 0)], steps[(steps < alpha) & (delta < 0)]
    if len(rises) == 0 or len(falls) == 0:
        return None
    p_ends = mcnemar_exact(credit[0], credit[-1])
    if p_ends < alpha:
        return None
    return {"p_rise": float(rises.min()), "p_fall": float(falls.min()), "p_first_last": float(p_ends)}


@dataclass
class Verdict:
    """The threshold of one curve, decided by paired tests."""

    peak_level: Optional[int]
    peak_top1: Optional[float]
    final_top1: Optional[float]
    drop_after_peak: Optional[float]
    trend: str  # one of TRENDS: rising | plateau | declining | fluctuating | unknown
    p_value: Optional[float]  # the test behind the trend (see ``test``)
    test: str
    alpha: float = ALPHA
    peak_share: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "peak_level": self.peak_level, "peak_top1": self.peak_top1, "final_top1": self.final_top1,
            "drop_after_peak": self.drop_after_peak, "trend": self.trend, "p_value": self.p_value,
            "test": self.test, "alpha": self.alpha,
            "peak_share": {int(k): round(float(v), 6) for k, v in self.peak_share.items()},
        }


def threshold_verdict(levels: Sequence[int], credit: np.ndarray, alpha: float = ALPHA, n_boot: int = 1000,
                      seed: int = 0) -> Verdict:
    """Peak and trend of one curve from paired McNemar tests on ``credit`` [levels, images].

    * ``declining``: the last level is significantly below the peak (Holm over the levels
      after the peak, each tested against the peak) — checked first: a rise and then a fall
      is the threshold the studies look for;
    * ``fluctuating``: not declining, but a significant rise and a significant fall between
      consecutive levels (Holm over the curve's K - 1 steps) and the last level not
      significantly different from the first (:func:`fluctuation`); ``p_value`` is the larger
      of the strongest rise's and the strongest fall's adjusted p (both must hold);
    * ``plateau``: no level after the peak differs significantly from it, or the peak is
      the last level but not significantly above level 1 (a flat curve);
    * ``rising``: otherwise — the peak is the last level and significantly above level 1
      (Holm-adjusted ``p_vs_level1``), or the curve dips significantly after the peak and
      recovers by the last level.
    """
    levels = list(levels)
    credit = np.atleast_2d(np.asarray(credit, dtype=float))
    if len(levels) == 0 or credit.shape[1] == 0:
        return Verdict(None, None, None, None, "unknown", None, "no data", alpha)
    acc = credit.mean(axis=1)
    j = int(np.argmax(acc))  # the first of equal peaks: fewer names for the same accuracy
    last = len(levels) - 1
    shares = peak_distribution(credit, n_boot, seed)
    share = {int(k): float(s) for k, s in zip(levels, shares)}
    base = dict(peak_level=int(levels[j]), peak_top1=float(acc[j]), final_top1=float(acc[last]),
                drop_after_peak=float(acc[j] - acc[last]), alpha=alpha, peak_share=share)
    after = holm([mcnemar_exact(credit[j], credit[i]) for i in range(j + 1, last + 1)]) if j < last else None
    if after is not None and after[-1] < alpha and acc[last] < acc[j]:
        return Verdict(trend="declining", p_value=float(after[-1]), test="last level vs peak", **base)
    fluct = fluctuation(credit, alpha)
    if fluct is not None:
        return Verdict(trend="fluctuating", p_value=max(fluct["p_rise"], fluct["p_fall"]),
                       test=f"rise and fall between consecutive levels (Holm); last vs level 1 "
                            f"p = {fluct['p_first_last']:.2g}", **base)
    if after is None:
        p = float(curve_tests(credit).p_vs_level1_holm[j]) if j > 0 else 1.0
        trend = "rising" if j > 0 and p < alpha else "plateau"
        return Verdict(trend=trend, p_value=p, test="peak vs level 1", **base)
    if np.all(after >= alpha):
        return Verdict(trend="plateau", p_value=float(after.min()),
                       test="smallest over later levels vs peak", **base)
    return Verdict(trend="rising", p_value=float(after[-1]), test="last level vs peak", **base)


# ---------------------------------------------------------------- a run's curves

CurveKey = tuple[str, str, int]  # (backbone, names kind, ordering)

THRESHOLD_COLUMNS = ["backbone", "names", "ordering", "peak_level", "peak_top1", "final_top1", "drop_after_peak",
                     "trend", "p_value", "test", "alpha", "peak_share", "peak_distribution"]
CONTROL_COLUMNS = ["backbone", "control", "level", "n_images", "synonyms_top1", "control_top1", "effect",
                   "ci_low", "ci_high", "p_value"]


@dataclass
class CurveBook:
    """Per-image credit of every curve of a run, so levels can be tested against each other.

    ``add`` gives a level's p-values as soon as it is scored (vs level 1 and the previous
    level); ``finish`` the Holm-adjusted ones and the peak shares once the curve is complete.
    With several orderings, a backbone x names kind also has a headline curve whose credit is
    each image's mean over the orderings (its expected credit under a random ordering).
    """

    levels: list[int]
    n_boot: int = 1000
    seed: int = 0
    alpha: float = ALPHA
    credit: dict[CurveKey, list[np.ndarray]] = field(default_factory=dict)

    def add(self, key: CurveKey, credit: np.ndarray) -> tuple[float, float]:
        """Record the next level of a curve; (p vs level 1, p vs the previous level)."""
        curve = self.credit.setdefault(key, [])
        credit = np.asarray(credit, dtype=float)
        p1 = mcnemar_exact(curve[0], credit) if curve else 1.0
        prev = mcnemar_exact(curve[-1], credit) if curve else float("nan")
        curve.append(credit)
        return p1, prev

    def matrix(self, key: CurveKey) -> np.ndarray:
        return np.stack(self.credit[key])

    def finish(self, key: CurveKey) -> tuple[np.ndarray, np.ndarray]:
        """(Holm-adjusted p vs level 1, peak share) per level of a scored curve."""
        c = self.matrix(key)
        return curve_tests(c).p_vs_level1_holm, peak_distribution(c, self.n_boot, self._seed(key))

    def _seed(self, key: CurveKey) -> int:
        return self.seed + 7919 * (key[2] + 1) + sum(map(ord, key[1]))

    def headline(self, backbone: str, kind: str) -> Optional[np.ndarray]:
        """[levels, images] credit of a backbone x kind: ordering 0, or the mean over orderings."""
        mats = [self.matrix(k) for k in self.credit if k[:2] == (backbone, kind) and len(self.credit[k]) == len(self.levels)]
        if not mats:
            return None
        return mats[0] if len(mats) == 1 else np.mean(mats, axis=0)

    def verdict(self, key: CurveKey) -> Verdict:
        return threshold_verdict(self.levels[: len(self.credit[key])], self.matrix(key), self.alpha, self.n_boot,
                                 self._seed(key))

    def threshold_rows(self, backbone: str) -> tuple[list[dict], dict[str, dict]]:
        """threshold.csv rows of one backbone and the summary's verdict per names kind.

        With several orderings each ordering gets its row, plus an ``all`` row for the
        headline curve (mean credit over orderings) and, in the summary, the spread of the
        orderings' peaks and trends.
        """
        rows, summary = [], {}
        kinds = list(dict.fromkeys(k[1] for k in self.credit if k[0] == backbone))
        for kind in kinds:
            keys = sorted(k for k in self.credit if k[:2] == (backbone, kind))
            per = {k[2]: self.verdict(k) for k in keys}
            for o, v in per.items():
                rows.append(_threshold_row(backbone, kind, o, v))
            head = self.headline(backbone, kind)
            if head is None:
                continue
            if len(per) > 1:
                v = threshold_verdict(self.levels, head, self.alpha, self.n_boot, self.seed + 31)
                rows.append(_threshold_row(backbone, kind, "all", v))
            else:
                v = next(iter(per.values()))
            d = v.to_dict()
            d["p_vs_level1_holm"] = {int(lv): float(p) for lv, p in zip(self.levels, curve_tests(head).p_vs_level1_holm)}
            if len(per) > 1:
                d["orderings"] = {
                    "n": len(per),
                    "trend_counts": _counts(v_.trend for v_ in per.values()),
                    "peak_level_counts": _counts(int(v_.peak_level) for v_ in per.values() if v_.peak_level is not None),
                }
            summary[kind] = d
        return rows, summary

    def control_rows(self, backbone: str) -> list[dict]:
        """controls.csv rows: synonyms minus each control per level, paired bootstrap CI, McNemar p."""
        syn = self.headline(backbone, SYNONYMS)
        if syn is None:
            return []
        rows = []
        kinds = [k for k in dict.fromkeys(k[1] for k in self.credit if k[0] == backbone) if k != SYNONYMS]
        for kind in kinds:
            ctrl = self.headline(backbone, kind)
            if ctrl is None:
                continue
            for j, lv in enumerate(self.levels):
                lo, hi = paired_difference_ci(syn[j], ctrl[j], self.n_boot, seed=self.seed + 104729 + lv)
                rows.append({
                    "backbone": backbone, "control": kind, "level": int(lv), "n_images": int(syn.shape[1]),
                    "synonyms_top1": float(syn[j].mean()), "control_top1": float(ctrl[j].mean()),
                    "effect": float(syn[j].mean() - ctrl[j].mean()), "ci_low": round(lo, 6), "ci_high": round(hi, 6),
                    "p_value": mcnemar_exact(syn[j], ctrl[j]),
                })
        return rows


def _counts(items) -> dict:
    out: dict = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


def _threshold_row(backbone: str, kind: str, ordering, v: Verdict) -> dict:
    dist = " ".join(f"{lv}:{s:.3f}" for lv, s in v.peak_share.items())
    return {"backbone": backbone, "names": kind, "ordering": ordering, "peak_level": v.peak_level,
            "peak_top1": v.peak_top1, "final_top1": v.final_top1, "drop_after_peak": v.drop_after_peak,
            "trend": v.trend, "p_value": v.p_value, "test": v.test, "alpha": v.alpha,
            "peak_share": v.peak_share.get(v.peak_level) if v.peak_level is not None else None,
            "peak_distribution": dist}
