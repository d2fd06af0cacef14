"""End-to-end sweeps with a real (tiny, random-initialised) open_clip model."""

import json

import numpy as np
import open_clip
import pandas as pd
import pytest
import torch
from PIL import Image

from core.models import openclip as backbones_mod
from core.models.openclip import BackboneSpec, load_backbone
from core.util.events import CancelToken, LevelFinished
from core.labels.labelset import load_labels
from core.results.runs import load_run
from core.pipeline.runner import SweepConfig, run_sweep
from tests.conftest import CLASSES


@pytest.fixture
def encoder_counter(monkeypatch):
    """Counts images passing through the image encoder (all backbones)."""
    calls = {"images": 0, "batches": 0}
    original = backbones_mod.Backbone.encode_images

    def counting(self, batch):
        calls["images"] += len(batch)
        calls["batches"] += 1
        return original(self, batch)

    monkeypatch.setattr(backbones_mod.Backbone, "encode_images", counting)
    return calls


def make_config(tiny_model, image_folder, labels, out, **kw):
    cfg, ck = tiny_model
    spec = BackboneSpec(model=cfg, checkpoint=ck, device="cpu")
    defaults = dict(templates=["a photo of a {}.", "a {} image."], num_workers=0, bootstrap=200)
    defaults.update(kw)
    return SweepConfig(dataset=str(image_folder), out=str(out), backbones=[spec],
                       labels=str(labels) if labels else None, **defaults)


def independent_level1(tiny_model, image_folder, labels_csv, templates):
    """Level-1 predictions computed with open_clip's own zero-shot classifier."""
    cfg, ck = tiny_model
    open_clip.add_model_config(cfg)
    model, _, preprocess = open_clip.create_model_and_transforms("tiny-clip")
    model.load_state_dict(torch.load(ck, weights_only=True))
    model.eval()
    tok = open_clip.get_tokenizer("tiny-clip")
    labels = load_labels(labels_csv)
    canonical = [labels.names[c][0] for c in labels.classes]
    with torch.no_grad():
        W = open_clip.build_zero_shot_classifier(model, tok, canonical, templates, num_classes_per_batch=2, device="cpu")
        preds = {}
        for p in sorted(image_folder.rglob("*.png")):
            x = preprocess(Image.open(p).convert("RGB"))[None]
            f = torch.nn.functional.normalize(model.encode_image(x), dim=-1)
            preds[f"{p.parent.name}/{p.name}"] = labels.classes[int((f @ W).argmax())]
    return preds


def test_level1_matches_open_clip_zero_shot_classifier(tiny_model, image_folder, labels_csv, tmp_path):
    templates = ["a photo of a {}.", "a {} image."]
    res = run_sweep(make_config(tiny_model, image_folder, labels_csv, tmp_path / "run", templates=templates, levels=[1]))
    assert res.status == "completed"
    pred = pd.read_csv(tmp_path / "run" / "predictions.csv")
    ours = dict(zip(pred["image"], pred["predicted_class"]))
    theirs = independent_level1(tiny_model, image_folder, labels_csv, templates)
    assert ours == theirs
    levels = pd.read_csv(tmp_path / "run" / "levels.csv")
    truth = pred["true_class"]
    assert levels["top1"].iloc[0] == pytest.approx(np.mean([theirs[i] == t for i, t in zip(pred["image"], truth)]))


def test_flat_and_pooled_follow_their_definitions(tiny_model, image_folder, labels_csv, tmp_path):
    """Recompute both modes from the backbone's own embeddings, independently of the sweep code."""
    templates = ["a photo of a {}."]
    flat = run_sweep(make_config(tiny_model, image_folder, labels_csv, tmp_path / "flat", templates=templates, levels=[4]))
    pooled = run_sweep(make_config(tiny_model, image_folder, labels_csv, tmp_path / "pooled", templates=templates,
                                   levels=[4], mode="pooled"))
    assert flat.status == pooled.status == "completed"

    cfg, ck = tiny_model
    bb = load_backbone(BackboneSpec(model=cfg, checkpoint=ck, device="cpu"))
    labels = load_labels(labels_csv)
    paths = sorted(image_folder.rglob("*.png"))
    X = bb.encode_images(torch.stack([bb.preprocess(Image.open(p).convert("RGB")) for p in paths])).numpy()
    ids = [f"{p.parent.name}/{p.name}" for p in paths]

    cats = [(c, n) for c in labels.classes for n in labels.names[c][:4]]
    T = bb.encode_texts([templates[0].format(n) for _, n in cats]).numpy()
    flat_best = [cats[j] for j in (X @ T.T).argmax(1)]
    P = np.stack([T[[i for i, (c2, _) in enumerate(cats) if c2 == c]].mean(0) for c in labels.classes])
    P /= np.linalg.norm(P, axis=1, keepdims=True)
    pooled_best = [labels.classes[j] for j in (X @ P.T).argmax(1)]

    f = pd.read_csv(tmp_path / "flat" / "predictions.csv").set_index("image")
    p = pd.read_csv(tmp_path / "pooled" / "predictions.csv").set_index("image")
    for i, image in enumerate(ids):
        assert f.loc[image, "predicted_class"] == flat_best[i][0]
        assert f.loc[image, "predicted_label"] == flat_best[i][1]
        assert p.loc[image, "predicted_class"] == pooled_best[i]
    lf = pd.read_csv(tmp_path / "flat" / "levels.csv").iloc[0]
    lp = pd.read_csv(tmp_path / "pooled" / "levels.csv").iloc[0]
    assert lf["n_categories"] == sum(min(4, len(v)) for v in CLASSES.values()) == 10
    assert lp["n_categories"] == 4


