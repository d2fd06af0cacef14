"""Paired tests, Holm, peak shares and verdicts against scipy and hand-worked vectors."""

import numpy as np
import pytest
from scipy.stats import binomtest

from core.stats.significance import (curve_tests, discordant_pairs, holm, mcnemar_exact, paired_difference_ci,
                               peak_distribution, threshold_verdict)


def vec(ones: int, zeros: int) -> np.ndarray:
    return np.array([1.0] * ones + [0.0] * zeros)


def test_mcnemar_matches_binomtest_on_discordant_pairs():
    # 3 images right only at a, 12 right only at b, 20 right at both, 5 wrong at both
    a = np.array([1] * 3 + [0] * 12 + [1] * 20 + [0] * 5, dtype=float)
    b = np.array([0] * 3 + [1] * 12 + [1] * 20 + [0] * 5, dtype=float)
    d = discordant_pairs(a, b)
    assert (d.a_only, d.b_only) == (3, 12)
    assert mcnemar_exact(a, b) == pytest.approx(binomtest(3, 15, 0.5).pvalue)
    assert mcnemar_exact(a, b) == pytest.approx(mcnemar_exact(b, a))
    assert mcnemar_exact(a, a) == 1.0  # no discordant pairs


@pytest.mark.parametrize("n", [1, 2, 7, 40, 333, 2001])
def test_mcnemar_equals_scipy_binomtest_for_every_split_of_n_pairs(n):
    for a_only in range(n + 1):
        a = vec(a_only, n - a_only)
        expected = binomtest(a_only, n, 0.5, alternative="two-sided").pvalue
        assert mcnemar_exact(a, 1.0 - a) == pytest.approx(expected, rel=1e-9, abs=1e-300), (a_only, n)


def test_fractional_credit_enters_as_expected_credit():
    # an image tied between 2 classes at both levels is concordant; going 1 -> 1/2 is half a pair
    a = np.array([0.5, 1.0, 1.0, 0.0, 1.0, 0.25])
    b = np.array([0.5, 0.5, 0.5, 1.0, 1.0, 0.75])
    d = discordant_pairs(a, b)
    assert (d.a_only, d.b_only) == (1, 2)  # 0.5 + 0.5 = 1 ; 1 + 0.5 = 1.5 -> 2 (round half to even)
    assert d.a_only - d.b_only == pytest.approx(a.sum() - b.sum(), abs=1)
    assert mcnemar_exact(a, b) == pytest.approx(binomtest(1, 3, 0.5).pvalue)


def test_holm_by_hand():
    p = [0.01, 0.04, 0.03, 0.5]
    # sorted 0.01, 0.03, 0.04, 0.5 -> x4, x3, x2, x1 = 0.04, 0.09, 0.08->0.09 (monotone), 0.5
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    out = holm([np.nan, 0.02, 0.04])
    assert np.isnan(out[0]) and out[1:] == pytest.approx([0.04, 0.04])


def test_curve_tests_align_with_levels():
    base = vec(50, 50)
    up = base.copy()
    up[50:70] = 1  # 20 images fixed, none broken
    mixed = up.copy()
    mixed[:3] = 0
    t = curve_tests(np.stack([base, up, mixed]))
    assert t.p_vs_level1[0] == 1.0 and np.isnan(t.p_vs_previous[0])
    assert t.p_vs_level1[1] == pytest.approx(binomtest(0, 20, 0.5).pvalue)
    assert t.p_vs_level1[2] == pytest.approx(binomtest(3, 23, 0.5).pvalue)
    assert t.p_vs_previous[2] == pytest.approx(binomtest(3, 3, 0.5).pvalue)
    assert t.p_vs_level1_holm[1:] == pytest.approx(holm(t.p_vs_level1[1:]))
    assert t.p_vs_level1_holm[0] == 1.0


def test_peak_distribution_shares():
    n = 200
    low, high = vec(100, 100), vec(100, 100)
    high[100:160] = 1  # clearly the peak
    s = peak_distribution(np.stack([low, high]), n_boot=300, seed=1)
    assert s.sum() == pytest.approx(1.0)
    assert s[1] == pytest.approx(1.0)
    # identical levels tie in every resample: shared equally
    same = peak_distribution(np.stack([low, low, low]), n_boot=50)
    assert same == pytest.approx([1 / 3] * 3)
    # two levels differing on 2 of 200 images: neither is always the peak
    close = low.copy()
    close[100] = 1
    close[0] = 0
    close[101] = 1
    s = peak_distribution(np.stack([low, close]), n_boot=500, seed=0)
    assert 0.05 < s[0] < 0.95 and s.sum() == pytest.approx(1.0)
    assert len(s) == 2 and n == 200


