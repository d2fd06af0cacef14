"""Ensembles and frequency analysis against hand-computed values and independent libraries."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from core.stats import ensemble as ens
from core.stats.frequency import frequency_table, load_class_frequency
from core.util.errors import InputError

A = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]])
B = np.array([[0.1, 0.8, 0.1], [0.1, 0.2, 0.7], [0.2, 0.3, 0.5]])
C = np.array([[0.6, 0.3, 0.1], [0.3, 0.2, 0.5], [0.0, 0.1, 0.9]])
Y = np.array([1, 1, 2])


def test_fixed_ensembles_hand_computed():
    # predictions: A = [0, 1, 0], B = [1, 2, 2], C = [0, 2, 2]
    assert ens.choices([A, B, C]).argmax(axis=2).tolist() == [[0, 1, 0], [1, 2, 2], [0, 2, 2]]
    r = ens.fixed_ensembles([A, B, C], [1.0, 1.0, 1.0], Y)
    assert r["best_single"] == pytest.approx(2 / 3)  # B
    assert r["oracle"] == pytest.approx(1.0)  # img0: B, img1: A, img2: B and C
    assert r["oracle_gain"] == pytest.approx(1 / 3)
    # votes: img0 {0,1,0} -> 0, img1 {1,2,2} -> 2, img2 {0,2,2} -> 2
    assert r["majority_vote"] == pytest.approx(1 / 3)
    # summed scores: img0 [1.6,1.2,.2] -> 0, img1 [.6,1.1,1.3] -> 2, img2 [.7,.8,1.5] -> 2
    assert r["mean_logits"] == pytest.approx(1 / 3)


def test_mean_probabilities_matches_scipy_softmax():
    scales = [10.0, 3.0, 50.0]
    expected = (softmax(A * 10, axis=1) + softmax(B * 3, axis=1) + softmax(C * 50, axis=1)) / 3
    np.testing.assert_allclose(ens.mean_probabilities([A, B, C], scales), expected, rtol=1e-10)
    r = ens.fixed_ensembles([A, B, C], scales, Y)
    assert r["mean_probs"] == pytest.approx(float((expected.argmax(1) == Y).mean()))


def test_vote_tie_goes_to_higher_probability():
    votes = ens.predictions_as_choices(np.array([[0], [1]]), 2)
    assert ens.majority_vote(votes, tiebreak=np.array([[0.2, 0.8]])).tolist() == [[0.0, 1.0]]
    assert ens.majority_vote(votes, tiebreak=np.array([[0.7, 0.3]])).tolist() == [[1.0, 0.0]]
    assert ens.majority_vote(votes).tolist() == [[0.5, 0.5]]  # nothing decides: shared fairly


def test_external_predictions_join_oracle_and_vote():
    ext = np.array([[2, 0, 0]])  # wrong everywhere
    r = ens.fixed_ensembles([A, B], [1.0, 1.0], Y, extra_preds=ext)
    assert r["oracle"] == pytest.approx(1.0)
    assert r["best_single"] == pytest.approx(2 / 3)


def test_pairwise_disagreement():
    rows = ens.pairwise_disagreement(ens.choices([A, B]), Y, ["a", "b"])
    assert rows == [{"a": "a", "b": "b", "disagreement": 1.0, "only_a_right": pytest.approx(1 / 3),
                     "only_b_right": pytest.approx(2 / 3), "both_wrong": 0.0}]


def test_k_shot_split_is_disjoint_and_per_class():
    y = np.repeat(np.arange(4), 6)
    for k in (1, 2, 4):
        tr, ev = ens.k_shot_split(y, k, seed=3)
        assert set(tr).isdisjoint(ev) and len(tr) + len(ev) == len(y)
        assert np.bincount(y[tr]).tolist() == [k] * 4
    a, _ = ens.k_shot_split(y, 2, seed=3)
    b, _ = ens.k_shot_split(y, 2, seed=3)
    assert a.tolist() == b.tolist()


def _synthetic(n_per_class=20, n_classes=5, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    good = rng.normal(0, 0.05, (len(y), n_classes))
    good[np.arange(len(y)), y] += 0.12  # informative backbone
    noise = rng.normal(0, 0.3, (len(y), n_classes))  # a loud, useless backbone
    feats = rng.normal(size=(len(y), 8))
    return y, [good, noise], feats


def test_adaptive_never_fits_on_evaluation_images(monkeypatch):
    y, scores, feats = _synthetic()
    seen = []
    original = ens.AdaptiveEnsemble.fit

    def spy(self, s, yy, scales, f=None):
        seen.append((self.method, [x.copy() for x in s], yy.copy(), None if f is None else f.copy()))
        return original(self, s, yy, scales, f)

    monkeypatch.setattr(ens.AdaptiveEnsemble, "fit", spy)
    rows = ens.adaptive_rows(scores, [1.0, 1.0], y, feats, shots=[1, 2], n_splits=2, seed=0,
                             settings=ens.FitSettings(steps=20))
    assert len(seen) == 2 * 2 * 2  # shots x splits x methods
    row_of = {tuple(np.round(r, 12)): i for i, r in enumerate(scores[0])}
    for (method, s, yy, f), row in zip(seen, [r for r in rows if r["method"] in ("global", "nlc")]):
        tr, ev = ens.k_shot_split(y, row["k"], seed=17 * row["k"] + row["split"])
        fitted = {row_of[tuple(np.round(r, 12))] for r in s[0]}
        assert fitted == set(tr.tolist())
        assert fitted.isdisjoint(ev.tolist())
        assert len(s[0]) == row["n_fit"] == len(y) - row["n_eval"]
        if f is not None:
            np.testing.assert_array_equal(f, feats[tr])


def test_global_weighting_learns_to_ignore_a_noisy_backbone():
    y, scores, feats = _synthetic(seed=1)
    tr, ev = ens.k_shot_split(y, 4, seed=0)
    model = ens.AdaptiveEnsemble("global").fit([s[tr] for s in scores], y[tr], [100.0, 100.0])
    t = model.temperatures(1)[0]
    assert t[0] > t[1]  # the informative backbone gets the larger temperature
    fitted = (model.logits([s[ev] for s in scores]).argmax(1) == y[ev]).mean()
    plain = (ens.mean_logits([s[ev] for s in scores], [100.0, 100.0]).argmax(1) == y[ev]).mean()
    assert fitted > plain


def test_frequency_correlation_matches_pandas(tmp_path):
    rng = np.random.default_rng(0)
    classes = [f"c{i}" for i in range(12)]
    freq = {c: float(f) for c, f in zip(classes, rng.integers(1, 10_000, 12))}
    per_class = pd.DataFrame({"backbone": "m", "level": 1, "class": classes, "n_images": 5,
                              "recall": rng.uniform(0, 1, 12)})
    table, summary = frequency_table(per_class, freq)
    expected = per_class["recall"].corr(per_class["class"].map(freq), method="spearman")
    assert summary["spearman_rho"].iloc[0] == pytest.approx(expected)
    np.testing.assert_allclose(table["log_frequency"], np.log10(table["frequency"] + 1))

    p = tmp_path / "freq.csv"
    p.write_text("class,frequency\nc0,10\nc1,abc\n")
    with pytest.raises(InputError) as e:
        load_class_frequency(p)
    assert e.value.line == 3 and e.value.field == "frequency"
