"""flips.csv, `semscale flips` and the drill-down selections, against independent pandas/numpy
computations on a real two-backbone sweep (tiny random-initialised open_clip models)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.results.drilldown import ClassAtLevel, ConfusionCell, LevelFlips, RunImages, SynergyImages
from core.stats.flips import FLIP_COLUMNS, compute_flips
from core.results.runs import load_run


@pytest.fixture
def run_dir(two_backbone_run):
    return two_backbone_run


def independent_flips(preds: pd.DataFrame, backbone: str, lo: int, hi: int) -> pd.DataFrame:
    """Flips recomputed with plain pandas: the same image's credit differs between the levels."""
    p = preds[preds.backbone == backbone].assign(correct=preds["credit"])
    a = p[p.level == lo].set_index("image")
    b = p[p.level == hi].set_index("image")
    changed = [im for im in b.index if float(a.at[im, "correct"]) != float(b.at[im, "correct"])]
    return pd.DataFrame({
        "image": changed, "backbone": backbone, "from_level": lo, "to_level": hi,
        "correct_from": [a.at[i, "correct"] for i in changed], "correct_to": [b.at[i, "correct"] for i in changed],
        "label_from": [a.at[i, "predicted_label"] for i in changed], "label_to": [b.at[i, "predicted_label"] for i in changed],
    })


def test_flips_csv_equals_what_predictions_imply(run_dir):
    preds = pd.read_csv(run_dir / "predictions.csv")
    flips = pd.read_csv(run_dir / "flips.csv")
    assert list(flips.columns[: len(FLIP_COLUMNS)]) == FLIP_COLUMNS
    expect = pd.concat([independent_flips(preds, b, lo, hi) for b in ("A", "B") for lo, hi in ((1, 2), (2, 4))],
                       ignore_index=True)
    assert len(expect) > 0, "the tiny models should change their mind on some images"
    key = ["backbone", "from_level", "to_level", "image"]
    got = flips[FLIP_COLUMNS].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expect.sort_values(key).reset_index(drop=True), check_dtype=False)
    # the extra columns agree with predictions.csv too
    to = preds.set_index(["backbone", "level", "image"])
    for r in flips.itertuples():
        assert r.true_class == r.image.split("/")[0]
        assert r.class_to == to.at[(r.backbone, r.to_level, r.image), "predicted_class"]
        assert r.class_from == to.at[(r.backbone, r.from_level, r.image), "predicted_class"]
    # the run loader returns the same frame
    run = load_run(run_dir)
    pd.testing.assert_frame_equal(run.flips, flips)