def test_paired_difference_ci_covers_the_difference():
    rng = np.random.default_rng(0)
    a = (rng.random(300) < 0.8).astype(float)
    b = a.copy()
    b[:30] = 0
    lo, hi = paired_difference_ci(a, b, n_boot=500, seed=3)
    diff = a.mean() - b.mean()
    assert lo <= diff <= hi and lo > 0
    assert paired_difference_ci(a, a, 200) == (0.0, 0.0)


def _curve(n, changes):
    """Levels built from a base with `changes[j]` = (fixed, broken) relative to level 1."""
    base = vec(n // 2, n - n // 2)
    rows = [base]
    for fixed, broken in changes:
        r = base.copy()
        r[n // 2 : n // 2 + fixed] = 1
        r[:broken] = 0
        rows.append(r)
    return np.stack(rows)


def test_verdict_declining_only_when_last_level_significantly_below_peak():
    # level 2 fixes 30 images; level 4 then breaks 25 of the 30 again: last << peak
    c = _curve(200, [(30, 0), (5, 0)])
    v = threshold_verdict([1, 2, 4], c, n_boot=200)
    assert v.trend == "declining" and v.peak_level == 2
    assert v.p_value == pytest.approx(binomtest(25, 25, 0.5).pvalue)  # one later level: Holm is the raw p
    assert v.p_value < 0.05
    assert sum(v.peak_share.values()) == pytest.approx(1.0)


def test_verdict_plateau_when_later_levels_do_not_differ_significantly():
    # the peak at level 2; level 4 and 8 lose 2 and 3 images of it: not significant
    c = _curve(200, [(30, 0), (28, 0), (27, 0)])
    v = threshold_verdict([1, 2, 4, 8], c, n_boot=200)
    assert v.trend == "plateau" and v.peak_level == 2
    raw = [binomtest(2, 2, 0.5).pvalue, binomtest(3, 3, 0.5).pvalue]
    assert v.p_value == pytest.approx(min(holm(raw)))
    assert v.drop_after_peak == pytest.approx(3 / 200)


def test_verdict_rising_and_flat():
    rising = _curve(200, [(10, 0), (40, 0)])
    v = threshold_verdict([1, 2, 4], rising, n_boot=100)
    assert v.trend == "rising" and v.peak_level == 4
    assert v.p_value == pytest.approx(min(1.0, 2 * binomtest(0, 40, 0.5).pvalue))  # Holm rank 1 of 2
    # peak at the last level, but only 2 images better than level 1: a flat curve
    flat = _curve(200, [(1, 0), (2, 0)])
    v = threshold_verdict([1, 2, 4], flat, n_boot=100)
    assert v.trend == "plateau" and v.p_value > 0.05
    # a significant dip after the peak that recovers by the last level
    dip = np.stack([vec(100, 100), _curve(200, [(40, 0)])[1], vec(100, 100), _curve(200, [(38, 0)])[1]])
    v = threshold_verdict([1, 2, 4, 8], dip, n_boot=100)
    assert v.trend == "rising" and v.peak_level == 2
    assert threshold_verdict([1], vec(3, 1)[None], n_boot=10).trend == "plateau"


def test_pattern_bootstrap_matches_resampling_image_indices():
    """The multinomial-over-patterns draw has the distribution of the textbook index bootstrap."""
    rng = np.random.default_rng(5)
    n = 120
    base = (rng.random(n) < 0.6).astype(float)
    levels = np.stack([base, np.where(rng.random(n) < 0.15, 1.0, base), np.where(rng.random(n) < 0.1, 0.5, base)])
    idx = rng.integers(0, n, size=(6000, n))
    acc = levels[:, idx].sum(axis=2).T  # [resamples, levels]
    top = acc >= acc.max(axis=1, keepdims=True) - 1e-9
    by_index = (top / top.sum(axis=1, keepdims=True)).mean(axis=0)
    ours = peak_distribution(levels, n_boot=6000, seed=2)
    assert ours == pytest.approx(by_index, abs=0.03)

    d = levels[1] - levels[0]
    means = d[idx].mean(axis=1)
    lo, hi = paired_difference_ci(levels[1], levels[0], n_boot=6000, seed=4)
    assert lo == pytest.approx(np.quantile(means, 0.025), abs=0.01)
    assert hi == pytest.approx(np.quantile(means, 0.975), abs=0.01)
