"""names.csv: per-name attribution, checked against independent recomputations.

Real tiny sweeps (flat and pooled) write names.csv; the tests recompute it with pandas from
predictions.csv (who won which image) and with plain numpy from the embeddings the sweep
scored (read from the embedding cache by content hash: leave-one-out by re-scoring whole
lists), and check hand-worked arrays with exact ties and shared names.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.util.config import BackboneSpec

LABELS = {  # "shape" is listed under two classes: one category with two owners from level 2 on
    "red square": ["red square", "shape", "crimson block", "scarlet tile"],
    "green circle": ["green circle", "lime disc"],
    "blue triangle": ["blue triangle", "shape", "navy wedge", "azure pyramid"],
    "yellow bar": ["yellow bar"],
}
LEVELS = [1, 2, 3, 4]
KEY = ["names", "ordering", "level", "class", "name"]


def _sweep(root: Path, images: Path, labels: Path, tiny_model, mode: str, orderings: int = 1) -> Path:
    import core.api

    cfg, ck = tiny_model
    out = root / f"run-{mode}"
    run = core.api.sweep(str(images), str(labels), [BackboneSpec(cfg, checkpoint=ck, device="cpu")], LEVELS, "plain",
                         mode, str(out), num_workers=0, bootstrap=20, orderings=orderings,
                         cache_dir=str(root / "cache"))
    assert run.status == "completed"
    return out


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory):
    from tests.conftest import write_image_folder

    root = tmp_path_factory.mktemp("names")
    images = write_image_folder(root / "images")
    labels = root / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in LABELS.items() for n in ns))
    return {"flat": _sweep(root, images, labels, tiny_model, "flat", orderings=2),
            "pooled": _sweep(root, images, labels, tiny_model, "pooled"), "images": images, "root": root}


def _names(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "names.csv")


def _embeddings(run_dir: Path, images: Path):
    """(image ids, X, name -> embedding) exactly as the sweep scored them: from the cache, by content hash."""
    from core.embedding.cache import EmbeddingCache
    from core.models.registry import load_model
    from core.results.runs import load_run

    run = load_run(run_dir)
    spec = BackboneSpec.from_dict(run.config["backbones_resolved"][0])
    identity = load_model(spec, lazy=True).identity
    ids = list(pd.read_csv(run_dir / "logits" / "tiny-clip" / "images.csv")["image"])
    cache = EmbeddingCache(run.config["cache_dir"])
    try:
        keys = [hashlib.sha256((images / i).read_bytes()).hexdigest() for i in ids]
        got = cache.get_images(identity, keys)
        X = np.stack([got[k] for k in keys]).astype(np.float32)
        templates = run.config["templates_resolved"]
        names = sorted({n for ns in LABELS.values() for n in ns})
        texts = cache.get_texts(identity, [(t, n) for n in names for t in templates])
    finally:
        cache.close()
    E = {}
    for n in names:
        v = np.stack([texts[(t, n)] for t in templates]).mean(axis=0)
        E[n] = (v / max(np.linalg.norm(v), 1e-12)).astype(np.float32)
    return ids, X, E


def _class_scores(X, E, lists: list[list[str]], mode: str) -> np.ndarray:
    """[N, C] class scores of whole lists, scored from scratch (flat: best name; pooled: normalised mean)."""
    cols = []
    for lst in lists:
        if not lst:
            cols.append(np.full(len(X), -np.inf, dtype=np.float32))
        elif mode == "flat":
            cols.append((X @ np.stack([E[n] for n in lst]).T).max(axis=1))
        else:
            t = np.stack([E[n] for n in sorted(set(lst))]).mean(axis=0)
            cols.append(X @ (t / max(np.linalg.norm(t), 1e-12)))
    return np.stack(cols, axis=1)


def _shares(cs: np.ndarray) -> np.ndarray:
    top = cs == cs.max(axis=1, keepdims=True)
    return top / top.sum(axis=1, keepdims=True)


def test_flat_wins_equal_a_pandas_recount_of_predictions(runs):
    """images_won / won_correct / won_from_other_classes = predictions.csv's winning names, 1/m per tied owner."""
    names = _names(runs["flat"])
    pred = pd.read_csv(runs["flat"] / "predictions.csv")
    pred["class"] = pred["predicted_classes"].str.split("|")
    won = pred.explode("class")
    won["share"] = 1.0 / won["n_owners"]
    won["right"] = np.where(won["class"] == won["true_class"], won["share"], 0.0)
    won = won.rename(columns={"predicted_label": "name"})
    expect = won.groupby(KEY)[["share", "right"]].sum().reset_index()
    got = names.merge(expect, on=KEY, how="left").fillna({"share": 0.0, "right": 0.0})
    assert len(got) == len(names) and set(names["ordering"]) == {0, 1}
    np.testing.assert_allclose(got["images_won"], got["share"].round(6), atol=1e-9)
    np.testing.assert_allclose(got["won_correct"], got["right"].round(6), atol=1e-9)
    np.testing.assert_allclose(got["won_from_other_classes"], (got["share"] - got["right"]).round(6), atol=1e-9)
    # every winning (class, name) of predictions.csv has its row
    assert set(map(tuple, expect[KEY].values)) <= set(map(tuple, names[KEY].values))


