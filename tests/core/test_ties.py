"""The tie policy: a name shared by m classes is one category, worth 1/m to each owner.

Hand-worked arrays for the metrics and ensembles, then end-to-end sweeps whose results must
not change, to the last digit, when the labels file lists its classes in reverse order.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.stats import ensemble as ens
from core.models.openclip import BackboneSpec
from core.stats.metrics import bootstrap_ci, threshold_analysis, top_choice, topk_correct
from core.pipeline.runner import SweepConfig, run_sweep

# three images, four classes; classes 1 and 2 share a column wherever they share a name
S = np.array([
    [0.1, 0.9, 0.9, 0.2],  # classes 1 and 2 tie at the top
    [0.8, 0.8, 0.8, 0.8],  # everything ties
    [0.3, 0.2, 0.7, 0.5],  # no tie
])


def test_topk_credit_hand_worked():
    y = np.array([1, 3, 0])
    # img0: true class 1 shares the top with class 2 -> 1/2; img1: 4 owners -> 1/4; img2: class 0 is third -> 0
    np.testing.assert_array_equal(topk_correct(S, y, 1), [0.5, 0.25, 0.0])
    # top-2: img0 both tied classes fit -> 1; img1: 2 of 4 places -> 1/2; img2: rank 3 -> 0
    np.testing.assert_array_equal(topk_correct(S, y, 2), [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(topk_correct(S, y, 3), [1.0, 0.75, 1.0])
    # a wrong class ranked above a tied pair: h = 1 higher, t = 2 tied -> (2 - 1) / 2
    np.testing.assert_array_equal(topk_correct(np.array([[0.5, 0.5, 0.9]]), np.array([0]), 2), [0.5])
    np.testing.assert_array_equal(topk_correct(S, y, 0), [0, 0, 0])
    np.testing.assert_array_equal(topk_correct(S, y, 99), [1, 1, 1])  # k beyond C: every class is in


def test_topk_credit_is_the_fair_random_tie_break():
    """Brute force: average over every ordering of the tied classes (independent of the formula)."""
    import itertools

    rng = np.random.default_rng(3)
    scores = rng.integers(0, 3, size=(12, 5)).astype(float)  # many exact ties
    y = rng.integers(0, 5, size=12)
    for k in (1, 2, 3):
        expected = []
        for s, t in zip(scores, y):
            hits = [list(sorted(range(5), key=lambda c: (-s[c], perm.index(c)))).index(t) < k
                    for perm in itertools.permutations(range(5))]
            expected.append(np.mean(hits))
        np.testing.assert_allclose(topk_correct(scores, y, k), expected, rtol=0, atol=1e-12)


def test_top_choice_shares_the_top():
    np.testing.assert_array_equal(top_choice(S), [[0, 0.5, 0.5, 0], [0.25] * 4, [0, 0, 1, 0]])


def test_bootstrap_ci_hand_worked_and_against_resampling():
    assert bootstrap_ci(np.ones(10)) == (1.0, 1.0)
    assert bootstrap_ci(np.zeros(10)) == (0.0, 0.0)
    assert all(np.isnan(bootstrap_ci(np.array([]))))
    # tied credits: the count-drawing shortcut has the distribution of index resampling
    credits = np.array([1.0] * 30 + [0.5] * 20 + [1 / 3] * 15 + [0.0] * 35)
    lo, hi = bootstrap_ci(credits, n_boot=20000, seed=1)
    rng = np.random.default_rng(2)
    boot = credits[rng.integers(0, len(credits), size=(20000, len(credits)))].mean(axis=1)
    ref_lo, ref_hi = np.quantile(boot, [0.025, 0.975])
    assert lo == pytest.approx(ref_lo, abs=0.01) and hi == pytest.approx(ref_hi, abs=0.01)
    sp = stats.bootstrap((credits,), np.mean, n_resamples=20000, method="percentile", random_state=4)
    assert lo == pytest.approx(sp.confidence_interval.low, abs=0.01)
    assert hi == pytest.approx(sp.confidence_interval.high, abs=0.01)
    # a 0/1 vector: the interval brackets the accuracy and matches the normal approximation roughly
    x = np.array([1] * 70 + [0] * 30)
    lo, hi = bootstrap_ci(x, n_boot=5000)
    se = np.sqrt(0.7 * 0.3 / 100)
    assert lo == pytest.approx(0.7 - 1.96 * se, abs=0.015) and hi == pytest.approx(0.7 + 1.96 * se, abs=0.015)


def test_threshold_analysis_hand_worked():
    r = threshold_analysis([1, 2, 4, 8], [0.50, 0.60, 0.58, 0.52], tolerance=0.01)
    assert (r["peak_level"], r["trend"]) == (2, "declining")
    assert r["drop_after_peak"] == pytest.approx(0.08) and r["final_top1"] == 0.52
    assert threshold_analysis([1, 2, 4], [0.5, 0.6, 0.595])["trend"] == "plateau"
    assert threshold_analysis([1, 2, 4], [0.5, 0.55, 0.6])["trend"] == "rising"
    assert threshold_analysis([1, 2], [0.5, 0.505])["trend"] == "plateau"  # last is peak but within tolerance
    assert threshold_analysis([1], [0.4])["trend"] == "plateau"
    assert threshold_analysis([1, 2], [np.nan, np.nan])["trend"] == "unknown"
    assert threshold_analysis([], [])["peak_level"] is None
    assert threshold_analysis([1, 2, 4], [np.nan, 0.3, 0.2])["peak_level"] == 2


def test_ensembles_do_not_depend_on_class_order():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 5))
    B = rng.normal(size=(40, 5))
    A[:, 3] = A[:, 1]  # classes 1 and 3 share a name in both backbones
    B[:, 3] = B[:, 1]
    A[:10, 1] = A[:10, 3] = 9.0  # a tied top for ten images
    y = rng.integers(0, 5, size=40)
    perm = np.array([4, 3, 2, 1, 0])  # list the classes the other way round
    inv = np.argsort(perm)
    r1 = ens.fixed_ensembles([A, B], [10.0, 20.0], y)
    r2 = ens.fixed_ensembles([A[:, perm], B[:, perm]], [10.0, 20.0], inv[y])
    assert r1 == pytest.approx(r2, abs=1e-12)
    # ten tied images of true class 1 or 3 earn 1/2 from A, never 1
    c = ens.credit(ens.choices([A])[0], y)
    np.testing.assert_array_equal(c[:10], np.where(np.isin(y[:10], [1, 3]), 0.5, 0.0))


def test_majority_vote_ignores_no_answer():
    """An external system's -1 (no answer) is no vote; it used to be a vote for the last class."""
    scores = [np.array([[0.9, 0.1, 0.0]]), np.array([[0.0, 0.1, 0.9]])]  # backbones vote 0 and 2
    mp = ens.mean_probabilities(scores, [1.0, 1.0])  # class 0 and 2 equally likely
    votes = np.concatenate([ens.choices(scores), ens.predictions_as_choices(np.array([[-1], [-1]]), 3)])
    np.testing.assert_array_equal(ens.majority_vote(votes, tiebreak=mp), [[0.5, 0, 0.5]])
    r = ens.fixed_ensembles(scores, [1.0, 1.0], np.array([2]), extra_preds=np.array([[-1], [-1]]))
    assert r["majority_vote"] == pytest.approx(0.5)  # old code: two votes for class 2 -> 1.0
    r = ens.fixed_ensembles([], [], np.array([2, 0]), extra_preds=np.array([[-1, 0], [2, -1]]))
    assert r["majority_vote"] == pytest.approx(1.0) and r["oracle"] == pytest.approx(1.0)


