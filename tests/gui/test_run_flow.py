"""End to end through the real window: start a sweep, watch progress and plot points
arrive, export, reopen, re-run, and cancel mid-run keeping the finished levels."""

from __future__ import annotations

import filecmp
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox


def _run(qtbot, w, timeout=180000):
    progress, levels = [], []
    w.controller.progress.connect(progress.append)
    w.controller.level_finished.connect(lambda ev: levels.append(ev.level))
    with qtbot.waitSignal(w.controller.finished, timeout=timeout) as done:
        assert w.start_sweep()
        assert w.run_panel.cancel_btn.isEnabled() and not w.run_panel.start_btn.isEnabled()
    return done.args, progress, levels


def test_sweep_from_the_window_plots_every_level_and_exports(qtbot, loaded_window, tmp_path):
    w = loaded_window
    _set_cell = w.editor.model.setData
    _set_cell(w.editor.model.index(3, 1), "golden strip")  # an edit made in the GUI must reach the run
    (status, run_dir, _summary), progress, levels = _run(qtbot, w)
    assert status == "completed"
    assert levels == [1, 2, 4]
    stages = {p.stage for p in progress}
    assert {"load-model", "encode-images", "encode-text", "score"} <= stages
    assert w.tabs.currentWidget() is w.results

    run = Path(run_dir)
    saved = pd.read_csv(run / "labels.csv")
    assert "golden strip" in set(saved["synonym"])
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "completed" and meta["config"]["labels"] == str(run / "labels.csv")

    res = w.results
    qtbot.waitUntil(lambda: res.accuracy.plotted_levels("tiny") == [1, 2, 4], timeout=5000)
    res.tabs.setCurrentWidget(res.heatmap)  # hidden views are redrawn when shown (pivoted in the background)
    qtbot.waitUntil(lambda: res.heatmap.matrix.shape == (4, 3), timeout=10000)
    res.tabs.setCurrentWidget(res.table)
    assert res.table.rowCount() == 3
    assert "completed" in res.header.text() and "peak top-1" in res.header.text()
    assert w.run_panel.start_btn.isEnabled() and w.run_panel.bar.value() == w.run_panel.bar.maximum()
    qtbot.waitUntil(lambda: not res.predictions.empty, timeout=10000)
    res.tabs.setCurrentWidget(res.confusion)
    qtbot.waitUntil(lambda: res.confusion.counts.sum() == 16, timeout=10000)  # every image once at the shown level
    res.tabs.setCurrentWidget(res.accuracy)

    out = tmp_path / "exported"
    files = res.export_csvs(out)
    names = {p.name for p in files}
    assert {"levels.csv", "predictions.csv", "per_class.csv", "skipped.csv", "run.json", "labels.csv"} <= names
    for name in names:
        assert filecmp.cmp(run / name, out / name, shallow=False), name

    for suffix in ("png", "svg"):
        p = res.export_plot(tmp_path / f"accuracy.{suffix}")
        assert p is not None and p.stat().st_size > 1000
    assert (tmp_path / "accuracy.svg").read_text().lstrip().startswith("<?xml")

    res.copy_config()
    assert json.loads(QGuiApplication.clipboard().text())["dataset"] == meta["config"]["dataset"]


def test_open_a_previous_run_and_rerun_it(qtbot, loaded_window):
    w = loaded_window
    (status, run_dir, _), _, _ = _run(qtbot, w)
    assert status == "completed"
    from semscale_gui.results_panel import ResultsPanel

    panel = ResultsPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.refreshed, timeout=10000):
        panel.open_run(run_dir)
    assert panel.accuracy.plotted_levels() == [1, 2, 4]
    assert panel.results.status == "completed"

    with qtbot.waitSignal(w.controller.finished, timeout=180000) as again:
        w.rerun(panel.results.meta)
    assert again.args[0] == "completed" and again.args[1] != run_dir
    first = pd.read_csv(Path(run_dir) / "levels.csv")
    second = pd.read_csv(Path(again.args[1]) / "levels.csv")
    pd.testing.assert_frame_equal(first.drop(columns=["seconds"]), second.drop(columns=["seconds"]))


