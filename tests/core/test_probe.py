"""Linear probes (--probe-shots): the engine against scikit-learn and CLIP_benchmark, and real sweeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import core
from core.cli import main
from core.models.openclip import BackboneSpec
from core.stats import ensemble as ens
from core.stats import probe
from core.util.errors import InputError
from tests.conftest import CLASSES, write_image_folder


# ---------------------------------------------------------------- parsing


def test_parse_probe_shots():
    assert probe.parse_probe_shots("1,2,4,16,all") == [1, 2, 4, 16, "all"]
    assert probe.parse_probe_shots([2, "ALL", 2]) == [2, "all"]
    assert probe.parse_probe_shots("") == [] and probe.parse_probe_shots(None) == []
    for bad, why in (("0", "at least 1"), ("1,two", "got 'two'"), ("-3", "at least 1"), ([1.5], "got 1.5")):
        with pytest.raises(InputError, match=why) as e:
            probe.parse_probe_shots(bad)
        assert e.value.field == "probe-shots"


def test_cli_refuses_bad_probe_shots(tiny_model, image_folder, labels_csv, tmp_path, capsys):
    cfg, ck = tiny_model
    rc = main([str(a) for a in ["sweep", "--dataset", image_folder, "--labels", labels_csv, "--model", cfg,
                                "--checkpoint", ck, "--device", "cpu", "--out", tmp_path / "run",
                                "--probe-shots", "1,nine"]])
    assert rc == 2
    assert "probe-shots" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- the fit


def _features(n_classes=5, per_class=24, dim=16, seed=0, signal=1.0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n_classes, dim))
    y = np.repeat(np.arange(n_classes), per_class)
    X = signal * means[y] + rng.normal(size=(len(y), dim))
    return X.astype(np.float32), y


@pytest.mark.parametrize("wd", [1e-3, 1e-1, 3.0])
def test_fit_logistic_is_sklearns_optimum(wd):
    from sklearn.linear_model import LogisticRegression

    X, y = _features()
    Xn = probe.normalise(X)
    W, b = probe.fit_logistic(Xn, y, 5, wd)
    sk = LogisticRegression(C=1 / (wd * len(y)), tol=1e-10, max_iter=10_000).fit(Xn.astype(np.float64), y)
    assert np.abs(sk.coef_ - W).max() < 1e-3 * max(1.0, np.abs(W).max())
    assert np.abs(sk.intercept_ - b).max() < 1e-3 * max(1.0, np.abs(b).max())


def test_find_peak_walks_clip_benchmarks_grid():
    """The coarse-to-fine search on a hand-made accuracy curve peaking at grid index 37."""
    seen = []

    def evaluate(wd):
        i = int(np.argmin(np.abs(np.log(probe.WD_GRID / wd))))
        seen.append(i)
        return 1.0 - abs(i - 37) / 100

    idx, acc = probe.find_peak(evaluate)
    assert idx == 37 and acc == pytest.approx(1.0)
    assert seen[:7] == [0, 16, 32, 48, 64, 80, 96]  # CLIP_benchmark's 7 coarse values, 1e-6 ... 1e2
    assert probe.WD_GRID[0] == pytest.approx(1e-6) and probe.WD_GRID[-1] == pytest.approx(1e2)
    assert len(seen) == len(set(seen))  # a weight decay is fitted once


def test_splits_are_the_adaptive_ensembles():
    y = np.repeat(np.arange(4), [5, 7, 3, 9])
    for k in (1, 2, 4):
        for split in range(3):
            tr, te = probe.probe_split(y, k, seed=7, split=split)
            want = ens.k_shot_split(y, k, seed=7 * 1000 + 17 * k + split)
            assert np.array_equal(tr, want[0]) and np.array_equal(te, want[1])
    tr, te = probe.probe_split(y, "all", seed=7, split=0)
    assert np.array_equal(np.bincount(y[tr]), [2, 3, 1, 4]) and len(set(tr) | set(te)) == len(y)


def test_parity_with_clip_benchmark():
    """CLIP_benchmark's own find_peak / train / infer on the same features and splits: the
    clip_benchmark solver within one point (here: the same figure, the same weight decay). The
    optimum solver is not held to it: ten AdamW epochs on a few shots stop short of the optimum
    (benchmarks/results.md, "Linear probes")."""
    pytest.importorskip("clip_benchmark.metrics.linear_probe", reason="clip_benchmark is not installed")
    from benchmarks.bench_probes import clip_benchmark_probe

    X, y = _features(n_classes=4, per_class=20, dim=12, seed=3, signal=1.5)
    Xn = probe.normalise(X)
    tr, te = probe.probe_split(y, 4, seed=0, split=0)
    vseed = probe.split_seed(0, 4, 0)
    f_rows, v_rows = probe.validation_split(y[tr], vseed)
    theirs, wd = clip_benchmark_probe(X[tr][f_rows], y[tr][f_rows], X[tr][v_rows], y[tr][v_rows], X[te], y[te], 4,
                                      train_all=(X[tr], y[tr]))
    ours = {}
    for solver in probe.SOLVERS:
        fit = probe.fit_probe(Xn[tr], y[tr], seed=vseed, solver=solver)
        ours[solver] = float(np.mean(np.argmax(fit.scores_for(Xn[te], 4), axis=1) == y[te]))
        if solver == "clip_benchmark":
            assert fit.weight_decay == pytest.approx(wd)
    assert abs(ours["clip_benchmark"] - theirs) <= 0.01
    assert 0 <= ours["optimum"] <= 1


# ---------------------------------------------------------------- sweeps


def test_sweep_probes_share_the_ensembles_held_out_images(tiny_model, second_checkpoint, tmp_path, monkeypatch, capsys):
    """A real two-backbone sweep from the command line: probes.csv, load_run, and every probe split
    drawn from exactly the y and seed the adaptive ensembles drew theirs from."""
    cfg, ck = tiny_model
    images = write_image_folder(tmp_path / "images", per_class=6)
    labels = tmp_path / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in CLASSES.items() for n in ns))
    calls = []
    real = ens.k_shot_split

    def recording(y, k, seed):
        tr, te = real(y, k, seed)
        calls.append((k, seed, y.copy(), te.copy()))
        return tr, te

    monkeypatch.setattr(ens, "k_shot_split", recording)
    monkeypatch.setattr(probe, "k_shot_split", recording)
    out = tmp_path / "run"
    rc = main([str(a) for a in ["sweep", "--dataset", images, "--labels", labels, "--model", f"{cfg}={ck}",
                                "--model", f"{cfg}={second_checkpoint}", "--templates", "plain", "--device", "cpu",
                                "--workers", "0", "--levels", "1,2", "--ensemble-shots", "1,2", "--ensemble-splits", "2",
                                "--seed", "3", "--probe-shots", "1,2,all",
                                "--bootstrap", "50", "--out", out, "--quiet"]])
    assert rc == 0
    assert capsys.readouterr().err.count("linear probe vs zero-shot on the same held-out images: 1-shot") == 2
    run = core.load_run(out)
    df = run.probes
    assert list(df.columns) == probe.PROBE_COLUMNS
    assert run.config["probe_shots"] == [1, 2, "all"]
    backbones = sorted(df["backbone"].unique())
    assert len(backbones) == 2
    per_split = df[df["split"].astype(str) != "mean"]
    assert len(per_split) == 2 * 3 * 2 and len(df) == 2 * 3 * 3
    # the probe's held-out images are the ensembles': every probe draw has an ensemble draw with the same y and seed
    n_probe = 2 * 2 * 2  # backbones x numeric shots x splits
    probe_calls, ens_calls = calls[-n_probe:], calls[:-n_probe]
    for k, seed, y, te in probe_calls:
        twins = [c for c in ens_calls if c[0] == k and c[1] == seed]
        assert twins, (k, seed)
        assert all(np.array_equal(c[2], y) and np.array_equal(c[3], te) for c in twins)
    ensembles = run.ensembles[run.ensembles["k"] > 0]
    for _, r in per_split[per_split["shots"].astype(str) != "all"].iterrows():
        n_eval = ensembles[(ensembles["k"] == int(r["shots"])) & (ensembles["split"] == int(r["split"]))]["n_eval"]
        assert set(n_eval) == {r["n_test"]}
    assert df["top1"].between(0, 1).all() and df["zeroshot_top1"].between(0, 1).all()
    means = df[df["split"].astype(str) == "mean"].assign(shots=lambda d: d["shots"].astype(str))
    means = means.set_index(["backbone", "shots"])
    for name, shots in run.summary["probes"].items():  # run.json's summary holds the summary rows
        for k, p in shots.items():
            assert p["top1"] == pytest.approx(float(means.loc[(name, k), "top1"]))


def test_probe_numbers_recomputed_independently(tiny_model, tmp_path):
    """Known features through core.score_embeddings: each split's top-1 against scikit-learn's
    LogisticRegression with the chosen C, zero-shot against predictions.csv on the same held-out
    images, the summary row against numpy and scipy.stats."""
    from sklearn.linear_model import LogisticRegression

    cfg, ck = tiny_model
    classes = sorted(CLASSES)
    n_per, dim = 10, 32
    rng = np.random.default_rng(5)
    means = rng.normal(size=(len(classes), dim))
    true = np.repeat(np.arange(len(classes)), n_per)
    X = (0.8 * means[true] + rng.normal(size=(len(true), dim))).astype(np.float32)
    ids = [f"img-{i:03d}" for i in range(len(true))]
    labels = tmp_path / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in CLASSES.items() for n in ns))
    seed, splits = 2, 3
    res = core.score_embeddings(X, [classes[c] for c in true], labels, BackboneSpec(cfg, checkpoint=ck, device="cpu"),
                                levels=[1, 2], templates="plain", image_ids=ids, out=tmp_path / "run", seed=seed,
                                ensemble_splits=splits, probe_shots="2,all", bootstrap=50)
    df = core.load_run(tmp_path / "run").probes
    y = true  # classes are already in name order
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    pred = res.predictions[(res.predictions["ordering"] == 0)].set_index(["level", "image"])["credit"]
    for _, r in df[df["split"].astype(str) != "mean"].iterrows():
        k, split = r["shots"], int(r["split"])
        if str(k) == "all":
            rs = np.random.default_rng(seed * 1000 + split)
            tr = []
            for c in range(len(classes)):
                idx = np.flatnonzero(y == c)
                rs.shuffle(idx)
                tr += list(idx[: len(idx) // 2])
            tr = np.sort(tr)
        else:
            tr = ens.k_shot_split(y, int(k), seed * 1000 + 17 * int(k) + split)[0]
        te = np.setdiff1d(np.arange(len(y)), tr)
        assert (r["n_train"], r["n_test"]) == (len(tr), len(te))
        sk = LogisticRegression(C=float(r["C"]), tol=1e-10, max_iter=10_000).fit(Xn[tr].astype(np.float64), y[tr])
        assert r["C"] == pytest.approx(1 / (r["weight_decay"] * len(tr)))
        assert abs(float(r["top1"]) - float(np.mean(sk.predict(Xn[te]) == y[te]))) <= 1 / len(te) + 1e-9
        zs = {lvl: np.array([pred[(lvl, ids[i])] for i in range(len(y))]) for lvl in (1, 2)}
        assert float(r["zeroshot_first_top1"]) == pytest.approx(zs[1][te].mean())
        best = max((1, 2), key=lambda lvl: (zs[lvl][tr].mean(), -lvl))
        assert int(r["zeroshot_level"]) == best
        assert float(r["zeroshot_top1"]) == pytest.approx(zs[best][te].mean())
    for k, g in df.groupby(df["shots"].astype(str)):
        rows, mean = g[g["split"].astype(str) != "mean"], g[g["split"].astype(str) == "mean"].iloc[0]
        assert len(rows) == splits and int(mean["n_splits"]) == splits
        v = rows["top1"].astype(float).to_numpy()
        assert float(mean["top1"]) == pytest.approx(v.mean())
        lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v)) if v.std() else (v.mean(),) * 2
        assert (float(mean["ci_low"]), float(mean["ci_high"])) == pytest.approx((lo, hi))
    assert set(res.summary["probes"]) == {res.levels["backbone"].iloc[0]}


def test_study_files_carry_probe_shots(tmp_path):
    """A study's protocol takes probe_shots as a list or a string; both reach the sweep as one list."""
    from core.study.study import parse_study, sweep_config

    (tmp_path / "d").mkdir()
    base = '[[backbones]]\nmodel = "demo-vit"\n[[datasets]]\nname = "d"\npath = "{p}"\n'.format(p=tmp_path / "d")
    for line in ('probe_shots = [1, 4, "all"]\nprobe_solver = "clip_benchmark"\n', 'probe_shots = "1,4,all"\n'):
        study = parse_study(line + base)
        cfg = sweep_config(study, study.datasets[0], tmp_path / "out")
        assert cfg.probe_shots == [1, 4, "all"]
    assert cfg.probe_solver == "optimum"
    with pytest.raises(InputError, match="probe_shots"):
        parse_study('probe_shots = [1, "half"]\n' + base)
