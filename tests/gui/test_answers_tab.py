"""The Results panel on a hand-written run with a VLM and a CLIP backbone: the Answers tab, the
Frequency tab's VLM-vs-CLIP view and each image's answer in the gallery."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt
from scipy.stats import spearmanr

from tests.conftest import CLASSES, write_image_folder
from tests.core.test_answer_tables import FREQUENCY, write_vlm_run


def open_panel(qtbot, run):
    from semscale_gui.results_panel import ResultsPanel

    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 700)
    panel.show()
    with qtbot.waitSignal(panel.run_opened, timeout=20000):
        panel.open_run(run)
    return panel


def test_answers_tab_lists_answers_by_class(qtbot, gui_env, tmp_path):
    run = write_vlm_run(tmp_path, write_image_folder(tmp_path / "images"))
    panel = open_panel(qtbot, run)
    view = panel.answers
    panel.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.model.rowCount() > 0, timeout=10000)
    assert view.backbone.currentText() == "llava" and view.level.currentText() == "highest"
    # independent: level-2 answers per class (true classes from predictions.csv), most frequent first
    raw = pd.read_csv(run / "answers.csv", keep_default_na=False)
    truth = pd.read_csv(run / "predictions.csv").drop_duplicates("image").set_index("image")["true_class"]
    raw = raw[raw["level"] == 2].assign(true_class=lambda d: d["image"].map(truth))
    m = view.model
    cells = [[m.data(m.index(r, c)) for c in range(m.columnCount())] for r in range(m.rowCount())]
    assert sum(int(row[2]) for row in cells) == len(raw) == 16
    classes = [row[0] for row in cells if row[0]]
    assert classes == list(CLASSES)  # the class is named once, on its first row, in the label set's order
    first_yellow = cells[[row[0] for row in cells].index("yellow bar")]
    assert first_yellow[1:5] == ["banana", "3", "75%", "no class"]
    # unmatched answers are highlighted, matched ones are not
    for r in range(m.rowCount()):
        bg = m.data(m.index(r, 1), Qt.ItemDataRole.BackgroundRole)
        assert (bg is not None) == (cells[r][4] == "no class")
    n_unmatched = int((raw["matched_classes"] == "").sum())
    assert f"{n_unmatched} ({n_unmatched / 16 * 100:.1f}%) matched no class" in view.summary.text()
    view.unmatched_only.setChecked(True)
    assert all(m.data(m.index(r, 4)) == "no class" for r in range(m.rowCount()))
    assert sum(int(m.data(m.index(r, 2))) for r in range(m.rowCount())) == n_unmatched
    view.unmatched_only.setChecked(False)
    view.level.setCurrentText("1")  # fewer names: "Crimson block" matched nothing yet
    row = next(r for r in range(m.rowCount()) if m.data(m.index(r, 1)) == "Crimson block")
    assert m.data(m.index(row, 4)) == "no class"


def test_answers_tab_without_answers_says_so(qtbot, gui_env, tmp_path):
    run = write_vlm_run(tmp_path, write_image_folder(tmp_path / "images"), with_answers=False)
    panel = open_panel(qtbot, run)
    panel.tabs.setCurrentWidget(panel.answers)
    qtbot.waitUntil(lambda: panel.answers.stack.currentWidget() is panel.answers.empty, timeout=5000)
    assert "no answers.csv" in panel.answers.empty.text() and panel.answers.model.rowCount() == 0


def test_frequency_tab_vlm_vs_clip(qtbot, gui_env, tmp_path):
    run = write_vlm_run(tmp_path, write_image_folder(tmp_path / "images"))
    panel = open_panel(qtbot, run)
    freq = panel.frequency
    panel.tabs.setCurrentWidget(freq)
    assert freq.show_box.isVisible()
    freq.show_as.setCurrentIndex(1)
    cmp_ = freq.vlm_clip
    cmp_.level.setCurrentText("2")
    assert (cmp_.vlm.currentText(), cmp_.clip.currentText()) == ("llava", "clip-b")
    pred = pd.read_csv(run / "predictions.csv")
    r = pred[pred["level"] == 2].groupby(["backbone", "true_class"])["credit"].mean()
    f = pd.Series(FREQUENCY)
    diff = r["llava"].reindex(f.index) - r["clip-b"].reindex(f.index)
    t = cmp_.table.set_index("class").reindex(f.index)
    assert np.allclose(t["difference"], diff)
    rho, p = spearmanr(f, diff)
    assert cmp_.stats["difference"] == pytest.approx((rho, p))
    assert f"difference (VLM − CLIP) ρ = {rho:+.2f}" in cmp_.summary.text()
    # the difference plot holds one point per class at (log frequency, difference in points)
    import pyqtgraph as pg

    pts = [it for it in cmp_.diff_view.getPlotItem().items if isinstance(it, pg.ScatterPlotItem)][0]
    xs, ys = pts.getData()
    assert sorted(zip(np.round(xs, 6), np.round(ys, 6))) == sorted(
        zip(np.round(np.log10(f + 1), 6), np.round(diff * 100, 6)))


def test_frequency_tab_hides_the_comparison_without_a_vlm(qtbot, gui_env, tmp_path):
    run = write_vlm_run(tmp_path, write_image_folder(tmp_path / "images"))
    meta = json.loads((run / "run.json").read_text())
    meta["backbones"][1]["kind"] = "open_clip"
    (run / "run.json").write_text(json.dumps(meta))
    panel = open_panel(qtbot, run)
    panel.tabs.setCurrentWidget(panel.frequency)
    assert not panel.frequency.show_box.isVisible()


def test_gallery_shows_each_images_answer(qtbot, gui_env, tmp_path):
    from core.results.drilldown import ClassAtLevel

    run = write_vlm_run(tmp_path, write_image_folder(tmp_path / "images"))
    panel = open_panel(qtbot, run)
    qtbot.waitUntil(lambda: panel.gallery.source is not None, timeout=10000)
    with qtbot.waitSignal(panel.gallery.filled, timeout=10000):
        panel.show_images(ClassAtLevel("llava", 2, "yellow bar"))
    m = panel.gallery.model
    answers = pd.read_csv(run / "answers.csv", keep_default_na=False)
    want = answers[answers["level"] == 2].set_index("image")["answer"]
    assert m.rowCount() == 4
    for r in range(m.rowCount()):
        image = str(m.rows["image"].iat[r])
        assert f"says: “{want[image]}”" in m.data(m.index(r, 0))
        assert f"answer: {want[image]}" in m.data(m.index(r, 0), Qt.ItemDataRole.ToolTipRole)
    with qtbot.waitSignal(panel.gallery.filled, timeout=10000):  # a CLIP backbone's rows keep their score line
        panel.show_images(ClassAtLevel("clip-b", 2, "yellow bar"))
    assert all("says:" not in m.data(m.index(r, 0)) for r in range(m.rowCount()))
