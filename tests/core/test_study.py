"""Studies: the demo study (three datasets, three formats, both demo backbones) from the CLI.

The study runs once per module; each test reads what it wrote and checks it against the
run folders' own files and independent computations (pandas, numpy, hand rules).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.study.study import StudyOptions, load_study, parse_study, run_study, save_study, study_to_toml
from core.study.summary import read_csv

SMALL = {"ensemble_shots = [1, 2]": "ensemble_shots = [1]", "ensemble_splits = 2": "ensemble_splits = 1",
         "levels = [1, 2, 4, 8]": "levels = [1, 2, 4]"}


def _run_json(path: Path) -> dict:
    return json.loads((path / "run.json").read_text())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(study file, study folder, cache folder) after one CLI run of the demo study."""
    root = tmp_path_factory.mktemp("study")
    assert main(["demo-study", "--out", str(root / "demo"), "--per-class", "3"]) == 0
    study = root / "demo" / "study.toml"
    text = study.read_text()
    for a, b in SMALL.items():
        assert a in text
        text = text.replace(a, b)
    study.write_text(text)
    out, cache = root / "out", root / "cache"
    rc = main(["study", str(study), "--out", str(out), "--cache-dir", str(cache), "--workers", "0", "-q"])
    assert rc == 0
    return study, out, cache


def test_three_formats_three_completed_runs(demo):
    study, out, _ = demo
    meta = json.loads((out / "study.json").read_text())
    assert meta["status"] == "completed"
    assert [d["status"] for d in meta["datasets"]] == ["completed"] * 3
    kinds = {}
    for d in meta["datasets"]:
        run = _run_json(out / d["run_dir"])
        assert run["status"] == "completed"
        assert [b["label"] or b["model"] for b in run["config"]["backbones"]] == ["demo-vit", "demo-resnet"]
        kinds[d["name"]] = run["config"]["dataset_kind"]
    assert kinds == {"shapes-folder": "imagefolder", "shapes-cifar": "cifar", "shapes-parquet": "parquet"}
    # relative paths in the study file were resolved against its folder
    assert _run_json(out / "runs" / "shapes-cifar")["config"]["labels"] == str(study.parent / "labels" / "shapes-cifar.csv")


def test_demo_parquet_is_a_hugging_face_dataset(demo):
    """The Hugging Face `datasets` library itself reads the demo parquet: Image and ClassLabel features."""
    datasets = pytest.importorskip("datasets")
    study, _, _ = demo
    path = study.parent / "datasets" / "shapes-parquet" / "test.parquet"
    ds = datasets.Dataset.from_parquet(str(path), cache_dir=str(study.parent / "hf-cache"))
    assert isinstance(ds.features["image"], datasets.Image)
    assert isinstance(ds.features["label"], datasets.ClassLabel)
    from core.demo.data import DEMO_CLASSES

    assert ds.features["label"].names == list(DEMO_CLASSES)
    assert len(ds) == 3 * len(DEMO_CLASSES) and ds[0]["image"].size == (64, 64)


def test_demo_study_without_parquet_uses_a_manifest(tmp_path):
    from core.data import load_dataset
    from core.demo.study import write_demo_study

    s = load_study(write_demo_study(tmp_path, n_per_class=1, parquet=False))
    assert [d.name for d in s.datasets] == ["shapes-folder", "shapes-cifar", "shapes-manifest"]
    assert load_dataset(s.datasets[2].path).kind == "manifest"


def test_every_summary_row_equals_its_levels_row(demo):
    _, out, _ = demo
    summary = read_csv(out / "summary.csv")
    assert list(summary.columns[:10]) == ["dataset", "backbone", "level", "n_categories", "n_images", "top1", "top5",
                                          "ci_low", "ci_high", "delta_top1_vs_level1"]
    n = 0
    for name in ("shapes-folder", "shapes-cifar", summary["dataset"].unique()[2]):
        lv = read_csv(out / "runs" / name / "levels.csv")
        lv = lv[lv["ordering"] == 0]
        got = summary[summary["dataset"] == name]
        assert len(got) == len(lv) == 2 * 3
        for _, row in lv.iterrows():
            match = got[(got["backbone"] == row["backbone"]) & (got["level"] == row["level"])]
            assert len(match) == 1
            m = match.iloc[0]
            for col in ("n_categories", "n_images", "top1", "top5", "ci_low", "ci_high"):
                assert m[col] == row[col], (name, col)
            base = lv[(lv["backbone"] == row["backbone"]) & (lv["level"] == 1)]["top1"].item()
            assert m["delta_top1_vs_level1"] == pytest.approx(row["top1"] - base, abs=1e-12)
            n += 1
    assert n == len(summary) == 18


