"""The sweep as a pipeline: rescored class scores, the analysis checked by hand, the logits/ size rule."""

import json

import numpy as np
import pandas as pd
import pytest

import core.pipeline.scoring as scoring
from core.stats import ensemble as ens
from core.models.openclip import BackboneSpec, load_backbone
from core.embedding.cache import EmbeddingCache
from core.data import load_dataset
from core.embedding.embed import embed_images, embed_names, logit_scale
from core.util.events import Log
from core.embedding.image_source import EncodedImages, image_source
from core.pipeline.scoring import EmbeddingScores, LevelPlan, MatrixScores, level_category_counts, level_class_scores, score_level
from core.pipeline.runner import SweepConfig, logits_plan, run_sweep
from tests.conftest import CLASSES

CLASS_LIST = list(CLASSES)


def _hand_class_scores(X, name_emb, name_row, names, classes, k):
    """Per class, the max over its first k names of the cosine similarity (plain loops)."""
    out = np.empty((len(X), len(classes)), dtype=np.float64)
    for c, cls in enumerate(classes):
        sims = [X.astype(np.float64) @ name_emb[name_row[n]].astype(np.float64) for n in names[cls][:k]]
        out[:, c] = np.max(sims, axis=0)
    return out


@pytest.mark.parametrize("mode", ["flat", "pooled"])
def test_level_class_scores_are_score_levels_floats(mode, monkeypatch):
    rng = np.random.default_rng(3)
    classes = ["b", "a", "c"]
    names = {"b": ["b0", "shared", "b2"], "a": ["a0", "shared"], "c": ["c0", "c1", "c2", "c3"]}
    all_names = sorted({n for ns in names.values() for n in ns})
    name_row = {n: i for i, n in enumerate(all_names)}
    E = rng.normal(size=(len(all_names), 8)).astype(np.float32)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    X = rng.normal(size=(50, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = rng.integers(0, 3, 50)
    monkeypatch.setattr(scoring, "SCORE_CHUNK", 16)  # 16 rows per chunk: 4 chunks
    assert scoring.chunk_rows(3) == 16
    rows = rng.permutation(50)[:37]
    order = np.array([1, 0, 2])
    for k in (1, 2, 4):
        plan, src = LevelPlan.build(names, classes, k, mode), EmbeddingScores(X, E, name_row)
        full = score_level(src, y, plan, keep_class_scores=True).class_scores
        again = level_class_scores(src, plan)
        assert np.array_equal(full, again)  # the very same floats
        picked = level_class_scores(src, plan, rows=rows, class_order=order)
        assert np.array_equal(picked, full[rows][:, order])
        if mode == "flat":  # an independent computation
            assert np.allclose(full, _hand_class_scores(X, E, name_row, names, classes, k), atol=1e-6)
        else:
            for c, cls in enumerate(classes):
                m = E[[name_row[n] for n in sorted(set(names[cls][:k]))]].mean(axis=0)
                assert np.allclose(full[:, c], X @ (m / np.linalg.norm(m)), atol=1e-6)


def test_dump_written_in_chunks_matches_float32(monkeypatch):
    rng = np.random.default_rng(0)
    classes = ["x", "y"]
    names = {"x": ["x0", "x1"], "y": ["y0"]}
    name_row = {"x0": 0, "x1": 1, "y0": 2}
    E = rng.normal(size=(3, 4)).astype(np.float32)
    X = rng.normal(size=(30, 4)).astype(np.float32)
    y = rng.integers(0, 2, 30)
    monkeypatch.setattr(scoring, "SCORE_CHUNK", 7)
    out = np.zeros((30, 2), dtype=np.float16)
    plan, src = LevelPlan.build(names, classes, 2), EmbeddingScores(X, E, name_row)
    s = score_level(src, y, plan, class_scores_out=out)
    ref = score_level(src, y, plan, keep_class_scores=True).class_scores
    assert s.class_scores is out
    assert np.array_equal(out, ref.astype(np.float16))


@pytest.mark.parametrize("mode", ["flat", "pooled"])
def test_score_matrix_goes_through_the_same_tie_policy(mode):
    """A kind that scores (image, name) pairs directly: flat categories are its name columns, pooled ones
    the mean of their names' columns; the tie policy is the one embeddings get."""
    classes = ["a", "b", "c"]
    names = {"a": ["a0", "shared"], "b": ["b0", "shared"], "c": ["c0", "c1"]}
    name_row = {n: j for j, n in enumerate(["a0", "b0", "c0", "c1", "shared"])}
    # image 0: "shared" wins (a and b tie, true a -> 1/2); image 1: c1 wins (true c -> 1); image 2: b0 wins (true a -> 0)
    S = np.array([[0.1, 0.2, 0.0, 0.0, 0.9],
                  [0.0, 0.0, 0.1, 0.8, 0.3],
                  [0.2, 0.7, 0.0, 0.0, 0.1]], dtype=np.float32)
    y = np.array([0, 2, 0])
    s = score_level(MatrixScores(S, name_row), y, LevelPlan.build(names, classes, 2, mode), keep_class_scores=True)
    if mode == "flat":
        assert s.credit.tolist() == [0.5, 1.0, 0.0]
        assert s.pred_label[0] == "shared" and s.n_owners.tolist() == [2, 1, 1]
        assert np.allclose(s.class_scores, [[0.9, 0.9, 0.0], [0.3, 0.3, 0.8], [0.2, 0.7, 0.0]])
    else:  # class score = mean of its two names' scores, computed by hand
        hand = np.array([[(r[0] + r[4]) / 2, (r[1] + r[4]) / 2, (r[2] + r[3]) / 2] for r in S.astype(np.float64)])
        assert np.allclose(s.class_scores, hand, atol=1e-6)
        assert s.credit.tolist() == [float(hand[i].argmax() == y[i]) for i in range(3)]


def test_level_plan_counts_match_the_engine():
    """Shared names are one category: the counts a preview shows are the ones the run scores."""
    classes = ["a", "b", "c", "d", "e", "f"]
    names = {"a": ["a0", "x"], "b": ["b0", "x"], "c": ["c0", "c1", "y"], "d": ["d0", "d1", "y"],
             "e": ["e0", "e1", "e2"], "f": ["f0", "f1", "f2"]}
    assert level_category_counts(names, classes, [1, 2, 3]) == [6, 11, 14]  # 6 firsts; +5 (x is one); +3 (y is one)
    plan = LevelPlan.build(names, classes, 3)
    assert plan.owners()["y"] == ["c", "d"] and plan.growing_classes() == ["c", "d", "e", "f"]
    assert level_category_counts(names, classes, [1, 2, 3], "pooled") == [6, 6, 6]


def test_logits_plan_rule():
    cfg = SweepConfig(dataset="d", out="o", backbones=[], logits_limit_mb=1.0)
    assert logits_plan(cfg, 1000, 100, 2, 2)[:2] == (True, pytest.approx(0.8))  # 1000*100*2 B*2*2 = 0.8 MB
    saved, mb, why = logits_plan(cfg, 1000, 100, 4, 2)
    assert not saved and mb == pytest.approx(1.6) and "over the 1 MB limit" in why and "--logits always" in why
    assert logits_plan(SweepConfig(dataset="d", out="o", backbones=[], logits_limit_mb=1.0, save_logits=True), 10**6, 1000, 16, 4)[0]
    assert not logits_plan(SweepConfig(dataset="d", out="o", backbones=[], save_logits=False), 1, 1, 1, 1)[0]
    assert logits_plan(SweepConfig(dataset="d", out="o", backbones=[], logits_limit_mb=None), 10**6, 1000, 16, 4)[0]


def _config(tiny_model, second_checkpoint, image_folder, labels_csv, out, cache, **kw):
    cfg, ck = tiny_model
    return SweepConfig(
        dataset=str(image_folder), out=str(out), labels=str(labels_csv), templates="plain", levels=[1, 2, 4],
        backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu", label="A"),
                   BackboneSpec(cfg, checkpoint=second_checkpoint, device="cpu", label="B")],
        num_workers=0, bootstrap=20, ensemble_shots=[1], ensemble_splits=2, cache_dir=str(cache), **kw)


def test_analysis_matches_a_hand_computation(tiny_model, second_checkpoint, image_folder, labels_csv, tmp_path):
    """backbones/ensembles rows of two backbones equal numpy on the images' and names' embeddings."""
    config = _config(tiny_model, second_checkpoint, image_folder, labels_csv, tmp_path / "run", tmp_path / "cache")
    assert run_sweep(config).status == "completed"
    out = tmp_path / "run"
    bb = pd.read_csv(out / "backbones.csv")
    en = pd.read_csv(out / "ensembles.csv")
    levels = pd.read_csv(out / "levels.csv")

    data = load_dataset(str(image_folder))
    classes = CLASS_LIST  # the labels file's order
    ordered = sorted(classes)  # the analysis works in class-name order
    y_name = None
    scores, scales = {}, {}
    with EmbeddingCache(tmp_path / "cache") as cache:
        for spec in config.backbones:
            b = load_backbone(spec, lazy=True)
            emb = embed_images(b, data, cache=cache, num_workers=0)
            ids = [data.records[i].id for i in emb.indices]
            all_names = sorted({n for ns in CLASSES.values() for n in ns})
            E = embed_names(b, all_names, ["a photo of a {}."], cache=cache)
            row = {n: i for i, n in enumerate(all_names)}
            assert ids == [r.id for r in data.records]  # every image, in the listing's order (the sweep's)
            X = emb.matrix
            y_name = np.array([ordered.index(data.records[i].label) for i in emb.indices])
            names = {c: CLASSES[c] for c in ordered}
            scores[spec.label] = {k: _hand_class_scores(X, E, row, names, ordered, k) for k in (1, 2, 4)}
            scales[spec.label] = logit_scale(b, cache)
    for k in (1, 2, 4):
        s = [scores["A"][k], scores["B"][k]]
        right = [(x.argmax(1) == y_name) for x in s]
        for name, r in zip("AB", right):
            got = bb[(bb.level == k) & (bb.backbone == name)].top1.iloc[0]
            assert got == pytest.approx(r.mean(), abs=1e-12)
            assert levels[(levels.level == k) & (levels.backbone == name)].top1.iloc[0] == pytest.approx(r.mean())
        fixed = en[(en.level == k) & (en.k == 0)].set_index("method").top1
        assert fixed["oracle"] == pytest.approx((right[0] | right[1]).mean(), abs=1e-12)
        assert fixed["best_single"] == pytest.approx(max(r.mean() for r in right), abs=1e-12)
        mean_logits = (scales["A"] * s[0] + scales["B"] * s[1]) / 2
        assert fixed["mean_logits"] == pytest.approx((mean_logits.argmax(1) == y_name).mean(), abs=1e-12)
        # the 1-shot rows: same split as ens.k_shot_split on the name-ordered classes, evaluated by hand
        for split in range(2):
            tr, ev = ens.k_shot_split(y_name, 1, seed=config.seed * 1000 + 17 * 1 + split)
            rows = en[(en.level == k) & (en.k == 1) & (en.split == split)].set_index("method")
            assert rows.n_fit.iloc[0] == len(tr) and rows.n_eval.iloc[0] == len(ev)
            assert rows.top1["mean_logits"] == pytest.approx((mean_logits[ev].argmax(1) == y_name[ev]).mean(),
                                                             abs=1e-12)
            assert rows.top1["best_single_oracle"] == pytest.approx(
                max((x[ev].argmax(1) == y_name[ev]).mean() for x in s), abs=1e-12)
            assert {"global", "nlc"} <= set(rows.index)


def test_logits_skipped_above_the_limit_and_forced(tiny_model, second_checkpoint, image_folder, labels_csv, tmp_path):
    cache = tmp_path / "cache"
    logs = []
    small = _config(tiny_model, second_checkpoint, image_folder, labels_csv, tmp_path / "small", cache,
                    logits_limit_mb=0.0001)
    assert run_sweep(small, emit=lambda e: logs.append(e.message) if isinstance(e, Log) else None).status == "completed"
    assert not (tmp_path / "small" / "logits").exists()
    said = [m for m in logs if "logits/ not written" in m]
    assert len(said) == 1 and "--logits always" in said[0]
    meta = json.loads((tmp_path / "small" / "run.json").read_text())
    assert meta["summary"]["logits"]["saved"] is False
    assert meta["summary"]["logits"]["estimated_mb"] == pytest.approx(16 * 4 * 2 * 3 * 2 / 1e6, abs=0.1)

    forced = _config(tiny_model, second_checkpoint, image_folder, labels_csv, tmp_path / "forced", cache,
                     logits_limit_mb=0.0001, save_logits=True)
    assert run_sweep(forced).status == "completed"
    d = tmp_path / "forced" / "logits"
    assert sorted(p.name for p in (d / "A").iterdir()) == ["images.csv", "level_1.npy", "level_2.npy", "level_4.npy"]
    s4 = np.load(d / "B" / "level_4.npy")
    assert s4.dtype == np.float16 and s4.shape == (16, 4)
    # the dump is what the analysis scored: its argmax is each image's prediction (ties aside)
    ids = pd.read_csv(d / "B" / "images.csv").image
    preds = pd.read_csv(tmp_path / "forced" / "predictions.csv")
    p4 = preds[(preds.backbone == "B") & (preds.level == 4)].set_index("image").predicted_class.loc[ids]
    assert (np.array(CLASS_LIST)[s4.astype(np.float32).argmax(1)] == p4.values).mean() > 0.9
    # every table is the same with or without the dump
    for f in ("levels.csv", "per_class.csv", "ensembles.csv", "backbones.csv", "pairs.csv", "predictions.csv"):
        a = pd.read_csv(tmp_path / "small" / f)
        b = pd.read_csv(tmp_path / "forced" / f)
        drop = [c for c in ("seconds",) if c in a]
        pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop))