def test_pairwise_disagreement_with_ties():
    a = np.array([[0.5, 0.5, 0.0]])  # tied between classes 0 and 1
    b = np.array([[1.0, 0.0, 0.0]])
    rows = ens.pairwise_disagreement(ens.choices([a, b]), np.array([0]), ["a", "b"])
    assert rows[0]["disagreement"] == pytest.approx(0.5)
    assert rows[0]["only_b_right"] == pytest.approx(0.5) and rows[0]["only_a_right"] == 0.0


# --- end to end: a labels file with shared names, listed forwards and backwards -------------------

SHARED = {
    "red square": ["red square", "green circle", "shape"],
    "green circle": ["green circle", "red square", "shape"],  # same level-2 set as red square (pooled tie)
    "blue triangle": ["blue triangle", "shape", "navy wedge"],
    "yellow bar": ["yellow bar", "shape"],
}


def _labels(path, classes):
    path.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c in classes for n in SHARED[c]), encoding="utf-8")
    return path


def _run(tiny_model, image_folder, labels, out, mode):
    cfg, ck = tiny_model
    spec = BackboneSpec(model=cfg, checkpoint=ck, device="cpu")
    res = run_sweep(SweepConfig(dataset=str(image_folder), out=str(out), backbones=[spec], labels=str(labels),
                                templates=["a photo of a {}."], levels=[1, 2, 3], mode=mode, num_workers=0,
                                bootstrap=200, orderings=2, save_logits=False))
    assert res.status == "completed"
    return out


def _sorted_csv(path, keys, drop=()):
    df = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=list(drop))
    return df.sort_values(keys).reset_index(drop=True)


