"""Tables of what generative backbones answered (core.results.answers), on a run folder written here
by hand: a CLIP backbone and a VLM on four classes, answers.csv, frequency.csv."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from core.results.answers import (answers_by_class, image_answers, read_answers, split_kinds, vlm_clip_frequency,
                                  with_true_class)
from tests.conftest import CLASSES, write_image_folder

FREQUENCY = {"red square": 1000.0, "green circle": 100.0, "blue triangle": 10.0, "yellow bar": 1.0}
# per class, the VLM's answer for images 0..3 and the class it matches at levels 1 and 2 ("" = none)
ANSWERS = {
    "red square": [("A red square.", "red square", "red square"), ("a red square", "red square", "red square"),
                   ("Crimson block", "", "red square"), ("a tomato", "", "")],
    "green circle": [("green circle", "green circle", "green circle"), ("Green circles", "green circle", "green circle"),
                     ("a lime", "", ""), ("A lime", "", "")],
    "blue triangle": [("navy wedge", "", "blue triangle"), ("blue triangle", "blue triangle", "blue triangle"),
                      ("a kitty", "", ""), ("Kitties", "", "")],
    "yellow bar": [("yellow bar", "yellow bar", "yellow bar"), ("banana", "", ""), ("banana", "", ""),
                   ("Banana!", "", "")],
}
CLIP_CORRECT = {"red square": 4, "green circle": 3, "blue triangle": 2, "yellow bar": 1}  # images right, both levels


def write_vlm_run(root: Path, images: Path, with_answers: bool = True, vlm_in_frequency: bool = True) -> Path:
    """A finished two-backbone run (clip-b: open_clip, llava: vlm) at levels 1 and 2."""
    from core.data import load_dataset

    ds = load_dataset(images)
    by_class: dict[str, list[str]] = {}
    for r in ds.records:
        by_class.setdefault(r.label, []).append(r.id)
    classes = list(CLASSES)
    run = root / "run"
    run.mkdir(parents=True)
    pred, answers = [], []
    for level in (1, 2):
        for cls in classes:
            for i, image in enumerate(sorted(by_class[cls])):
                ok = i < CLIP_CORRECT[cls]
                wrong = classes[(classes.index(cls) + 1) % len(classes)]
                pred.append({"image": image, "true_class": cls, "level": level, "predicted_class": cls if ok else wrong,
                             "predicted_label": cls if ok else wrong, "correct": int(ok), "credit": float(ok),
                             "ordering": 0, "backbone": "clip-b", "score": 0.3})
                text, m1, m2 = ANSWERS[cls][i]
                m = m1 if level == 1 else m2
                credit = float(m == cls)
                answers.append({"backbone": "llava", "image": image, "level": level, "answer": text,
                                "matched_names": m, "matched_classes": m, "credit": credit})
                pred.append({"image": image, "true_class": cls, "level": level, "predicted_class": m,
                             "predicted_label": m, "correct": int(credit), "credit": credit, "ordering": 0,
                             "backbone": "llava", "score": np.nan})
    p = pd.DataFrame(pred)
    p.to_csv(run / "predictions.csv", index=False)
    if with_answers:
        pd.DataFrame(answers).to_csv(run / "answers.csv", index=False)
    per_class = (p.groupby(["backbone", "level", "class" if "class" in p else "true_class"], sort=False)
                 .agg(n_images=("correct", "size"), recall=("credit", "mean")).reset_index()
                 .rename(columns={"true_class": "class"}))
    per_class["ordering"] = 0
    per_class.to_csv(run / "per_class.csv", index=False)
    freq = per_class if vlm_in_frequency else per_class[per_class["backbone"] != "llava"]
    freq = freq.assign(frequency=freq["class"].map(FREQUENCY))
    freq = freq.assign(log_frequency=np.log10(freq["frequency"] + 1))
    freq[["backbone", "level", "class", "n_images", "recall", "frequency", "log_frequency"]].to_csv(
        run / "frequency.csv", index=False)
    levels = (p.groupby(["backbone", "level"], sort=False).agg(top1=("credit", "mean"), n_images=("credit", "size"))
              .reset_index())
    levels["ordering"], levels["n_categories"] = 0, levels["level"] * len(classes)
    levels.to_csv(run / "levels.csv", index=False)
    meta = {"status": "completed",
            "config": {"dataset": str(images), "labels_resolved": {c: CLASSES[c] for c in classes},
                       "levels_resolved": [1, 2], "mode": "flat", "orderings": 1},
            "backbones": [{"name": "clip-b", "kind": "open_clip"}, {"name": "llava", "kind": "vlm"}],
            "summary": {}}
    (run / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    return run


@pytest.fixture
def vlm_run(tmp_path) -> Path:
    return write_vlm_run(tmp_path, write_image_folder(tmp_path / "images"))


def test_answers_by_class_counts_and_groups(vlm_run):
    df = read_answers(vlm_run)
    assert df is not None and len(df) == 32
    predictions = pd.read_csv(vlm_run / "predictions.csv")  # this answers.csv has no true_class column
    table = answers_by_class(df, "llava", predictions=predictions, classes=list(CLASSES))  # highest level (2)
    # independent: raw answers of level 2 per class, folded by lower case without punctuation and a final "s"
    raw = pd.read_csv(vlm_run / "answers.csv", keep_default_na=False)
    truth = pd.read_csv(vlm_run / "predictions.csv").drop_duplicates("image").set_index("image")["true_class"]
    raw = raw[raw["level"] == 2].assign(true_class=lambda d: d["image"].map(truth))
    fold = raw["answer"].str.lower().str.replace(r"[^a-z ]", "", regex=True).str.strip()
    fold = fold.str.replace(r"^an? ", "", regex=True).str.replace(r"ies$", "y", regex=True).str.replace(r"s$", "", regex=True)
    expected = raw.assign(k=fold).groupby(["true_class", "k"]).size()
    got = table.assign(k=table["answer"].str.lower().str.replace(r"[^a-z ]", "", regex=True).str.strip()
                       .str.replace(r"^an? ", "", regex=True).str.replace(r"ies$", "y", regex=True)
                       .str.replace(r"s$", "", regex=True)).groupby(["true_class", "k"])["count"].sum()
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    assert len(table) == len(expected)  # one row per answer, however it was spelled
    # most frequent first within a class, classes in the label set's order, shares sum to 1
    assert list(dict.fromkeys(table["true_class"])) == list(CLASSES)
    for cls, g in table.groupby("true_class"):
        assert list(g["count"]) == sorted(g["count"], reverse=True)
        assert g["share"].sum() == pytest.approx(1.0)
    yellow = table[table["true_class"] == "yellow bar"]
    assert yellow.iloc[0][["answer", "count", "matched"]].tolist() == ["banana", 3, False]  # "Banana!" folded in
    kitty = table[(table["true_class"] == "blue triangle") & ~table["matched"]]
    assert kitty["count"].tolist() == [2] and kitty["answer"].iloc[0] in ("a kitty", "Kitties")
    # at level 1 "Crimson block" matched nothing; at level 2 it names the red square
    lvl1 = answers_by_class(df, "llava", level=1, predictions=predictions)
    crimson = lvl1[lvl1["answer"] == "Crimson block"].iloc[0]
    assert not crimson["matched"] and crimson["credit"] == 0
    assert table[table["answer"] == "Crimson block"].iloc[0]["matched_classes"] == "red square"


def test_true_class_from_predictions_and_exact_raw_answers(tmp_path):
    answers = pd.DataFrame({"backbone": ["v", "v"], "image": ["a.png", "b.png"], "level": [1, 1],
                            "answer": ["None", 'a "quoted", answer'], "matched_names": ["", ""],
                            "matched_classes": ["", ""], "credit": [0.0, 0.0]})
    run = tmp_path / "r"
    run.mkdir()
    answers.to_csv(run / "answers.csv", index=False)
    back = read_answers(run)
    assert back["answer"].tolist() == ["None", 'a "quoted", answer']  # kept exactly, never NaN
    pred = pd.DataFrame({"image": ["a.png", "b.png"], "true_class": ["cat", "dog"]})
    assert with_true_class(back, pred)["true_class"].tolist() == ["cat", "dog"]
    assert read_answers(tmp_path) is None


def test_image_answers_for_gallery_rows(vlm_run):
    df = read_answers(vlm_run)
    rows = pd.read_csv(vlm_run / "predictions.csv")
    rows = rows[(rows["level"] == 1)].head(10)
    got = image_answers(df, rows)
    lookup = df.set_index(["backbone", "image", "level"])["answer"]
    for r in got.itertuples():
        want = lookup.get((r.backbone, r.image, r.level), "")
        assert r.answer == want  # clip-b rows get "" (no answers), llava rows their own answer


def test_vlm_clip_frequency_against_scipy(vlm_run):
    meta = json.loads((vlm_run / "run.json").read_text())
    assert split_kinds(meta) == (["llava"], ["clip-b"])
    pred = pd.read_csv(vlm_run / "predictions.csv")
    per_class = pd.read_csv(vlm_run / "per_class.csv")
    freq = pd.read_csv(vlm_run / "frequency.csv")
    table, stats = vlm_clip_frequency(freq, per_class, "llava", "clip-b", 2)
    # independent: recall = mean credit of the class's predictions at level 2
    r = pred[pred["level"] == 2].groupby(["backbone", "true_class"])["credit"].mean()
    f = pd.Series(FREQUENCY)
    vlm, clip = r["llava"].reindex(f.index), r["clip-b"].reindex(f.index)
    t = table.set_index("class").reindex(f.index)
    assert np.allclose(t["recall_vlm"], vlm) and np.allclose(t["recall_clip"], clip)
    assert np.allclose(t["difference"], vlm - clip)
    assert t["difference"].tolist() == [-0.25, -0.25, 0.0, 0.0]
    for key, y in (("vlm", vlm), ("clip", clip), ("difference", vlm - clip)):
        rho, p = spearmanr(f, y)
        assert stats[key] == pytest.approx((rho, p))
    assert stats["n_classes"] == 4
    # a frequency.csv written without the VLM: its recalls come from per_class.csv, same numbers
    table2, stats2 = vlm_clip_frequency(freq[freq["backbone"] != "llava"], per_class, "llava", "clip-b", 2)
    pd.testing.assert_frame_equal(table2, table)
    assert stats2["difference"] == pytest.approx(stats["difference"])


def test_raw_answers_with_line_breaks_read_back_exactly(tmp_path):
    """A generated answer may hold any character; answers.csv keeps it and reads back row for row."""
    from core.results.runs import RunWriter

    answers = ["plain", "carriage\rreturn", "new\nline", "both\r\nkinds", 'a "quote", comma', "tab\there",
               "\x04control\x11", "line\u2028separator", "", "None"]
    rows = [{"backbone": "v", "image": f"{i}.png", "level": 1, "answer": a, "matched_names": "",
             "matched_classes": "", "credit": 0.0} for i, a in enumerate(answers)]
    run = tmp_path / "run"
    w = RunWriter(run, {})
    w.append("answers.csv", rows[:5], ["backbone", "image", "level", "answer", "matched_names", "matched_classes",
                                        "credit"])
    w.append("answers.csv", rows[5:], ["backbone", "image", "level", "answer", "matched_names", "matched_classes",
                                        "credit"])
    back = read_answers(run)
    assert back["answer"].tolist() == answers
    assert back["level"].tolist() == [1] * len(answers) and back["credit"].tolist() == [0.0] * len(answers)
