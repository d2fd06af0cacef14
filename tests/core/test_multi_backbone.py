"""A run with two backbones, an external system and class frequencies, end to end."""

import numpy as np
import pandas as pd
import pytest

from core.models.openclip import BackboneSpec
from core.results.runs import load_run
from core.pipeline.runner import SweepConfig, run_sweep
from tests.conftest import CLASSES


def test_two_backbones_external_and_frequency(tiny_model, second_checkpoint, image_folder, labels_csv, tmp_path):
    cfg, ck = tiny_model
    ext = tmp_path / "vlm.csv"
    images = sorted(p.relative_to(image_folder).as_posix() for p in image_folder.rglob("*.png"))
    # an external system that answers with synonyms, is right on the first half and says "no idea" on one image
    answers = []
    for i, im in enumerate(images):
        true = im.split("/")[0]
        answers.append(CLASSES[true][-1] if i % 2 == 0 else "red square")
    answers[1] = "no idea"
    pd.DataFrame({"image": images, "predicted_class": answers}).to_csv(ext, index=False)
    freq = tmp_path / "freq.csv"
    freq.write_text("class,frequency\nred square,1000\ngreen circle,10\nblue triangle,300\nyellow bar,5\n")

    config = SweepConfig(
        dataset=str(image_folder), out=str(tmp_path / "run"), labels=str(labels_csv), templates="plain",
        backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu", label="A"),
                   BackboneSpec(cfg, checkpoint=second_checkpoint, device="cpu", label="B")],
        levels=[1, 2], num_workers=0, bootstrap=100, ensemble_shots=[1, 2], ensemble_splits=2,
        class_frequency=str(freq), external_predictions=[f"vlm={ext}"],
    )
    res = run_sweep(config)
    assert res.status == "completed"
    out = tmp_path / "run"
    run = load_run(out)
    preds = run.predictions
    bb = pd.read_csv(out / "backbones.csv")
    en = pd.read_csv(out / "ensembles.csv")

    for level in (1, 2):
        a = preds[(preds.backbone == "A") & (preds.level == level)].set_index("image")["correct"]
        b = preds[(preds.backbone == "B") & (preds.level == level)].set_index("image")["correct"]
        truth = {im: im.split("/")[0] for im in images}
        ext_ok = pd.Series({im: int(ans in CLASSES[truth[im]]) for im, ans in zip(images, answers)})
        oracle = ((a + b.loc[a.index] + ext_ok.loc[a.index]) > 0).mean()
        row = en[(en.level == level) & (en.method == "oracle")]
        assert row["top1"].iloc[0] == pytest.approx(oracle)
        lvl_bb = bb[bb.level == level].set_index("backbone")
        assert lvl_bb.loc["A", "top1"] == pytest.approx(a.mean())
        assert lvl_bb.loc["vlm", "top1"] == pytest.approx(ext_ok.mean())
        assert lvl_bb.loc["vlm", "kind"] == "external"
        best = max(a.mean(), b.mean(), ext_ok.mean())
        assert en[(en.level == level) & (en.method == "best_single") & (en.k == 0)]["top1"].iloc[0] == pytest.approx(best)
    # adaptive rows for every shot and split, for both methods, evaluated on the non-fitting images
    ad = en[en.k > 0]
    assert set(ad.method) >= {"global", "nlc", "best_single", "mean_logits"}
    assert set(ad.k) == {1, 2} and set(ad.split) == {0, 1}
    assert (ad.n_fit + ad.n_eval == 16).all()
    assert (ad[ad.k == 1].n_fit == 4).all()

    # logits saved per backbone and level, consistent with predictions
    scores = np.load(out / "logits" / "A" / "level_1.npy")
    ids = pd.read_csv(out / "logits" / "A" / "images.csv")["image"]
    classes = list(CLASSES)
    pred_from_logits = [classes[j] for j in scores.argmax(1)]
    a1 = preds[(preds.backbone == "A") & (preds.level == 1)].set_index("image")["predicted_class"]
    assert (a1.loc[ids].values == np.array(pred_from_logits)).mean() > 0.9  # fp16 storage may flip near-ties

    fs = pd.read_csv(out / "frequency_summary.csv")
    assert set(fs.backbone) == {"A", "B", "vlm"}
    ft = pd.read_csv(out / "frequency.csv")
    g = ft[(ft.backbone == "A") & (ft.level == 1)]
    if g.recall.nunique() > 1:
        expected = g["recall"].corr(g["frequency"], method="spearman")
        assert fs[(fs.backbone == "A") & (fs.level == 1)].spearman_rho.iloc[0] == pytest.approx(expected)
    assert "ensembles" in run.meta["summary"] and "frequency" in run.meta["summary"]