def test_cancel_mid_run_keeps_finished_levels(qtbot, loaded_window, monkeypatch):
    import core.pipeline.runner

    original = core.pipeline.runner.score_level

    def slow_score_level(*a, **kw):  # make each level take long enough to cancel between them
        time.sleep(0.4)
        return original(*a, **kw)

    monkeypatch.setattr(core.pipeline.runner, "score_level", slow_score_level)
    w = loaded_window
    w.run_panel.levels.setText("1,2,3,4")
    with qtbot.waitSignal(w.controller.level_finished, timeout=180000):
        assert w.start_sweep()
    with qtbot.waitSignal(w.controller.finished, timeout=60000) as done:
        w.run_panel.cancel_btn.click()
    status, run_dir, _ = done.args
    assert status == "cancelled"
    meta = json.loads((Path(run_dir) / "run.json").read_text())
    assert meta["status"] == "cancelled"
    levels = pd.read_csv(Path(run_dir) / "levels.csv")
    assert 1 <= len(levels) < 4
    assert list(levels["level"]) == [1, 2, 3, 4][: len(levels)]
    qtbot.waitUntil(lambda: w.results.accuracy.plotted_levels() == list(levels["level"]), timeout=5000)
    assert "Cancelled" in w.run_panel.stage.text()
    assert "cancelled" in w.results.header.text()
    assert w.run_panel.start_btn.isEnabled()


def test_engine_failure_is_shown_in_a_dialog(qtbot, loaded_window, tmp_path, tiny_model):
    w = loaded_window
    w.run_panel.backbones.set_checked([{"model": tiny_model[0], "pretrained": None,
                                        "checkpoint": str(tmp_path / "missing.pt")}])
    with qtbot.waitSignal(w.controller.finished, timeout=120000) as done:
        assert w.start_sweep()
    assert done.args[0] == "failed"
    boxes = [b for b in w.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "missing.pt" in boxes[0].text()
    assert "Failed" in w.run_panel.stage.text()


def test_start_without_a_dataset_explains_why(qtbot, main_window):
    assert not main_window.start_sweep()
    boxes = [b for b in main_window.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "Open a dataset first" in boxes[0].text()


def test_two_backbones_with_frequency_show_synergy_and_frequency(qtbot, loaded_window, tmp_path, monkeypatch):
    from semscale_gui.selftest import tiny_backbone

    w = loaded_window
    build = w.run_panel.build_config

    def two_splits(*a, **kw):  # fewer k-shot splits than the default 5: the same code path, less fitting
        cfg = build(*a, **kw)
        cfg.ensemble_splits = 2
        return cfg

    monkeypatch.setattr(w.run_panel, "build_config", two_splits)
    specs = [tiny_backbone(tmp_path / "models", seed=s) for s in (0, 1)]
    w.run_panel.backbones.set_checked(specs)
    freq = tmp_path / "freq.csv"
    freq.write_text("class,frequency\nred square,1000\ngreen circle,300\nblue triangle,50\nyellow bar,5\n")
    w.run_panel.frequency.setText(str(freq))
    w.run_panel.shots.setText("1")
    tables = []
    w.controller.table_rows.connect(lambda name, rows: tables.append(name))
    (status, run_dir, _), progress, levels = _run(qtbot, w)
    assert status == "completed"
    assert sorted(set(levels)) == [1, 2, 4] and len(levels) == 6
    assert {"backbones", "ensembles", "frequency"} <= set(tables)
    assert any(p.stage == "ensembles" for p in progress)
    res = w.results
    res.tabs.setCurrentWidget(res.ensembles)
    titles = [t for t, _ in res.ensembles.bars]
    assert "tiny-random-0" in titles and "oracle (any right)" in titles
    assert any("1-shot" in t for t in titles)
    res.tabs.setCurrentWidget(res.kshot)  # the k-shot curve from the same live TableRows events
    assert res.kshot.level.currentText() == "4"
    k, mean, lo, hi = res.kshot.curves["nlc"]
    assert list(k) == [1] and np.all(lo <= mean) and np.all(mean <= hi)
    assert {"global", "best_single_oracle", "mean_logits"} <= set(res.kshot.curves)
    res.tabs.setCurrentWidget(res.frequency)
    assert res.frequency.points == 4
    assert sorted(res.frequency.labelled_classes()) == sorted(["red square", "green circle", "blue triangle",
                                                               "yellow bar"])  # few classes: all named
    res.tabs.setCurrentWidget(res.comparison)
    assert res.comparison.table.rowCount() == 2

    from semscale_gui.results_panel import ResultsPanel

    reopened = ResultsPanel()
    qtbot.addWidget(reopened)
    with qtbot.waitSignal(reopened.refreshed, timeout=10000):
        reopened.open_run(run_dir)
    assert len(reopened.results.tables["ensembles"]) == len(res.results.tables["ensembles"])
