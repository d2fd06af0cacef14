"""--levels until-settled and --extend-names: the stopping rule on constructed curves, then real tiny sweeps."""

import json

import numpy as np
import pandas as pd
import pytest

import core
from core.models.openclip import BackboneSpec
from core.pipeline.runner import SweepConfig, run_sweep
from core.pipeline.settle import next_power_of_two, parse_extend, settled_index
from core.stats.significance import SETTLED, threshold_verdict
from core.util.errors import InputError
from tests.conftest import CLASSES, make_image

N = 200


def level(n_right: int, start: int = 0) -> np.ndarray:
    c = np.zeros(N)
    c[start:start + n_right] = 1
    return c


def test_settled_index_on_constructed_curves():
    flat = np.stack([level(100)] * 5)
    assert settled_index([1, 2, 4, 8, 16], flat, 0.05) == 2  # peak at 1, two levels later still a plateau
    rising = np.stack([level(40 + 30 * j) for j in range(5)])
    assert settled_index([1, 2, 4, 8, 16], rising, 0.05) is None  # never settles
    # rises to a peak at level 4, then stays: settled two levels after the peak
    peak_then_flat = np.stack([level(40), level(80), level(120), level(119), level(118), level(118)])
    assert settled_index([1, 2, 4, 8, 16, 32], peak_then_flat, 0.05) == 4
    # a peak at 4, a significant fall at 8 already: still two levels after the peak are needed
    peak_then_fall = np.stack([level(40), level(80), level(120), level(60), level(60)])
    assert threshold_verdict([1, 2, 4, 8], peak_then_fall[:4], n_boot=0).trend == "declining"
    assert settled_index([1, 2, 4, 8, 16], peak_then_fall, 0.05) == 4
    # the first settling decides: a rise that would come later is never scored
    late = np.stack([level(100), level(100), level(100, 1), level(160), level(160), level(160)])
    assert settled_index([1, 2, 4, 8, 16, 32], late, 0.05) == 2
    # a level equal to the peak is not a new peak (the first of equal peaks counts): settled at 16
    tie = np.stack([level(40), level(100), level(160), level(160), level(158)])
    assert settled_index([1, 2, 4, 8, 16], tie, 0.05) == 4


def test_extend_options():
    assert parse_extend("wordnet") == ("wordnet", None)
    assert parse_extend("neighbours:demo-vit") == ("neighbours", "demo-vit")
    with pytest.raises(InputError):
        parse_extend("thesaurus")
    assert [next_power_of_two(n) for n in (1, 2, 3, 5, 8)] == [1, 2, 4, 8, 8]


def _labels_with(path, per_class: int):
    rows = ["class,synonym"]
    for c, names in CLASSES.items():
        extra = [f"{c} variant {i}" for i in range(per_class - len(names))]
        rows += [f"{c},{n}" for n in (names + extra)[:per_class]]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_until_settled_sweep_stops_by_the_rule(tiny_model, image_folder, tmp_path):
    cfg, ck = tiny_model
    labels = _labels_with(tmp_path / "labels.csv", 16)
    config = SweepConfig(dataset=str(image_folder), out=str(tmp_path / "run"), labels=str(labels), templates="plain",
                         backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu", label="A")],
                         levels="until-settled", num_workers=0, bootstrap=50, ensemble_shots=[])
    logs = []
    res = run_sweep(config, emit=lambda e: logs.append(getattr(e, "message", "")))
    assert res.status == "completed"
    assert any("A: the curve " in m for m in logs)
    run = core.load_run(res.run_dir)
    candidates = [1, 2, 4, 8, 16]
    got = sorted(int(v) for v in run.levels["level"].unique())
    assert run.config["levels_resolved"] == got and got == candidates[: len(got)]
    info = run.summary["until_settled"]
    assert info["candidates"] == candidates and info["levels"] == got
    # the rule, checked here on the run's own per-image credits
    p = run.predictions
    wide = p[p.ordering == 0].pivot_table(index="level", columns="image", values="credit", aggfunc="first")
    credit = wide.loc[got].to_numpy(dtype=float)
    acc = credit.mean(axis=1)

    def rule_holds(j: int) -> bool:
        peak = int(np.argmax(acc[: j + 1]))
        return j - peak >= 2 and threshold_verdict(got[: j + 1], credit[: j + 1], 0.05, n_boot=0).trend in SETTLED

    settled = [j for j in range(len(got)) if rule_holds(j)]
    assert info["settled_at"]["A"] is not None  # the stopping rule triggered on this curve ...
    assert settled == [len(got) - 1]  # ... at the first level where it holds, and the sweep stopped there
    assert info["settled_at"]["A"] == got[-1] and len(got) < len(candidates)
    # threshold.csv carries the verdict of the scored curve
    assert run.threshold.iloc[0]["trend"] in ("rising", "plateau", "declining", "fluctuating")