def test_image_sources(tiny_model, image_folder, tmp_path):
    cfg = SweepConfig(dataset=str(image_folder), out=str(tmp_path / "o"), backbones=[], batch_size=5, num_workers=0)
    src = image_source(cfg)
    assert isinstance(src, EncodedImages) and src.listing.classes == sorted(CLASSES)
    spec = BackboneSpec(tiny_model[0], checkpoint=tiny_model[1], device="cpu")
    got = src.embeddings(load_backbone(spec), 0)
    direct = embed_images(load_backbone(spec), load_dataset(str(image_folder)), batch_size=5, num_workers=0)
    assert np.array_equal(got.indices, direct.indices) and np.allclose(got.matrix, direct.matrix, atol=1e-6)


def test_cli_logits_option(tiny_model, image_folder, labels_csv, tmp_path):
    from core.cli import main
    from tests.core.test_cli import sweep_args

    common = ("--levels", "1,2", "--cache-dir", tmp_path / "cache", "--quiet", "--bootstrap", "10")
    assert main(sweep_args(tiny_model, image_folder, labels_csv, tmp_path / "never", "--logits", "never", *common)) == 0
    assert not (tmp_path / "never" / "logits").exists()
    assert main(sweep_args(tiny_model, image_folder, labels_csv, tmp_path / "auto", *common)) == 0  # 16 x 4: tiny
    saved = sorted(p.name for p in next((tmp_path / "auto" / "logits").iterdir()).iterdir())
    assert saved == ["images.csv", "level_1.npy", "level_2.npy"]
    meta = json.loads((tmp_path / "auto" / "run.json").read_text())
    assert meta["config"]["save_logits"] is None and meta["summary"]["logits"]["saved"] is True