def test_by_level_against_pandas_and_a_numpy_bootstrap(demo):
    _, out, _ = demo
    summary = read_csv(out / "summary.csv")
    by = read_csv(out / "summary_by_level.csv")
    assert list(by["backbone"].unique()) == ["demo-vit", "demo-resnet"]  # the study's order
    assert len(by) == 2 * 3
    rng = np.random.default_rng(123)
    for _, r in by.iterrows():
        g = summary[(summary["backbone"] == r["backbone"]) & (summary["level"] == r["level"])]
        assert r["n_datasets"] == 3
        assert r["mean_top1"] == pytest.approx(g["top1"].mean(), abs=1e-12)
        d = g["delta_top1_vs_level1"].to_numpy()
        assert r["mean_delta_top1"] == pytest.approx(d.mean(), abs=1e-12)
        if np.ptp(d) == 0:
            assert r["delta_ci_low"] == r["delta_ci_high"] == d[0]
        else:  # an independent percentile bootstrap over the three datasets
            means = d[rng.integers(0, len(d), (20000, len(d)))].mean(axis=1)
            lo, hi = np.percentile(means, [2.5, 97.5])
            assert r["delta_ci_low"] == pytest.approx(lo, abs=0.02)
            assert r["delta_ci_high"] == pytest.approx(hi, abs=0.02)
            assert d.min() - 1e-12 <= r["delta_ci_low"] <= r["mean_delta_top1"] <= r["delta_ci_high"] <= d.max() + 1e-12
        # with p-values a dataset changed when p < 0.05 (direction from the sign of the change);
        # without them, when level 1's top-1 lies outside the level's CI
        later = g["level"] > 1
        if "p_vs_level1" in summary.columns:
            changed = later & (g["p_vs_level1"] < 0.05)
            improved = int((changed & (g["delta_top1_vs_level1"] > 0)).sum())
            hurt = int((changed & (g["delta_top1_vs_level1"] < 0)).sum())
        else:
            base = g["top1"] - g["delta_top1_vs_level1"]
            improved = int(((base < g["ci_low"]) & later).sum())
            hurt = int(((base > g["ci_high"]) & later).sum())
        assert (r["n_improved"], r["n_hurt"], r["n_no_change"]) == (improved, hurt, 3 - improved - hurt)
        assert r["significance"] == ("p_vs_level1" if "p_vs_level1" in summary.columns else "ci")


def test_thresholds_equal_each_runs_summary(demo):
    _, out, _ = demo
    th = read_csv(out / "thresholds.csv")
    assert len(th) == 6
    for _, r in th.iterrows():
        t = _run_json(out / "runs" / r["dataset"])["summary"]["backbones"][r["backbone"]]["threshold"]
        assert r["peak_level"] == t["peak_level"] and r["trend"] == t["trend"]
        assert r["peak_top1"] == pytest.approx(t["peak_top1"], abs=1e-12)


