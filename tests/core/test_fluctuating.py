"""The fourth verdict, ``fluctuating``, on hand-built per-image credit matrices whose McNemar
outcomes are known, checked against scipy.stats.binomtest and a Holm adjustment done here."""

import numpy as np
import pytest
from scipy.stats import binomtest

from core.stats.significance import SETTLED, TRENDS, CurveBook, fluctuation, threshold_verdict

N = 200


def level(right: list[range]) -> np.ndarray:
    """A credit vector over N images: 1 on the given index ranges."""
    c = np.zeros(N)
    for r in right:
        c[r] = 1
    return c


def p(k: int, n: int) -> float:
    """Exact two-sided McNemar p of n discordant images, k of them one way."""
    return binomtest(k, n, 0.5).pvalue


def holm_by_hand(ps: list[float]) -> list[float]:
    order = np.argsort(ps, kind="stable")
    out, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        out[i] = running
    return out


def test_dip_and_recovery_is_fluctuating():
    # 100 right; 30 of them break; they come back with 2 more: fall 30/30, rise 32/32, first vs last 2/2
    c = np.stack([level([range(0, 100)]), level([range(30, 100)]), level([range(0, 102)])])
    steps = holm_by_hand([p(0, 30), p(0, 32)])
    f = fluctuation(c)
    assert f is not None
    assert f["p_fall"] == pytest.approx(steps[0]) and f["p_rise"] == pytest.approx(steps[1])
    assert f["p_first_last"] == pytest.approx(p(0, 2)) and f["p_first_last"] > 0.05
    v = threshold_verdict([1, 2, 4], c, n_boot=100)
    assert v.trend == "fluctuating" and v.peak_level == 4
    assert v.p_value == pytest.approx(max(steps))
    assert "consecutive levels" in v.test
    assert v.trend in TRENDS and v.trend in SETTLED


def test_rise_then_fall_stays_declining():
    # the threshold the studies look for: +30, then 25 of them lost (last vs first 5/5: p = 0.0625)
    c = np.stack([level([range(0, 100)]), level([range(0, 130)]), level([range(0, 105)])])
    assert fluctuation(c) is not None  # the fluctuation test alone holds ...
    v = threshold_verdict([1, 2, 4], c, n_boot=100)
    assert v.trend == "declining"  # ... but declining takes precedence
    assert v.p_value == pytest.approx(p(0, 25))


def test_not_fluctuating_when_the_last_level_differs_from_the_first():
    # fall 40, then rise 70: both significant, but last vs first is 30/30
    c = np.stack([level([range(0, 100)]), level([range(40, 100)]), level([range(0, 130)])])
    assert p(0, 30) < 0.05
    assert fluctuation(c) is None
    assert threshold_verdict([1, 2, 4], c, n_boot=100).trend == "rising"


def test_holm_within_the_curve_decides():
    # fall of 6/6 (raw p = 0.031), rise of 9/9, fall of 2/2: Holm over three steps leaves the fall at 0.0625
    c = np.stack([level([range(0, 100)]), level([range(6, 100)]), level([range(0, 103)]), level([range(0, 101)])])
    raw = [p(0, 6), p(0, 9), p(0, 2)]
    assert raw[0] < 0.05 and raw[1] < 0.05
    adjusted = holm_by_hand(raw)
    assert adjusted[0] > 0.05
    assert fluctuation(c) is None
    assert threshold_verdict([1, 2, 4, 8], c, n_boot=100).trend == "plateau"
    # the same curve at alpha = 0.1: both steps survive Holm and it fluctuates
    v = threshold_verdict([1, 2, 4, 8], c, alpha=0.1, n_boot=100)
    assert v.trend == "fluctuating" and v.p_value == pytest.approx(max(adjusted[0], adjusted[1]))


def test_two_levels_never_fluctuate_and_ties_enter_as_expected_credit():
    c = np.stack([level([range(0, 100)]), level([range(40, 100)])])
    assert fluctuation(c) is None
    # a half credit (a two-way tie) on 60 images is 30 expected discordant images each way
    half = level([range(0, 100)])
    half[100:160] = 0.5
    c = np.stack([level([range(0, 100)]), half, level([range(0, 101)])])
    f = fluctuation(c)
    # +30 then -29.5 (rounded to 30) in expected credit, last vs first 1 image: Holm doubles the smaller p
    assert f["p_rise"] == pytest.approx(holm_by_hand([p(0, 30), p(0, 30)])[0])
    assert f["p_first_last"] == pytest.approx(1.0)
    # it rose to a peak and fell back significantly below it: declining keeps precedence
    assert threshold_verdict([1, 2, 4], c, n_boot=50).trend == "declining"


def test_threshold_rows_carry_the_new_verdict():
    book = CurveBook([1, 2, 4], n_boot=50)
    for row in (level([range(0, 100)]), level([range(30, 100)]), level([range(0, 102)])):
        book.add(("A", "synonyms", 0), row)
    rows, summary = book.threshold_rows("A")
    assert rows[0]["trend"] == "fluctuating" and summary["synonyms"]["trend"] == "fluctuating"
