"""Sweeps with control curves and paired tests, checked against predictions.csv and scipy."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from core.labels.controls import normalise
from core.results.runs import load_run
from core.pipeline.runner import run_sweep
from tests.conftest import CLASSES
from tests.core.test_sweep import encoder_counter, make_config  # noqa: F401 - fixture

KINDS = ["synonyms", "random-words", "random-chars"]


def holm_by_hand(p):
    """Holm's step-down procedure written out as in the textbook, for comparison."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    adj, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adj[i] = running
    return adj


def discordant(pred, backbone, kind, ordering, a, b):
    """(right only at level a, right only at level b) from predictions.csv rows."""
    d = pred[(pred["backbone"] == backbone) & (pred["names"] == kind) & (pred["ordering"] == ordering)]
    wide = d.pivot(index="image", columns="level", values="correct")
    return int(((wide[a] == 1) & (wide[b] == 0)).sum()), int(((wide[a] == 0) & (wide[b] == 1)).sum())


def mcnemar_p(n_a, n_b):
    return 1.0 if n_a + n_b == 0 else binomtest(n_a, n_a + n_b, 0.5).pvalue


@pytest.mark.parametrize("mode", ["flat", "pooled"])
def test_controls_p_values_and_effects_follow_predictions(tiny_model, image_folder, labels_csv, tmp_path, mode,
                                                          encoder_counter):  # noqa: F811
    out = tmp_path / "run"
    res = run_sweep(make_config(tiny_model, image_folder, labels_csv, out, levels=[1, 2, 4], mode=mode,
                                controls=["random-words", "random-chars"], seed=3))
    assert res.status == "completed"
    assert encoder_counter["images"] == 16  # three names kinds, still one encoding per image
    run = load_run(out)
    lv, pred, pc = run.levels, run.predictions, run.per_class
    assert list(dict.fromkeys(lv["names"])) == KINDS
    assert set(pred["names"]) == set(pc["names"]) == set(KINDS)
    assert len(pred) == 3 * 3 * 16

    # level 1 is the canonical names only: identical for every kind, image by image
    first = pred[pred["level"] == 1].pivot(index="image", columns="names", values="predicted_label")
    assert (first["random-words"] == first["synonyms"]).all() and (first["random-chars"] == first["synonyms"]).all()
    l1 = lv[lv["level"] == 1].set_index("names")
    assert l1["top1"].nunique() == 1 and l1["n_categories"].nunique() == 1

    # the same name counts per class at every level
    for k in (2, 4):
        counts = pc[pc["level"] == k].pivot(index="class", columns="names", values="n_names")
        assert (counts["random-words"] == counts["synonyms"]).all() and (counts["random-chars"] == counts["synonyms"]).all()

    # every p-value against scipy's binomial test on discordant counts recomputed from predictions.csv
    for kind in KINDS:
        rows = lv[lv["names"] == kind].set_index("level")
        raw = []
        for k, prev in ((2, 1), (4, 2)):
            assert rows.loc[k, "p_vs_level1"] == pytest.approx(mcnemar_p(*discordant(pred, "tiny-clip", kind, 0, 1, k)))
            assert rows.loc[k, "p_vs_previous"] == pytest.approx(mcnemar_p(*discordant(pred, "tiny-clip", kind, 0, prev, k)))
            raw.append(rows.loc[k, "p_vs_level1"])
        assert rows.loc[1, "p_vs_level1"] == 1.0 and np.isnan(rows.loc[1, "p_vs_previous"])
        assert list(rows.loc[[2, 4], "p_vs_level1_holm"]) == pytest.approx(holm_by_hand(raw))
        assert rows["peak_share"].sum() == pytest.approx(1.0, abs=1e-5)  # each share rounded to 6 decimals

    # controls.csv: synonyms minus control on the same images, with a paired CI around it
    ctrl = pd.read_csv(out / "controls.csv")
    assert set(ctrl["control"]) == {"random-words", "random-chars"} and len(ctrl) == 6
    top1 = lv.set_index(["names", "level"])["top1"]
    for r in ctrl.itertuples():
        assert r.effect == pytest.approx(top1[("synonyms", r.level)] - top1[(r.control, r.level)])
        assert r.ci_low - 1e-9 <= r.effect <= r.ci_high + 1e-9
        a = pred[(pred["names"] == "synonyms") & (pred["level"] == r.level)].set_index("image")["correct"]
        b = pred[(pred["names"] == r.control) & (pred["level"] == r.level)].set_index("image")["correct"].loc[a.index]
        assert r.p_value == pytest.approx(mcnemar_p(int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())))
    level1 = ctrl[ctrl["level"] == 1]
    assert (level1["effect"] == 0).all() and (level1["ci_low"] == 0).all() and (level1["p_value"] == 1).all()

    # threshold.csv: one verdict per names kind, the synonyms one also in the summary
    thr = pd.read_csv(out / "threshold.csv")
    assert list(thr["names"]) == KINDS
    s = res.summary["backbones"]["tiny-clip"]
    syn = thr[thr["names"] == "synonyms"].iloc[0]
    assert s["threshold"]["trend"] == syn["trend"] and s["threshold"]["peak_level"] == syn["peak_level"]
    assert set(s["controls"]) == {"random-words", "random-chars"}
    assert s["semantic_effect"]["random-words"][2]["effect"] == pytest.approx(
        ctrl.set_index(["control", "level"]).loc[("random-words", 2), "effect"])

    # the control names in run.json: same counts, canonical first, never a real name
    meta = json.loads((out / "run.json").read_text())
    real = {normalise(n) for ns in CLASSES.values() for n in ns}
    words = {normalise(w) for ns in CLASSES.values() for n in ns for w in n.split()}
    for kind, names in meta["config"]["controls_resolved"].items():
        for c, ns in names.items():
            assert ns[0] == CLASSES[c][0] and len(ns) == len(CLASSES[c])
            for n in ns[1:]:
                assert normalise(n) not in words and not any(r in normalise(n) for r in real), (kind, n)