def test_ensembles_summary_per_dataset_mean_and_max(demo):
    _, out, _ = demo
    es = read_csv(out / "ensembles_summary.csv")
    per = es[~es["dataset"].str.startswith("(")]
    for name, g in per.groupby("dataset"):
        e = read_csv(out / "runs" / name / "ensembles.csv")
        for _, r in g.iterrows():
            src = e[(e["level"] == r["level"]) & (e["method"] == r["method"]) & (e["k"] == r["k"])]
            assert r["top1"] == pytest.approx(src["top1"].mean(), abs=1e-12)
            best = e[(e["level"] == r["level"]) & (e["method"] == "best_single") & (e["k"] == r["k"])]["top1"].mean()
            assert r["gain_vs_best_single"] == pytest.approx(r["top1"] - best, abs=1e-12)
        assert {"oracle", "mean_logits", "majority_vote", "global", "nlc"} <= set(g["method"])
    for label, how in (("(mean)", "mean"), ("(max)", "max")):
        agg = es[es["dataset"] == label]
        assert len(agg) == len(per) / 3
        for _, r in agg.iterrows():
            rows = per[(per["level"] == r["level"]) & (per["method"] == r["method"]) & (per["k"] == r["k"])]
            assert r["n_datasets"] == 3
            assert r["gain_vs_best_single"] == pytest.approx(getattr(rows["gain_vs_best_single"], how)(), abs=1e-12)
            assert r["top1"] == pytest.approx(getattr(rows["top1"], how)(), abs=1e-12)
    oracle = es[(es["dataset"] == "(mean)") & (es["method"] == "oracle") & (es["level"] == 1)]
    assert oracle["gain_vs_best_single"].item() >= 0


def test_frequency_summary_collects_each_run(demo):
    _, out, _ = demo
    fs = read_csv(out / "frequency_summary.csv")
    for name in fs["dataset"].unique():
        if name == "(mean)":
            continue
        own = read_csv(out / "runs" / name / "frequency_summary.csv")
        got = fs[fs["dataset"] == name].reset_index(drop=True)
        pd.testing.assert_frame_equal(got[own.columns], own, check_exact=True)
    mean = fs[fs["dataset"] == "(mean)"]
    per = fs[fs["dataset"] != "(mean)"]
    for _, r in mean.iterrows():
        rho = per[(per["backbone"] == r["backbone"]) & (per["level"] == r["level"])]["spearman_rho"]
        assert r["spearman_rho"] == pytest.approx(rho.mean(), nan_ok=True)