def test_flat_wins_add_up_to_the_run_tables(runs):
    names = _names(runs["flat"])
    per_class = pd.read_csv(runs["flat"] / "per_class.csv")
    levels = pd.read_csv(runs["flat"] / "levels.csv")
    by_class = names.groupby(["ordering", "level", "class"])["won_correct"].sum()
    pc = per_class.set_index(["ordering", "level", "class"])["n_correct"]
    np.testing.assert_allclose(by_class.loc[pc.index].values, pc.values, atol=1e-5)
    total = names.groupby(["ordering", "level"])["images_won"].sum()
    lv = levels.set_index(["ordering", "level"])["n_images"]
    np.testing.assert_allclose(total.loc[lv.index].values, lv.values, atol=1e-5)


def test_shared_names_have_every_owner(runs):
    names = _names(runs["flat"])
    shared = names[(names["name"] == "shape") & (names["ordering"] == 0)]
    assert set(shared["class"]) == {"red square", "blue triangle"}
    assert (shared["n_owners"] == 2).all() and (shared["rank"] == 2).all()
    assert sorted(shared["level"].unique()) == [2, 3, 4]
    solo = names[(names["name"] != "shape")]
    assert (solo["n_owners"] == 1).all()


@pytest.mark.parametrize("mode", ["flat", "pooled"])
def test_leave_one_out_equals_rescoring_whole_lists(runs, mode):
    """credit_change (and pooled wins) = numpy re-scoring of the list without the name, from the cached embeddings."""
    ids, X, E = _embeddings(runs[mode], runs["images"])
    truth = pd.read_csv(runs[mode] / "logits" / "tiny-clip" / "images.csv")["true_class"]
    classes = list(LABELS)
    y = np.array([classes.index(c) for c in truth])
    names = _names(runs[mode])
    names = names[(names["ordering"] == 0) & (names["names"] == "synonyms")].set_index(["level", "class", "name"])
    checked = 0
    for li, k in enumerate(LEVELS):
        lists = [LABELS[c][:k] for c in classes]
        cs = _class_scores(X, E, lists, mode)
        credit = _shares(cs)[np.arange(len(y)), y].sum()
        prev = LEVELS[li - 1] if li else 0
        for c, lst in enumerate(lists):
            for r, n in enumerate(lst):
                row = names.loc[(k, classes[c], n)]
                if mode == "pooled" and r < prev:
                    assert row[["images_won", "credit_change"]].isna().all()
                    continue
                without = [list(x) for x in lists]
                without[c] = [m for m in lst if m != n]
                cs2 = _class_scores(X, E, without, mode)
                credit2 = _shares(cs2)[np.arange(len(y)), y].sum()
                assert row["credit_change"] == pytest.approx(round(credit - credit2, 6), abs=1e-9), (k, classes[c], n)
                if mode == "pooled":
                    gain = np.maximum(_shares(cs)[:, c] - _shares(cs2)[:, c], 0)
                    assert row["images_won"] == pytest.approx(round(gain.sum(), 6), abs=1e-9)
                    assert row["won_correct"] == pytest.approx(round(gain[y == c].sum(), 6), abs=1e-9)
                checked += 1
    assert checked >= 10