@pytest.mark.parametrize("mode", ["flat", "pooled"])
def test_reversed_class_order_gives_identical_results(tiny_model, image_folder, tmp_path, mode):
    fwd = _run(tiny_model, image_folder, _labels(tmp_path / "fwd.csv", list(SHARED)), tmp_path / "fwd", mode)
    rev = _run(tiny_model, image_folder, _labels(tmp_path / "rev.csv", list(SHARED)[::-1]), tmp_path / "rev", mode)
    pd.testing.assert_frame_equal(_sorted_csv(fwd / "levels.csv", ["ordering", "level"], ["seconds"]),
                                  _sorted_csv(rev / "levels.csv", ["ordering", "level"], ["seconds"]))
    pd.testing.assert_frame_equal(_sorted_csv(fwd / "per_class.csv", ["ordering", "level", "class"]),
                                  _sorted_csv(rev / "per_class.csv", ["ordering", "level", "class"]))
    pd.testing.assert_frame_equal(_sorted_csv(fwd / "predictions.csv", ["ordering", "level", "image"]),
                                  _sorted_csv(rev / "predictions.csv", ["ordering", "level", "image"]))

    levels = pd.read_csv(fwd / "levels.csv")
    pred = pd.read_csv(fwd / "predictions.csv", keep_default_na=False)
    assert levels.loc[levels["level"] == 1, "n_tied"].eq(0).all()  # level 1: every class its own name
    assert levels["n_tied"].sum() > 0
    # each credit recomputed from the owners listed in the same row
    owners = pred["predicted_classes"].str.split("|")
    expected = [(t in o) / len(o) for t, o in zip(pred["true_class"], owners)]
    np.testing.assert_allclose(pred["credit"], expected, atol=1e-6)
    assert (pred["n_owners"] == owners.map(len)).all()
    assert (pred["correct"] == (pred["credit"] == 1).astype(int)).all()
    assert (pred["predicted_class"] == owners.map(min)).all()  # first owner by name, never by file order
    g = pred.groupby(["ordering", "level"])
    merged = levels.set_index(["ordering", "level"])
    np.testing.assert_allclose(merged["top1"], g["credit"].mean().loc[merged.index], atol=1e-6)
    np.testing.assert_array_equal(merged["n_tied"], (g["n_owners"].apply(lambda s: (s > 1).sum())).loc[merged.index])
    if mode == "flat":
        # level 3: "shape" is one category owned by all four classes
        assert merged.loc[(0, 3), "n_categories"] == len({n for v in SHARED.values() for n in v[:3]}) == 6  # not 10
    else:
        assert merged.loc[(0, 2), "n_categories"] == 3  # red square and green circle have one name set


def test_reversed_class_order_gives_identical_ensembles(tmp_path):
    """Backbone tables, pairs, fixed and adaptive (k-shot) ensembles and an external system, with
    both bundled demo backbones on a small demo set whose labels share names on purpose."""
    from core.demo.data import write_demo_dataset

    root = write_demo_dataset(tmp_path / "demo", n_per_class=6)
    labels = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    classes = list(dict.fromkeys(labels["class"]))
    images = sorted(p.relative_to(root / "images").as_posix() for p in (root / "images").rglob("*.png"))
    shared = labels.groupby("synonym")["class"].nunique().idxmax()  # a name listed under several classes
    ext = tmp_path / "vlm.csv"
    ext.write_text("image,predicted_class\n" + "".join(f"{im},{[shared, im.split('/')[0], classes[0]][i % 3]}\n"
                                                       for i, im in enumerate(images)))

    def run(order, out):
        f = tmp_path / f"{out.name}.csv"
        pd.concat([labels[labels["class"] == c] for c in order]).to_csv(f, index=False)
        specs = [BackboneSpec(model="demo-vit", device="cpu"), BackboneSpec(model="demo-resnet", device="cpu")]
        res = run_sweep(SweepConfig(dataset=str(root / "images"), out=str(out), backbones=specs, num_workers=0,
                                    labels=str(f), templates="plain", levels=[1, 8], bootstrap=50,
                                    ensemble_shots=[1, 2], ensemble_splits=2, external_predictions=[f"vlm={ext}"],
                                    save_logits=False, cache_dir=str(tmp_path / "cache")))
        assert res.status == "completed"
        return out

    fwd, rev = run(classes, tmp_path / "fwd"), run(classes[::-1], tmp_path / "rev")
    for name, keys in (("backbones.csv", ["level", "backbone"]), ("pairs.csv", ["level", "a", "b"]),
                       ("ensembles.csv", ["level", "method", "k", "split"]), ("levels.csv", ["backbone", "level"]),
                       ("per_class.csv", ["backbone", "level", "class"])):
        drop = ["seconds"] if name == "levels.csv" else []
        pd.testing.assert_frame_equal(_sorted_csv(fwd / name, keys, drop), _sorted_csv(rev / name, keys, drop))
    ensembles = pd.read_csv(fwd / "ensembles.csv")
    assert {"global", "nlc", "majority_vote", "oracle"} <= set(ensembles["method"])
    assert pd.read_csv(fwd / "levels.csv")["n_tied"].sum() > 0


def test_confusion_matrix_counts_and_split_ties_like_pandas():
    from core.stats.metrics import confusion_matrix

    rng = np.random.default_rng(3)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    want = pd.crosstab(pd.Categorical(y, categories=range(4)), pd.Categorical(p, categories=range(4)),
                       dropna=False).to_numpy()
    m = confusion_matrix(y, p, 4)
    assert m.dtype == np.int64 and (m == want).all()
    # a tie between classes 1 and 2 for an image of class 0 counts half in each cell
    w = confusion_matrix([0, 0, 0, 3], [1, 2, 0, 3], 4, weights=np.array([0.5, 0.5, 1.0, 1.0]))
    assert w.tolist() == [[1.0, 0.5, 0.5, 0.0], [0.0] * 4, [0.0] * 4, [0.0, 0.0, 0.0, 1.0]]