def test_second_invocation_recomputes_nothing(demo, capsys):
    study, out, cache = demo
    before = {p.name: p.read_bytes() for p in out.glob("*.csv")}
    runs_before = {p: p.read_bytes() for p in out.glob("runs/*/run.json")}
    capsys.readouterr()
    assert main(["study", str(study), "--out", str(out), "--cache-dir", str(cache), "--workers", "0", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped") == 3 and "images encoded" not in err
    assert {p.name: p.read_bytes() for p in out.glob("*.csv")} == before
    assert {p: p.read_bytes() for p in out.glob("runs/*/run.json")} == runs_before  # no run was started
    assert all(d["status"] == "completed" for d in json.loads((out / "study.json").read_text())["datasets"])


def test_changed_protocol_refused_then_overwrite_encodes_no_image(demo, tmp_path, capsys):
    study, out, cache = demo
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    changed = tmp_path / "study.toml"
    changed.write_text(study.read_text().replace("levels = [1, 2, 4]", "levels = [1, 2]").replace(
        '"labels/', f'"{study.parent}/labels/').replace('"datasets/', f'"{study.parent}/datasets/').replace(
        '"class_frequency.csv"', f'"{study.parent}/class_frequency.csv"'))
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    capsys.readouterr()
    args = ["study", str(changed), "--out", str(copy), "--cache-dir", str(cache), "--workers", "0", "-q"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "shapes-folder" in err and "levels" in err and "--overwrite" in err
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before  # nothing touched
    assert main(args + ["--rerun", "shapes-cifar"]) == 2  # the other two changed as well
    assert main(args + ["--overwrite"]) == 0
    for name in ("shapes-folder", "shapes-cifar"):
        run = _run_json(copy / "runs" / name)
        assert run["config"]["levels_resolved"] == [1, 2]
        for b in run["summary"]["backbones"].values():
            assert b["images_encoded"] == 0 and b["images_from_cache"] > 0  # the cache is shared
    assert sorted(read_csv(copy / "summary.csv")["level"].unique()) == [1, 2]


def test_interrupted_dataset_is_rerun_others_skipped(demo, tmp_path):
    study, out, cache = demo
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    meta_path = copy / "runs" / "shapes-cifar" / "run.json"
    meta = json.loads(meta_path.read_text())
    meta["status"] = "cancelled"
    meta_path.write_text(json.dumps(meta))
    (copy / "runs" / "shapes-cifar" / "stale.txt").write_text("left by the interrupted run")
    events = []
    res = run_study(load_study(study), StudyOptions(out=str(copy), cache_dir=str(cache), num_workers=0), emit=events.append)
    assert res.status == "completed"
    from core.study.study import DatasetFinished

    done = {e.name: e.status for e in events if isinstance(e, DatasetFinished)}
    assert done == {"shapes-folder": "skipped", "shapes-cifar": "completed", list(done)[2]: "skipped"}
    assert _run_json(copy / "runs" / "shapes-cifar")["status"] == "completed"
    assert not (copy / "runs" / "shapes-cifar" / "stale.txt").exists()
    assert read_csv(copy / "summary.csv").equals(read_csv(out / "summary.csv"))


def test_rerun_one_dataset(demo, tmp_path, capsys):
    study, out, cache = demo
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    before = {p.parent.name: p.read_bytes() for p in copy.glob("runs/*/run.json")}
    args = ["study", str(study), "--out", str(copy), "--cache-dir", str(cache), "--workers", "0", "-q"]
    assert main(args + ["--rerun", "shapes-cifar"]) == 0
    after = {p.parent.name: p.read_bytes() for p in copy.glob("runs/*/run.json")}
    assert [n for n in before if before[n] != after[n]] == ["shapes-cifar"]
    pd.testing.assert_frame_equal(read_csv(copy / "summary.csv"), read_csv(out / "summary.csv"))  # same numbers
    assert main(args + ["--rerun", "nosuch"]) == 2
    assert "no dataset called 'nosuch'" in capsys.readouterr().err


def test_cancel_keeps_finished_datasets(demo, tmp_path):
    study, _, cache = demo
    from core.util.events import CancelToken
    from core.study.study import DatasetFinished

    cancel = CancelToken()

    def emit(ev):
        if isinstance(ev, DatasetFinished):
            cancel.cancel()

    out = tmp_path / "out"
    res = run_study(load_study(study), StudyOptions(out=str(out), cache_dir=str(cache), num_workers=0), emit, cancel)
    assert res.status == "cancelled"
    assert [d["status"] for d in res.datasets.values()] == ["completed", "pending", "pending"]
    assert set(read_csv(out / "summary.csv")["dataset"]) == {"shapes-folder"}
    assert json.loads((out / "study.json").read_text())["status"] == "cancelled"


BAD_ENTRIES = [
    ("unknown key", lambda t: t.replace('name = "shapes-cifar"', 'name = "shapes-cifar"\ncolour = "red"'),
     "datasets[1].colour", "unknown key 'colour'"),
    ("missing path", lambda t: t.replace('path = "datasets/shapes-cifar"', 'path = "datasets/nowhere"'),
     "datasets[1].path", "dataset 'shapes-cifar'"),
    ("malformed labels", None, "datasets[1].labels", "bad-labels.csv:3"),
    ("unknown protocol key", lambda t: "colour = 1\n" + t, "field 'colour'", "unknown key"),
    ("duplicate name", lambda t: t.replace('name = "shapes-cifar"', 'name = "shapes-folder"'),
     "datasets[1].name", "used twice"),
    ("wrong type", lambda t: t.replace("seed = 0", 'seed = "zero"'), "field 'seed'", "expected an integer"),
    ("bad toml", lambda t: t + "\n[[datasets]\n", ".toml:31", "not a valid TOML file"),
]


@pytest.mark.parametrize("what,edit,field,message", BAD_ENTRIES, ids=[b[0] for b in BAD_ENTRIES])
def test_invalid_entry_refused_before_anything_runs(demo, tmp_path, capsys, what, edit, field, message):
    study, _, cache = demo
    bad = study.parent / f"bad-{what.replace(' ', '-')}.toml"
    text = study.read_text()
    if edit is None:
        (study.parent / "bad-labels.csv").write_text('class,synonym\nstar,star\n"unclosed,quote\n')
        text = text.replace('labels = "labels/shapes-cifar.csv"', 'labels = "bad-labels.csv"')
        bad = study.parent / "study-bad-labels.toml"
    else:
        text = edit(text)
    bad.write_text(text)
    out = tmp_path / "never"
    capsys.readouterr()
    assert main(["study", str(bad), "--out", str(out), "--cache-dir", str(cache), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert field in err and message in err and bad.name in err, err
    assert not out.exists()  # no run started, not even the study folder


def test_study_file_round_trip(demo, tmp_path):
    study, _, _ = demo
    s = load_study(study)
    saved = save_study(s, tmp_path / "copy.toml")
    again = load_study(saved)
    assert again.protocol == s.protocol
    assert again.backbones == s.backbones
    assert again.datasets == s.datasets  # absolute paths outside the new folder stay absolute
    # inside its own folder the file uses relative paths, so the folder can move
    text = study_to_toml(s, study.parent)
    assert 'path = "datasets/shapes-cifar"' in text
    assert parse_study(text, study).datasets == s.datasets


def test_sigterm_keeps_finished_datasets_and_exits_143(demo, tmp_path, monkeypatch):
    """A real SIGTERM (what a scheduler sends) after the first dataset: it is kept, the rest wait."""
    import os
    import signal

    from core import cli
    from core.study.study import DatasetFinished

    study, _, cache = demo
    original = cli.StudyReporter.__call__
    fired = []

    def call(self, ev):
        original(self, ev)
        if isinstance(ev, DatasetFinished) and not fired:
            fired.append(ev.name)
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cli.StudyReporter, "__call__", call)
    out = tmp_path / "out"
    assert main(["study", str(study), "--out", str(out), "--cache-dir", str(cache), "--workers", "0", "-q"]) == 143
    meta = json.loads((out / "study.json").read_text())
    assert meta["status"] == "interrupted"  # a stop signal, as a run records it
    assert [d["status"] for d in meta["datasets"]] == ["completed", "pending", "pending"]
    assert signal.getsignal(signal.SIGTERM) is not call  # the handler was put back
    assert set(read_csv(out / "summary.csv")["dataset"]) == {"shapes-folder"}
    # the same command resumes: the finished dataset is skipped, the others run
    assert main(["study", str(study), "--out", str(out), "--cache-dir", str(cache), "--workers", "0", "-q"]) == 0
    meta = json.loads((out / "study.json").read_text())
    assert [d["plan"] for d in meta["datasets"]] == ["skip", "run", "run"]


def test_entries_added_to_a_study_follow_the_study_file_rules():
    from core.models.openclip import BackboneSpec
    from core.util.errors import InputError
    from core.study.study import Study, StudyDataset

    study = Study()
    study.add_dataset(StudyDataset("cifar-10", "/data/cifar"))
    for ds, field, text in ((StudyDataset("a b", "/x"), "name", "cannot be a folder name"),
                            (StudyDataset("..", "/x"), "name", "cannot be a folder name"),
                            (StudyDataset("CIFAR-10", "/x"), "name", "already has a dataset called 'CIFAR-10'"),
                            (StudyDataset("other", ""), "path", "folder, file or tv:/hf: id")):
        with pytest.raises(InputError, match=text) as e:
            study.add_dataset(ds)
        assert e.value.field == field
    assert [d.name for d in study.datasets] == ["cifar-10"]
    study.add_backbone(BackboneSpec("demo-vit"))
    study.add_backbone(BackboneSpec("demo-vit", label="vit again"))
    with pytest.raises(InputError, match="'demo-vit' is already in the study; give it a label"):
        study.add_backbone(BackboneSpec("demo-vit"))
    assert [b.display for b in study.backbones] == ["demo-vit", "vit again"]
    # the parser holds a file to the same name rule
    with pytest.raises(InputError, match="'a b' cannot be a folder name"):
        parse_study('[[backbones]]\nmodel = "demo-vit"\n[[datasets]]\nname = "a b"\npath = "/x"\n')