def test_hand_worked_flat_ties_and_shared_name():
    """Two classes share "s"; exact ties split 1/2 (worked out by hand, see docs/statistics.md)."""
    from core.pipeline.names import level_names
    from core.pipeline.scoring import EmbeddingScores, LevelPlan, score_level

    names = {"A": ["a1", "s"], "B": ["b1", "s"], "C": ["c1"]}
    order = ["a1", "b1", "c1", "s"]
    E = np.eye(4, dtype=np.float32)
    X = np.array([[0.75, 0, 0, 0.5], [0.25, 0, 0, 0.875], [0, 0, 0.375, 0.625], [0, 0.625, 0, 0.125]],
                 dtype=np.float32)
    y = np.array([0, 0, 2, 1])
    scores = EmbeddingScores(X, E, {n: j for j, n in enumerate(order)})
    plan = LevelPlan.build(names, ["A", "B", "C"], 2, "flat")
    tally = level_names(scores, y, plan, 1)
    s = score_level(scores, y, plan, attribution=tally)
    assert s.credit.tolist() == [1.0, 0.5, 0.0, 1.0]
    got = pd.DataFrame(tally.rows(backbone="m", ordering=0, names="synonyms")).set_index(["class", "name"])
    expect = {  # images_won, won_correct, won_from_other_classes, credit_change, n_owners
        ("A", "a1"): (1, 1, 0, 0.5, 1), ("A", "s"): (1, 0.5, 0.5, 0.5, 2),
        ("B", "b1"): (1, 1, 0, 0.5, 1), ("B", "s"): (1, 0, 1, -0.5, 2), ("C", "c1"): (0, 0, 0, 0, 1),
    }
    for key, (won, right, other, change, owners) in expect.items():
        row = got.loc[key]
        assert (row["images_won"], row["won_correct"], row["won_from_other_classes"], row["credit_change"],
                row["n_owners"]) == (won, right, other, change, owners), key


def test_hand_worked_pooled_leave_one_out():
    """Pooled: a scoring kind's class score is the mean of its names' columns (dyadic numbers: exact)."""
    from core.pipeline.names import level_names
    from core.pipeline.scoring import LevelPlan, MatrixScores, score_level

    names = {"A": ["a1", "a2"], "B": ["b1", "b2"]}
    S = np.array([[0.25, 0.75, 0.5, 0.25], [0.5, 0.5, 0.75, 0.0]], dtype=np.float32)
    y = np.array([0, 1])
    scores = MatrixScores(S, {"a1": 0, "a2": 1, "b1": 2, "b2": 3})
    rows = {}
    for k, prev in ((1, 0), (2, 1)):
        plan = LevelPlan.build(names, ["A", "B"], k, "pooled")
        tally = level_names(scores, y, plan, prev)
        score_level(scores, y, plan, attribution=tally)
        for r in tally.rows(backbone="m", ordering=0, names="synonyms").to_dict("records"):
            rows[(k, r["name"])] = (r["images_won"], r["won_correct"], r["won_from_other_classes"], r["credit_change"])
    assert rows[(1, "a1")] == (0, 0, 0, 0)
    assert rows[(1, "b1")] == (2, 1, 1, 0)
    assert rows[(2, "a2")] == (1, 1, 0, 1)
    assert rows[(2, "b2")] == (0, 0, 0, -0.5)
    assert all(np.isnan(v) for v in rows[(2, "a1")]) and all(np.isnan(v) for v in rows[(2, "b1")])


@pytest.mark.parametrize("mode", ["flat", "pooled"])
def test_old_run_without_names_csv_recomputes_the_same_table(runs, mode, tmp_path):
    import core.api

    old = tmp_path / "old"
    shutil.copytree(runs[mode], old)
    (old / "names.csv").unlink()
    written = _names(runs[mode])
    again = core.api.load_run(old).names
    pd.testing.assert_frame_equal(again.reset_index(drop=True), written, check_dtype=False)
    assert "names.csv" in core.api.load_run(runs[mode]).meta["files"]


def test_old_run_without_cache_says_why(runs, tmp_path):
    import core.api
    from core.results.runs import load_run
    from core.util.errors import InputError

    old = tmp_path / "old"
    shutil.copytree(runs["flat"], old)
    (old / "names.csv").unlink()
    with pytest.raises(InputError, match="core.load_run"):
        load_run(old).names
    run = core.api.load_run(old)
    run.meta["config"]["cache_dir"] = str(tmp_path / "empty-cache")
    with pytest.raises(InputError, match="embedding cache does not hold"):
        run.names