def test_extend_names_from_the_bundled_wordnet(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSCALE_WORDNET", "bundled")
    root = tmp_path / "images"
    colours = list(CLASSES)
    for ci, c in enumerate(("dog", "car", "cat", "boat")):
        (root / c).mkdir(parents=True)
        for i in range(3):
            make_image(colours[ci], i).save(root / c / f"{i}.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("class,synonym\ndog,dog\ncar,car\ncat,cat\ncat,kitty\nboat,boat\n")
    cfg, ck = tiny_model
    core.sweep(dataset=root, labels=labels, backbones=[f"{cfg}={ck}"], templates="plain", out=tmp_path / "run",
               device="cpu", num_workers=0, bootstrap=20, ensemble_shots=[], levels="until-settled",
               extend_names="wordnet", extend_to=4)
    run = core.load_run(tmp_path / "run")
    used = pd.read_csv(tmp_path / "run" / "labels_used.csv", keep_default_na=False)
    assert list(used.columns) == ["class", "synonym", "source"]
    # independently: the suggestion engine on the bundled lexicon
    from core import synonyms as syn
    from core.labels.labelset import load_labels

    expect = syn.suggest_for_labels(load_labels(str(labels)), 4, sources=("wordnet",),
                                    wordnet_reader=syn.open_wordnet("bundled")).labels
    for c, names in expect.names.items():
        rows = used[used["class"] == c]
        assert rows["synonym"].tolist() == names
        n_file = {"cat": 2}.get(c, 1)
        assert rows["source"].tolist()[:n_file] == ["labels"] * n_file
        assert all(s.startswith("wordnet") for s in rows["source"].tolist()[n_file:])
    assert used[used["class"] == "car"]["synonym"].tolist()[:2] == ["car", "automobile"]
    assert len(used[used["class"] == "car"]) == 4
    assert run.config["labels_resolved"] == expect.names
    assert run.config["labels_sources"]["dog"][0] == "labels"
    assert run.config["extend_names"] == "wordnet"
    # the levels go up to the filled power of two at most
    assert set(run.levels["level"]) <= {1, 2, 4}
    assert "labels_used.csv" in json.loads((tmp_path / "run" / "run.json").read_text())["files"]


def test_cli_until_settled_extend_names_and_similarity_k(tiny_model, second_checkpoint, image_folder, tmp_path,
                                                         monkeypatch, capsys):
    """The command line reaches the same options: two backbones, names from WordNet, 3 neighbours."""
    from core.cli import main

    monkeypatch.setenv("SEMSCALE_WORDNET", "bundled")
    cfg, ck = tiny_model
    labels = tmp_path / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{c}\n" for c in CLASSES))
    rc = main(["sweep", "--dataset", str(image_folder), "--labels", str(labels), "--model", f"{cfg}={ck}",
               "--model", f"{cfg}={second_checkpoint}", "--device", "cpu", "--workers", "0", "--templates", "plain",
               "--levels", "until-settled", "--extend-names", "wordnet", "--extend-to", "2", "--similarity-k", "3",
               "--bootstrap", "20", "--ensemble-shots", "", "--out", str(tmp_path / "run")])
    assert rc == 0
    run = core.load_run(tmp_path / "run")
    err = capsys.readouterr().err
    sim = run.similarity[run.similarity.scope == "overall"].iloc[0]
    assert f"linear CKA {sim.cka:.3f}, k-NN agreement {sim.knn_agreement:.3f}" in err
    settled = run.summary["until_settled"]
    assert settled["levels"] == run.config["levels_resolved"]
    assert (f"until settled: levels {', '.join(map(str, settled['levels']))} of "
            f"{', '.join(map(str, settled['candidates']))}") in err
    assert run.config["levels"] == "until-settled" and run.config["extend_to"] == 2
    assert set(run.similarity["knn_k"]) == {3}
    used = pd.read_csv(tmp_path / "run" / "labels_used.csv", keep_default_na=False)
    # "square" and "circle" have WordNet synonyms; the multi-word class names may not: never more than 2 each
    assert used.groupby("class").size().max() <= 2
    assert set(used["source"]) <= {"labels"} | {s for s in used["source"] if s.startswith("wordnet")}
    assert set(run.levels["level"]) <= {1, 2}


def test_study_protocol_reaches_the_sweep_config(tmp_path):
    from core.study.study import parse_study, run_protocol, sweep_config

    text = '''levels = "until-settled"
extend_names = "wordnet"
extend_to = 8
similarity_k = 5

[[backbones]]
model = "demo-vit"

[[datasets]]
name = "shapes"
path = "images"
'''
    study = parse_study(text, tmp_path / "study.toml")
    cfg = sweep_config(study, study.datasets[0], tmp_path / "out")
    assert (cfg.levels, cfg.extend_names, cfg.extend_to, cfg.similarity_k) == ("until-settled", "wordnet", 8, 5)
    # the levels a curve settled at and the names added are results: a finished run is not "changed" by them
    d = cfg.to_dict()
    a = run_protocol({**d, "levels_resolved": [1, 2, 4], "labels_resolved": {"x": ["x", "y"]}})
    b = run_protocol({**d, "levels_resolved": [1, 2, 4, 8], "labels_resolved": {"x": ["x", "z"]}})
    assert a == b
    with pytest.raises(InputError):
        parse_study(text.replace("extend_to = 8", 'extend_to = "many"'), tmp_path / "study.toml")


def test_extend_names_from_embedding_neighbours(tiny_model, image_folder, tmp_path):
    """neighbours: the sweep's own backbone ranks a vocabulary by text-embedding similarity to each class
    (a suggestion that two classes share is dropped from both, so the vocabulary has some room)."""
    from core import synonyms as syn
    from core.labels.labelset import load_labels, load_templates
    from core.models.registry import load_model

    cfg, ck = tiny_model
    words = ["crimson", "emerald", "azure", "lemon", "tile", "ring", "wedge", "stick", "pebble", "cloud", "lantern",
             "meadow", "harbor", "violin", "saddle", "rocket"] + [f"word{i}" for i in range(60)]
    vocab = tmp_path / "words.txt"
    vocab.write_text("\n".join(words) + "\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{c}\n" for c in CLASSES))
    spec = BackboneSpec(cfg, checkpoint=ck, device="cpu", label="A")
    config = SweepConfig(dataset=str(image_folder), out=str(tmp_path / "run"), labels=str(labels), templates="plain",
                         backbones=[spec], levels="until-settled", num_workers=0, bootstrap=20, ensemble_shots=[],
                         extend_names="neighbours", extend_to=4, vocabulary=str(vocab), use_cache=False)
    assert run_sweep(config).status == "completed"
    used = pd.read_csv(tmp_path / "run" / "labels_used.csv", keep_default_na=False)
    expect = syn.suggest_for_labels(load_labels(str(labels)), 4, sources=("neighbours",), backbone=load_model(spec),
                                    templates=load_templates("plain"), vocabulary=words).labels
    for c in CLASSES:
        rows = used[used["class"] == c]
        assert rows["synonym"].tolist() == expect.names[c] and len(rows) == 4
        assert rows["source"].iloc[0] == "labels"
        assert all(s.startswith("neighbours:") for s in rows["source"].iloc[1:])
        assert set(rows["synonym"].iloc[1:]) <= set(words)
