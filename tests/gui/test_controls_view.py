"""Control curves, significance markers, the peak distribution and the verdict in the app."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QPointF, Qt

from tests.gui.conftest import shown


def _rows(kind: str, top1: list[float], holm: list[float], share: list[float]) -> list[dict]:
    return [{"backbone": "bb", "ordering": 0, "level": lv, "n_categories": 4 * lv, "n_images": 100, "top1": t,
             "top5": 1.0, "ci_low": t - 0.05, "ci_high": t + 0.05, "names": kind, "p_vs_level1_holm": p,
             "peak_share": s} for lv, t, p, s in zip((1, 2, 4), top1, holm, share)]


def test_markers_follow_the_holm_p_values_and_hover_shows_the_peak_distribution(qtbot, gui_env):
    from semscale_gui.plots import AccuracyPlot
    from core.results.views import ResultsData

    res = ResultsData()
    for r in _rows("synonyms", [0.6, 0.7, 0.65], [1.0, 0.01, 0.2], [0.0, 0.8, 0.2]) + \
            _rows("random-words", [0.6, 0.5, 0.4], [1.0, 0.04, 0.001], [1.0, 0.0, 0.0]):
        res.add_level(r)
    w = shown(qtbot, AccuracyPlot(), 800, 500)
    w.set_results(res)
    syn, ctrl = res.curve("bb"), res.curve("bb", "random-words")
    assert list(w.significant(syn)) == [False, True, False]
    assert list(w.significant(ctrl)) == [False, True, True]
    brushes = [b.color().name() for b in w._items["bb"]["top1"].scatter.data["brush"]]
    assert brushes[0] == brushes[2] == "#ffffff" and brushes[1] != "#ffffff"  # open, filled, open
    item = w._control_items[("bb", "random-words")]
    assert item.opts["pen"].style() == Qt.PenStyle.CustomDashLine
    assert item.opts["pen"].color() == w._items["bb"]["top1"].opts["pen"].color()  # the backbone's colour
    np.testing.assert_allclose(item.yData, [60, 50, 40])
    labels = [lab.text for _, lab in w.legend.items]
    assert "bb random words" in labels

    # hovering the synonyms' level-2 marker: its test and the share of resamples in which each level peaks
    vb = w.plot.vb
    at = vb.mapViewToScene(QPointF(1.0, 70.0))
    text = w.text_near(at)
    assert "2 names per class" in text and "p = 0.01 (Holm), significant" in text
    assert "peak here in 80% of bootstrap resamples" in text and "1: 0%, 2: 80%, 4: 20%" in text
    assert w.text_near(QPointF(at.x() + 200, at.y() + 200)) == ""
    w.show_controls.setChecked(False)
    assert not w._control_items and "bb random words" not in [lab.text for _, lab in w.legend.items]


@pytest.fixture
def control_run(tiny_model, image_folder, labels_csv, tmp_path):
    from core.models.openclip import BackboneSpec
    from core.pipeline.runner import SweepConfig, run_sweep

    cfg, ck = tiny_model
    out = tmp_path / "run"
    run_sweep(SweepConfig(dataset=str(image_folder), out=str(out), labels=str(labels_csv),
                          backbones=[BackboneSpec(model=cfg, checkpoint=ck, device="cpu")], templates=["a {}."],
                          levels=[1, 2, 4], num_workers=0, bootstrap=100, controls=["random-words", "random-chars"]))
    return out


def test_a_run_with_controls_in_the_results_panel(qtbot, gui_env, control_run, tmp_path):
    from core.results.runs import load_run
    from core.results.views import ResultsData
    from semscale_gui.results_panel import ResultsPanel

    p = shown(qtbot, ResultsPanel(), 1200, 800)
    p.results = ResultsData.from_run(load_run(control_run))
    p.refresh()
    levels = pd.read_csv(control_run / "levels.csv")
    thr = pd.read_csv(control_run / "threshold.csv").set_index("names")
    # the header states the synonyms' verdict with its p-value
    header = p.header.text()
    assert f"McNemar p = {thr.loc['synonyms', 'p_value']:.2g}, Holm" in header
    assert {"plateau": "plateaus after it", "declining": "falls after it",
            "rising": "still rising", "fluctuating": "rises and falls"}[thr.loc["synonyms", "trend"]] in header
    assert "synonyms vs random words" in header and "(9/9 scored)" in header
    # the plot: one dashed curve per control, markers filled exactly where levels.csv's Holm p < 0.05
    acc = p.accuracy
    assert set(acc._control_items) == {("tiny-clip", "random-words"), ("tiny-clip", "random-chars")}
    for kind in ("synonyms", "random-words", "random-chars"):
        c = p.results.curve("tiny-clip", kind)
        rows = levels[levels["names"] == kind]
        np.testing.assert_allclose(c.top1, rows["top1"])
        assert list(acc.significant(c)) == list(rows["p_vs_level1_holm"] < 0.05)
    # the recall heatmap and confusion matrix stay on the labels file's names
    classes, lv, m = p.results.recall_matrix("tiny-clip")
    pc = pd.read_csv(control_run / "per_class.csv")
    syn = pc[pc["names"] == "synonyms"].pivot(index="class", columns="level", values="recall").reindex(classes)
    np.testing.assert_allclose(m, syn.to_numpy())
    # export takes the new files along
    out = {f.name for f in p.export_csvs(tmp_path / "exported")}
    assert {"controls.csv", "threshold.csv", "levels.csv", "predictions.csv", "run.json"} <= out
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "exported" / "controls.csv"),
                                  pd.read_csv(control_run / "controls.csv"))
    p.grab().save(str(tmp_path / "results.png"))


def test_run_panel_control_checkboxes(qtbot, gui_env):
    from semscale_gui.run_panel import RunPanel

    w = RunPanel()
    qtbot.addWidget(w)
    assert w.controls() == []
    w.control_words.setChecked(True)
    cfg = w.build_config("data", "labels.csv", "plain", "out")
    assert cfg.controls == ["random-words"]
    w.control_chars.setChecked(True)
    assert w.build_config("data", "labels.csv", "plain", "out").controls == ["random-words", "random-chars"]
    w.apply_config({"controls": ["random-chars"]})
    assert not w.control_words.isChecked() and w.control_chars.isChecked()


def test_a_live_sweep_with_controls_from_the_window(qtbot, loaded_window):
    w = loaded_window
    w.run_panel.control_words.setChecked(True)
    w.run_panel.control_chars.setChecked(True)
    kinds = []
    w.controller.level_finished.connect(lambda ev: kinds.append((ev.row["names"], ev.level)))
    with qtbot.waitSignal(w.controller.finished, timeout=180000) as done:
        assert w.start_sweep()
    status, run_dir, summary = done.args
    assert status == "completed"
    assert kinds == [(k, lv) for k in ("synonyms", "random-words", "random-chars") for lv in (1, 2, 4)]
    res = w.results
    qtbot.waitUntil(lambda: ("tiny", "random-chars") in res.accuracy._control_items, timeout=5000)
    assert res.accuracy.plotted_levels("tiny") == [1, 2, 4]
    assert "McNemar p = " in res.header.text() and "(9/9 scored)" in res.header.text()
    thr = pd.read_csv(f"{run_dir}/threshold.csv")
    assert list(thr["names"]) == ["synonyms", "random-words", "random-chars"]
    assert summary["backbones"]["tiny"]["threshold"]["trend"] == thr["trend"].iloc[0]
    qtbot.waitUntil(lambda: not res.predictions.empty, timeout=10000)
    res.tabs.setCurrentWidget(res.confusion)
    # the synonyms' predictions only, every image once (counted in the background)
    qtbot.waitUntil(lambda: res.confusion.counts.sum() == 16, timeout=10000)