def test_control_names_come_from_the_text_cache_on_a_rerun(tiny_model, image_folder, labels_csv, tmp_path):
    cache = str(tmp_path / "cache")
    kw = dict(levels=[1, 4], controls=["random-words", "random-chars"], cache_dir=cache, seed=1)
    first = run_sweep(make_config(tiny_model, image_folder, labels_csv, tmp_path / "a", **kw))
    again = run_sweep(make_config(tiny_model, image_folder, labels_csv, tmp_path / "b", **kw))
    assert first.summary["backbones"]["tiny-clip"]["model_loaded"] is True
    assert again.summary["backbones"]["tiny-clip"]["model_loaded"] is False  # every prompt, control ones too, cached
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "levels.csv").drop(columns="seconds"),
                                  pd.read_csv(tmp_path / "b" / "levels.csv").drop(columns="seconds"))


def test_orderings_spread_and_vocabulary_file(tiny_model, image_folder, labels_csv, tmp_path):
    vocab = tmp_path / "words.txt"
    vocab.write_text("\n".join(["piano", "river", "lamp", "spoon", "garden", "window", "pencil", "violin"]) + "\n")
    res = run_sweep(make_config(tiny_model, image_folder, labels_csv, tmp_path / "run", levels=[1, 2, 4], orderings=2,
                                controls=["random-words"], vocabulary=str(vocab)))
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    used = {n for ns in meta["config"]["controls_resolved"]["random-words"].values() for n in ns[1:]}
    assert used <= {"piano", "river", "lamp", "spoon", "garden", "window", "pencil", "violin"} and len(used) == 6
    thr = pd.read_csv(tmp_path / "run" / "threshold.csv", dtype={"ordering": str})
    assert list(thr["ordering"]) == ["0", "1", "all", "0", "1", "all"]
    t = res.summary["backbones"]["tiny-clip"]["threshold"]
    assert t["orderings"]["n"] == 2 and sum(t["orderings"]["trend_counts"].values()) == 2
    levels = pd.read_csv(tmp_path / "run" / "levels.csv")
    mean = levels[levels["names"] == "synonyms"].groupby("level")["top1"].mean()
    assert t["peak_level"] == int(mean.idxmax()) and t["peak_top1"] == pytest.approx(mean.max())
    summary = pd.read_csv(tmp_path / "run" / "levels_summary.csv")
    assert list(summary["names"]) == ["synonyms"] * 3 + ["random-words"] * 3


def test_cli_controls_and_closing_lines(tiny_model, image_folder, labels_csv, tmp_path, capsys):
    from core.cli import main

    cfg, ck = tiny_model
    base = ["sweep", "--dataset", str(image_folder), "--labels", str(labels_csv), "--model", cfg, "--checkpoint", ck,
            "--device", "cpu", "--templates", "plain", "--levels", "1,2,4", "--workers", "0", "--bootstrap", "100"]
    assert main(base + ["--controls", "random-words,nonsense", "--out", str(tmp_path / "bad")]) == 2
    assert "unknown control 'nonsense'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert main(base + ["--controls", "random-words,random-chars", "--alpha", "0.2", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    thr = pd.read_csv(tmp_path / "run" / "threshold.csv")
    syn = thr[thr["names"] == "synonyms"].iloc[0]
    assert (thr["alpha"] == 0.2).all()
    assert f"({syn['trend']}: McNemar p={syn['p_value']:.3g}, Holm" in err
    assert "tiny-clip semantic effect (synonyms - random-words): level 2:" in err
    assert "tiny-clip semantic effect (synonyms - random-chars): level 2:" in err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["controls"] == ["random-words", "random-chars"]


def test_tied_predictions_enter_mcnemar_as_expected_credit(tiny_model, image_folder, tmp_path):
    """A name shared by every class ties them all: its images earn 1/4, and the tests use that credit."""
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({c: [names[0], "thing", "object", "item"] for c, names in CLASSES.items()}))
    out = tmp_path / "run"
    run_sweep(make_config(tiny_model, image_folder, labels, out, levels=[1, 2, 4], controls=["random-chars"]))
    run = load_run(out)
    lv, pred = run.levels, run.predictions
    assert lv[lv["names"] == "synonyms"]["n_tied"].iloc[1:].sum() > 0
    assert set(pred.loc[pred["n_owners"] == 4, "credit"]) <= {0.25}
    for kind in ("synonyms", "random-chars"):
        d = pred[pred["names"] == kind].pivot(index="image", columns="level", values="credit")
        rows = lv[lv["names"] == kind].set_index("level")
        for k in (2, 4):
            diff = d[1] - d[k]
            n_a, n_b = int(np.rint(diff[diff > 0].sum())), int(np.rint(-diff[diff < 0].sum()))
            assert rows.loc[k, "p_vs_level1"] == pytest.approx(mcnemar_p(n_a, n_b))
            assert rows.loc[k, "top1"] == pytest.approx(d[k].mean())