def test_older_run_without_flips_csv_gets_them_from_predictions(run_dir, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    (old / "flips.csv").unlink()
    key = ["backbone", "from_level", "to_level", "image"]
    a = load_run(old).flips.sort_values(key).reset_index(drop=True)
    b = pd.read_csv(run_dir / "flips.csv").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_flips_command_any_pair_of_levels(run_dir, tmp_path, capsys):
    preds = pd.read_csv(run_dir / "predictions.csv")
    out = tmp_path / "f.csv"
    assert main(["flips", str(run_dir), "--backbone", "A", "--from", "1", "--to", "4", "--out", str(out)]) == 0
    got = pd.read_csv(out)[FLIP_COLUMNS]
    expect = independent_flips(preds, "A", 1, 4)
    assert len(expect) > 0
    pd.testing.assert_frame_equal(got.sort_values("image").reset_index(drop=True),
                                  expect.sort_values("image").reset_index(drop=True), check_dtype=False)
    err = capsys.readouterr().err
    n_gained = int((expect.correct_to > expect.correct_from).sum())
    assert f"{len(expect)} flips: {n_gained} gained, {len(expect) - n_gained} lost" in err

    # one class, printed to stdout; reversed levels are allowed
    cls = expect.image.iloc[0].split("/")[0]
    assert main(["flips", str(run_dir), "--backbone", "A", "--from", "4", "--to", "1", "--class", cls]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    rev = independent_flips(preds[preds.true_class == cls], "A", 4, 1)
    assert sorted(printed.image) == sorted(rev.image) and len(rev) > 0
    assert set(printed.from_level) == {4} and set(printed.to_level) == {1}


@pytest.mark.parametrize("argv, words", [
    (["--from", "3", "--to", "4"], "level 3 is not in this run"),
    (["--from", "1"], "give both levels"),
    (["--backbone", "C"], "no backbone 'C'"),
    (["--class", "purple hexagon"], "no images of class 'purple hexagon'"),
])
def test_flips_command_bad_filters_name_the_field(run_dir, capsys, argv, words):
    assert main(["flips", str(run_dir), *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and "field" in err


def test_flips_command_on_a_folder_that_is_no_run(tmp_path, capsys):
    assert main(["flips", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


# ---------------------------------------------------------------- drill-down selections


def test_confusion_cell_and_class_selections(run_dir):
    run = RunImages.from_dir(run_dir)
    preds = pd.read_csv(run_dir / "predictions.csv")
    p = preds[(preds.backbone == "B") & (preds.level == 2)]
    # the fullest off-diagonal cell
    pairs = p[p.true_class != p.predicted_class].groupby(["true_class", "predicted_class"]).size()
    (t, q), n = pairs.idxmax(), pairs.max()
    rows = ConfusionCell("B", 2, t, q).rows(run)
    expect = p[(p.true_class == t) & (p.predicted_class == q)]
    assert sorted(rows.image) == sorted(expect.image) and len(rows) == n
    assert set(rows.group) == {"wrong"}
    np.testing.assert_allclose(rows.set_index("image").loc[expect.image, "score"], expect.score)
    assert list(rows.set_index("image").loc[expect.image, "predicted_label"]) == list(expect.predicted_label)

    rows = ClassAtLevel("A", 4, "blue triangle").rows(run)
    expect = preds[(preds.backbone == "A") & (preds.level == 4) & (preds.true_class == "blue triangle")]
    assert sorted(rows.image) == sorted(expect.image) and len(rows) == 4
    marks = rows.set_index("image")["group"]
    for r in expect.itertuples():
        assert marks[r.image] == ("correct" if r.correct == 1 else "wrong")


def test_level_flips_selection_marks_gained_and_lost(run_dir):
    run = RunImages.from_dir(run_dir)
    preds = pd.read_csv(run_dir / "predictions.csv")
    expect = independent_flips(preds, "A", 1, 2)
    rows = LevelFlips("A", 1, 2).rows(run).set_index("image")
    assert sorted(rows.index) == sorted(expect.image)
    for r in expect.itertuples():
        assert rows.at[r.image, "group"] == ("gained" if r.correct_to > r.correct_from else "lost")
        assert rows.at[r.image, "predicted_label"] == r.label_to
        assert rows.at[r.image, "detail"].startswith(f"{r.label_from} (")


def test_synergy_selections_against_numpy(run_dir):
    run = RunImages.from_dir(run_dir)
    preds = pd.read_csv(run_dir / "predictions.csv")
    p = preds[preds.level == 1].pivot(index="image", columns="backbone", values="correct")
    only = p[(p.A + p.B) == 1]
    assert len(only) > 0
    rows = SynergyImages(1, "only_one").rows(run).set_index("image")
    assert sorted(rows.index) == sorted(only.index)
    for im, r in only.iterrows():
        assert rows.at[im, "group"] == ("only A right" if r.A == 1 else "only B right")
        assert rows.at[im, "backbone"] == ("A" if r.A == 1 else "B")

    # the mean-of-logits ensemble, recomputed by hand from the saved class scores
    ids = pd.read_csv(run_dir / "logits" / "A" / "images.csv")
    classes = list(run.meta["config"]["labels_resolved"])
    y = ids.true_class.map({c: i for i, c in enumerate(classes)}).to_numpy()
    scale = {b: run.meta["summary"]["backbones"][b]["logit_scale"] for b in "AB"}
    logits = sum(scale[b] * np.load(run_dir / "logits" / b / "level_1.npy").astype(np.float32) for b in "AB") / 2
    ens_right = logits.argmax(1) == y
    oracle = p.loc[ids.image, ["A", "B"]].max(axis=1).to_numpy() == 1
    expect = sorted(ids.image[oracle & ~ens_right])
    assert len(expect) > 0
    rows = SynergyImages(1, "oracle_not_ensemble").rows(run)
    assert sorted(rows.image) == expect
    # and the recomputed ensemble scores what the sweep wrote to ensembles.csv
    en = pd.read_csv(run_dir / "ensembles.csv")
    top1 = en[(en.level == 1) & (en.method == "mean_logits")].top1.iloc[0]
    assert abs(ens_right.mean() - top1) <= 1 / len(y) + 1e-9


def test_top_classes_come_from_the_saved_scores(run_dir):
    run = RunImages.from_dir(run_dir)
    ids = pd.read_csv(run_dir / "logits" / "B" / "images.csv").image.tolist()
    s = np.load(run_dir / "logits" / "B" / "level_4.npy").astype(np.float32)[ids.index(ids[5])]
    classes = list(run.meta["config"]["labels_resolved"])
    top = run.top_classes("B", 4, ids[5], k=3)
    assert [c for c, _ in top] == [classes[i] for i in np.argsort(-s)[:3]]
    np.testing.assert_allclose([v for _, v in top], np.sort(s)[::-1][:3])
    preds = pd.read_csv(run_dir / "predictions.csv")
    row = preds[(preds.backbone == "B") & (preds.level == 4) & (preds.image == ids[5])].iloc[0]
    assert top[0][0] == row.predicted_class


def test_compute_flips_keeps_control_curves_apart():
    """With a ``names`` column (control curves), flips never cross from one kind to another."""
    base = dict(true_class="dog", predicted_class="dog", predicted_label="dog", ordering=0, backbone="A", score=0.3)
    rows = [{**base, "image": "x", "level": 1, "correct": 1, "names": "synonyms"},
            {**base, "image": "x", "level": 2, "correct": 0, "names": "synonyms", "predicted_class": "cat",
             "predicted_label": "orb"},
            {**base, "image": "x", "level": 1, "correct": 1, "names": "random"},
            {**base, "image": "x", "level": 2, "correct": 1, "names": "random"},
            {**base, "image": "y", "level": 1, "correct": 0.5, "names": "random"},
            {**base, "image": "y", "level": 2, "correct": 1, "names": "random"}]
    f = compute_flips(pd.DataFrame(rows))
    assert list(f.columns[:9]) == FLIP_COLUMNS + ["names"]
    assert f[["image", "names", "label_from", "label_to", "correct_from", "correct_to"]].values.tolist() == [
        ["x", "synonyms", "dog", "orb", 1, 0], ["y", "random", "dog", "dog", 0.5, 1]]


def test_a_change_of_tie_credit_is_a_flip_even_when_correct_stays_0():
    """``credit`` (1/m under an m-way tie) decides: 0.5 -> 0 is lost although ``correct`` is 0 at both levels."""
    base = dict(true_class="ball", ordering=0, backbone="A", score=0.3, n_owners=1)
    rows = [{**base, "image": "b1", "level": 1, "correct": 0, "credit": 0.5, "predicted_label": "orb",
             "predicted_class": "ball", "n_owners": 2},
            {**base, "image": "b1", "level": 2, "correct": 0, "credit": 0.0, "predicted_label": "crescent",
             "predicted_class": "moon"},
            {**base, "image": "b2", "level": 1, "correct": 1, "credit": 1.0, "predicted_label": "ball",
             "predicted_class": "ball"},
            {**base, "image": "b2", "level": 2, "correct": 1, "credit": 1.0, "predicted_label": "sphere",
             "predicted_class": "ball"}]
    f = compute_flips(pd.DataFrame(rows))
    assert f[["image", "correct_from", "correct_to", "label_from", "label_to"]].values.tolist() == [
        ["b1", 0.5, 0.0, "orb", "crescent"]]


def test_flips_csv_with_control_curves_keeps_each_names_kind(tiny_model, image_folder, labels_csv, tmp_path):
    """A sweep with a random-letters control: flips.csv has ``names`` and equals, kind by kind,
    what predictions.csv implies."""
    from core.models.openclip import BackboneSpec
    from core.pipeline.runner import SweepConfig, run_sweep

    cfg, ck = tiny_model
    out = tmp_path / "run"
    config = SweepConfig(dataset=str(image_folder), out=str(out), labels=str(labels_csv), templates="plain",
                         backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu", label="A")], levels=[1, 2, 4],
                         controls=["random-chars"], num_workers=0, bootstrap=20, ensemble_shots=[])
    assert run_sweep(config).status == "completed"
    preds = pd.read_csv(out / "predictions.csv")
    flips = pd.read_csv(out / "flips.csv")
    assert list(flips.columns[:9]) == FLIP_COLUMNS + ["names"]
    assert set(preds.names) == {"synonyms", "random-chars"}
    key = ["from_level", "to_level", "image"]
    total = 0
    for kind in ("synonyms", "random-chars"):
        p = preds[preds.names == kind]
        expect = pd.concat([independent_flips(p, "A", lo, hi) for lo, hi in ((1, 2), (2, 4))], ignore_index=True)
        got = flips[flips.names == kind][FLIP_COLUMNS]
        pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                      expect.sort_values(key).reset_index(drop=True), check_dtype=False)
        total += len(expect)
    assert total > 0 and len(flips) == total
    # the command picks one curve
    assert main(["flips", str(out), "--names", "random-chars", "--from", "1", "--to", "4", "--out", str(tmp_path / "c.csv")]) == 0
    got = pd.read_csv(tmp_path / "c.csv")
    expect = independent_flips(preds[preds.names == "random-chars"], "A", 1, 4)
    assert sorted(got.image) == sorted(expect.image) and set(got.names) <= {"random-chars"}
    assert main(["flips", str(out), "--names", "random-words"]) == 2


def test_ensemble_selection_without_saved_logits_says_so(run_dir, tmp_path):
    import shutil

    from core.util.errors import InputError

    d = tmp_path / "nologits"
    shutil.copytree(run_dir, d)
    shutil.rmtree(d / "logits")
    run = RunImages.from_dir(d)
    with pytest.raises(InputError, match="no saved class scores for A, B at level 1"):
        SynergyImages(1, "oracle_not_ensemble").rows(run)
    assert run.top_classes("A", 1, "red square/000.png") == []
    assert len(SynergyImages(1, "only_one").rows(run)) > 0  # needs predictions.csv only


def test_confusion_cell_holds_tied_predictions_of_every_owner(tmp_path):
    """A prediction tied between ball and moon (a shared name) is in both cells, as the matrix splits it."""
    rows = [  # image, true, predicted (first owner by name), owners, credit
        ("b1", "ball", "moon", "moon", 0.0),
        ("b2", "ball", "ball", "ball|moon", 0.5),
        ("b3", "ball", "ball", "ball", 1.0),
        ("b4", "ball", "arrow", "arrow|moon", 0.0),
    ]
    p = pd.DataFrame([{"image": i, "true_class": t, "predicted_class": q, "predicted_classes": o, "credit": c,
                       "correct": int(c == 1), "n_owners": o.count("|") + 1, "predicted_label": "orb", "level": 8,
                       "ordering": 0, "backbone": "A", "score": 0.5} for i, t, q, o, c in rows])
    run = RunImages(tmp_path, p, ["arrow", "ball", "moon"])
    moon = ConfusionCell("A", 8, "ball", "moon").rows(run)
    assert sorted(moon.image) == ["b1", "b2", "b4"]
    assert dict(zip(moon.image, moon.group)) == {"b1": "wrong", "b2": "tied", "b4": "wrong"}
    assert sorted(ConfusionCell("A", 8, "ball", "arrow").rows(run).image) == ["b4"]
    assert sorted(ConfusionCell("A", 8, "ball", "ball").rows(run).image) == ["b2", "b3"]