def test_harmful_names_sentences_and_images(runs):
    from core.results.names import harmful_names, name_images, name_sentence, taken_by_class
    from core.results.runs import load_run

    run = load_run(runs["flat"])
    df = run.names
    worst = harmful_names(df, top=None, predictions=run.predictions)
    assert len(worst)
    mine = df[(df["ordering"] == 0) & (df["names"] == "synonyms")]
    harmful = mine[(mine["credit_change"] < 0) | (mine["won_from_other_classes"] > 0)]
    assert len(worst) == len(harmful.drop_duplicates(["class", "name"]))
    assert list(worst["credit_change"]) == sorted(worst["credit_change"])  # worst first
    for _, row in worst.iterrows():  # each name at its worst level
        same = harmful[(harmful["class"] == row["class"]) & (harmful["name"] == row["name"])]
        assert row["credit_change"] == same["credit_change"].min()
    for _, row in mine[mine["images_won"] > 0].iterrows():
        imgs = name_images(run, "tiny-clip", int(row["level"]), row["class"], row["name"])
        assert imgs["share"].sum() == pytest.approx(row["images_won"])
        assert imgs.loc[imgs["taken"], "share"].sum() == pytest.approx(row["won_from_other_classes"])
        hit = worst[(worst["class"] == row["class"]) & (worst["name"] == row["name"]) & (worst["level"] == row["level"])]
        if len(hit):
            assert hit["n_other_classes"].iloc[0] == imgs.loc[imgs["taken"], "true_class"].nunique()
            assert len(taken_by_class(imgs)) == hit["n_other_classes"].iloc[0]
    assert harmful_names(df, top=2).shape[0] == min(2, len(worst))
    row = {"name": "figure", "class": "circle", "won_from_other_classes": 41, "level": 8, "credit_change": -12}
    assert name_sentence(row, 3) == "*figure* (circle) takes 41 images from 3 other classes at level 8, costs 12 correct"
    assert name_sentence({**row, "won_from_other_classes": 0.5, "credit_change": 0}, 1) == \
        "*figure* (circle) takes 0.5 images from 1 other class at level 8"


EDITED = {  # against LABELS: red square re-ranked, blue triangle loses "shape" and gains "sky wedge"
    "red square": ["red square", "crimson block", "shape", "scarlet tile"],
    "green circle": ["green circle", "lime disc"],
    "blue triangle": ["blue triangle", "navy wedge", "azure pyramid", "sky wedge"],
    "yellow bar": ["yellow bar"],
}


@pytest.fixture(scope="module")
def edited_run(runs, tiny_model):
    root = runs["root"]
    labels = root / "edited.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in EDITED.items() for n in ns))
    out = _sweep(root / "edited", runs["images"], labels, tiny_model, "flat")
    return out


def test_compare_runs_by_names(runs, edited_run):
    from core.results.compare import compare_names

    got = compare_names(runs["flat"], edited_run).set_index("class")
    assert got.loc["blue triangle", "added"] == "sky wedge"
    assert got.loc["blue triangle", "removed"] == "shape"
    assert got.loc["blue triangle", "reranked"] == "navy wedge 3→2; azure pyramid 4→3"
    assert got.loc["red square", "reranked"] == "crimson block 3→2; shape 2→3"
    assert (got.loc["red square", "added"], got.loc["red square", "removed"]) == ("", "")
    assert got.loc["green circle", ["added", "removed", "reranked"]].tolist() == ["", "", ""]
    # recall at the highest common level, straight from both runs' per_class.csv
    a = pd.read_csv(runs["flat"] / "per_class.csv")
    b = pd.read_csv(edited_run / "per_class.csv")
    a = a[(a["ordering"] == 0) & (a["level"] == 4)].set_index("class")["recall"]
    b = b[(b["ordering"] == 0) & (b["level"] == 4)].set_index("class")["recall"]
    assert (got["level"] == 4).all()
    np.testing.assert_allclose(got.loc[a.index, "recall_before"], a.values)
    np.testing.assert_allclose(got.loc[b.index, "recall_after"], b.values)
    np.testing.assert_allclose(got["recall_change"], got["recall_after"] - got["recall_before"])
    at2 = compare_names(runs["flat"], edited_run, level=2)
    assert (at2["level"] == 2).all()


def test_semscale_compare_prints_names_per_class(runs, edited_run, tmp_path, capsys):
    from core.cli import main
    from core.results.compare import compare_names

    out = tmp_path / "names.csv"
    assert main(["compare", str(runs["flat"]), str(edited_run), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "names of run-flat against run-flat" in text and "sky wedge" in text and "2 of 4 classes changed" in text
    written = pd.read_csv(out, keep_default_na=False)
    expect = compare_names(runs["flat"], edited_run)
    assert written["class"].tolist() == expect["class"].tolist()
    assert written["added"].tolist() == expect["added"].tolist()
    np.testing.assert_allclose(written["recall_change"].astype(float), expect["recall_change"])


def test_no_names_table_flag(runs, tiny_model, tmp_path):
    from core.cli import main

    cfg, ck = tiny_model
    out = tmp_path / "run"
    labels = runs["root"] / "labels.csv"
    assert main(["sweep", "--dataset", str(runs["images"]), "--labels", str(labels), "--model", cfg, "--checkpoint", ck,
                 "--device", "cpu", "--levels", "1,2", "--templates", "plain", "--workers", "0", "--bootstrap", "10",
                 "--cache-dir", str(runs["root"] / "cache"), "--no-names-table", "--out", str(out), "--quiet"]) == 0
    assert not (out / "names.csv").exists()
    import json
    assert json.loads((out / "run.json").read_text())["config"]["save_names"] is False