def test_sweep_encodes_each_image_once_and_cache_skips_encoder(tiny_model, image_folder, labels_csv, tmp_path, encoder_counter):
    cache = tmp_path / "cache"
    r1 = run_sweep(make_config(tiny_model, image_folder, labels_csv, tmp_path / "r1", cache_dir=str(cache), levels=[1, 2, 3, 4]))
    assert r1.status == "completed"
    assert encoder_counter["images"] == 16  # 16 images, 4 levels: each image encoded exactly once
    levels = pd.read_csv(tmp_path / "r1" / "levels.csv")
    assert list(levels["level"]) == [1, 2, 3, 4]
    assert list(levels["n_categories"]) == [4, 7, 9, 10]

    # second run with a different labels file: no image goes through the encoder again
    other = tmp_path / "other.json"
    other.write_text(json.dumps({c: list(reversed(v)) for c, v in CLASSES.items()}))
    r2 = run_sweep(make_config(tiny_model, image_folder, other, tmp_path / "r2", cache_dir=str(cache)))
    assert r2.status == "completed"
    assert encoder_counter["images"] == 16
    s = r2.summary["backbones"]["tiny-clip"]
    assert s["images_from_cache"] == 16 and s["images_encoded"] == 0
    assert s["model_loaded"] is False  # every image and prompt was cached: the network was never built
    assert s["logit_scale"] == r1.summary["backbones"]["tiny-clip"]["logit_scale"]

    # cached embeddings give the same scores as fresh ones
    r3 = run_sweep(make_config(tiny_model, image_folder, labels_csv, tmp_path / "r3", use_cache=False, levels=[1, 2, 3, 4]))
    assert encoder_counter["images"] == 32
    a = pd.read_csv(tmp_path / "r1" / "predictions.csv")
    b = pd.read_csv(tmp_path / "r3" / "predictions.csv")
    assert (a["predicted_label"] == b["predicted_label"]).all()
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-4)


def test_cancel_mid_sweep_keeps_finished_levels(tiny_model, image_folder, labels_csv, tmp_path):
    token = CancelToken()
    seen = []

    def on_event(ev):
        if isinstance(ev, LevelFinished):
            seen.append(ev.level)
            if len(seen) == 2:
                token.cancel()

    res = run_sweep(make_config(tiny_model, image_folder, labels_csv, tmp_path / "run", levels=[1, 2, 3, 4]),
                    emit=on_event, cancel=token)
    assert res.status == "cancelled"
    run = load_run(tmp_path / "run")
    assert run.status == "cancelled"
    assert list(run.levels["level"]) == [1, 2]
    assert sorted(run.predictions["level"].unique()) == [1, 2]
    assert len(run.predictions) == 2 * 16
    assert set(run.per_class["level"]) == {1, 2}


def test_run_json_records_config_and_threshold(tiny_model, image_folder, labels_csv, tmp_path):
    res = run_sweep(make_config(tiny_model, image_folder, labels_csv, tmp_path / "run", orderings=3, seed=5))
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["status"] == "completed"
    assert meta["config"]["levels_resolved"] == [1, 2, 4]
    assert meta["config"]["seed"] == 5 and meta["config"]["orderings"] == 3
    assert meta["backbones"][0]["weights"].startswith("sha256:")
    assert {"torch", "open_clip", "semscale"} <= set(meta["versions"])
    thr = meta["summary"]["backbones"]["tiny-clip"]["threshold"]
    assert thr["trend"] in {"rising", "plateau", "declining", "fluctuating"}
    levels = pd.read_csv(tmp_path / "run" / "levels.csv")
    assert len(levels) == 9 and set(levels["ordering"]) == {0, 1, 2}
    mean = levels.groupby("level")["top1"].mean()
    assert thr["peak_level"] == int(mean.idxmax())
    summary = pd.read_csv(tmp_path / "run" / "levels_summary.csv")
    np.testing.assert_allclose(summary["top1_mean"], mean.values)
    # CI brackets the point estimate
    assert ((levels["ci_low"] <= levels["top1"]) & (levels["top1"] <= levels["ci_high"])).all()
