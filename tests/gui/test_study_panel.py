"""The Study tab runs the demo study (three datasets, three formats, both demo backbones)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from core.study.summary import read_csv

SMALL = {"ensemble_shots = [1, 2]": "ensemble_shots = [1]", "ensemble_splits = 2": "ensemble_splits = 1",
         "levels = [1, 2, 4, 8]": "levels = [1, 2, 4]"}


@pytest.fixture(scope="module")
def demo_study(tmp_path_factory) -> Path:
    from core.demo.study import write_demo_study

    study = write_demo_study(tmp_path_factory.mktemp("gui-study") / "demo", n_per_class=2)
    text = study.read_text()
    for a, b in SMALL.items():
        text = text.replace(a, b)
    study.write_text(text)
    return study


@pytest.fixture
def shared_cache(tmp_path_factory, monkeypatch):
    """One embedding cache for the module's tests, as a user's cache is shared by studies."""
    monkeypatch.setenv("SEMSCALE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "study-gui-cache"))


def _run(qtbot, panel, timeout=300000) -> tuple:
    with qtbot.waitSignal(panel.controller.finished, timeout=timeout) as blocker:
        assert panel.run_all()
    qtbot.waitUntil(lambda: not panel.controller.running, timeout=10000)
    return tuple(blocker.args)


def _statuses(panel) -> list[str]:
    return [panel.table.item(r, 1).text() for r in range(panel.table.rowCount())]


def test_study_tab_runs_the_demo_study(main_window, qtbot, demo_study, tmp_path, shared_cache):
    w = main_window
    panel = w.study_panel
    assert w.tabs.tabText(w.tabs.indexOf(panel)) == "4 · Study"
    out = tmp_path / "results"
    assert panel.open_study(demo_study, out=out)
    assert panel.table.rowCount() == 3 and panel.backbone_list.count() == 2
    started, logged = [], []
    panel.controller.dataset_started.connect(lambda ev: started.append(ev.name))
    panel.log_message.connect(lambda m, _lvl: logged.append(m))
    status, folder, _ = _run(qtbot, panel)
    assert status == "completed" and Path(folder) == out
    assert len(started) == 3
    assert sum(m.startswith("study: dataset ") for m in logged) == 3 and logged[-1].startswith("study completed")
    assert "study: dataset 3 of 3" in w.log.toPlainText()  # the Log tells the study's story too
    assert all(s.startswith("✔ completed") for s in _statuses(panel)), _statuses(panel)
    assert panel.overall.value() == 3

    # the tables show the files the engine wrote, row for row
    qtbot.waitUntil(lambda: panel.tables["summary"].rowCount() > 0, timeout=10000)
    summary = read_csv(out / "summary.csv")
    t = panel.tables["summary"]
    assert t.rowCount() == len(summary) == 3 * 2 * 3
    col = [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())].index("top1")
    assert [float(t.item(r, col).text()) for r in range(t.rowCount())] == pytest.approx(
        summary["top1"].round(4).tolist(), abs=1e-9)
    by = read_csv(out / "summary_by_level.csv")
    assert panel.tables["summary_by_level"].rowCount() == len(by)
    assert panel.tables["ensembles_summary"].rowCount() == len(read_csv(out / "ensembles_summary.csv"))

    # the plot: one thin line per dataset and the mean of the chosen backbone, in points
    plot = panel.plot
    bb = plot.backbone.currentText()
    assert bb == "demo-vit" and len(plot.dataset_curves) == 3
    x, y = plot.mean_curve.getData()
    mine = by[by["backbone"] == bb].sort_values("level")
    assert np.allclose(x, np.log2(mine["level"])) and np.allclose(y, mine["mean_delta_top1"] * 100)
    for name, item in plot.dataset_curves.items():
        rows = summary[(summary["dataset"] == name) & (summary["backbone"] == bb)].sort_values("level")
        assert np.allclose(item.getData()[1], rows["delta_top1_vs_level1"] * 100)
    assert plot.band is None and not plot.band_shown  # 3 datasets: below MIN_DATASETS_FOR_CI, no interval

    # exports: every summary file and the plot
    files = panel.export_summaries(tmp_path / "export")
    assert {f.name for f in files} >= {"summary.csv", "summary_by_level.csv", "thresholds.csv",
                                       "ensembles_summary.csv", "study.json"}
    assert all(f.read_bytes() == (out / f.name).read_bytes() for f in files)
    png = panel.plot.export(tmp_path / "plot.png")
    assert png.stat().st_size > 5000
    w.tabs.setCurrentWidget(panel)
    panel.grab().save(str(tmp_path / "study-tab.png"))

    # a second Run all recomputes nothing and leaves the summaries as they were
    before = {p: p.read_bytes() for p in list(out.glob("*.csv")) + list(out.glob("runs/*/run.json"))}
    status, _, info = _run(qtbot, panel)
    assert status == "completed"
    assert [d["plan"] for d in info["datasets"].values()] == ["skip"] * 3
    assert all("up to date" in s for s in _statuses(panel))
    assert {p: p.read_bytes() for p in before} == before

    # double-clicking a dataset opens its run in Results
    name = panel.study.datasets[1].name
    panel.table.cellDoubleClicked.emit(1, 0)
    qtbot.waitUntil(lambda: str(w.results.results.run_dir or "") == str(out / "runs" / name), timeout=20000)
    assert w.tabs.currentWidget() is w.results


def test_cancel_keeps_finished_datasets(main_window, qtbot, demo_study, tmp_path, shared_cache):
    panel = main_window.study_panel
    out = tmp_path / "results"
    assert panel.open_study(demo_study, out=out)
    panel.controller.dataset_finished.connect(lambda ev: panel.cancel())
    status, _, info = _run(qtbot, panel)
    assert status == "cancelled"
    # the cancel is handled on the GUI thread while the study's job goes on: the second dataset may
    # already have started (then it is cancelled after its current batch), the third never runs
    st = [d["status"] for d in info["datasets"].values()]
    assert st[0] == "completed" and st[1] in ("pending", "cancelled") and st[2] == "pending", st
    assert _statuses(panel)[0].startswith("✔ completed") and _statuses(panel)[2] == "… not run yet"
    names = set(read_csv(out / "summary.csv")["dataset"])
    assert panel.study.datasets[0].name in names and panel.study.datasets[2].name not in names
    assert json.loads((out / "study.json").read_text())["status"] == "cancelled"


def test_invalid_entry_is_refused_before_anything_runs(main_window, qtbot, demo_study, tmp_path, shared_cache):
    from core.study.study import StudyDataset

    panel = main_window.study_panel
    out = tmp_path / "results"
    assert panel.open_study(demo_study, out=out)
    assert panel.add_dataset(StudyDataset("missing", str(tmp_path / "nowhere"), None))
    assert not panel.add_dataset(StudyDataset("missing", str(tmp_path), None))  # duplicate name
    for box in QApplication.topLevelWidgets():
        if isinstance(box, QMessageBox):
            box.close()
    status, _, _ = _run(qtbot, panel)
    assert status == "failed"
    boxes = [b for b in QApplication.topLevelWidgets() if isinstance(b, QMessageBox) and b.isVisible()]
    assert any("datasets[3].path" in b.text() and "missing" in b.text() for b in boxes), [b.text() for b in boxes]
    assert not (out / "runs").exists()


def test_save_and_reopen(qtbot, gui_env, demo_study, tmp_path):
    from core.models.openclip import BackboneSpec
    from core.study.study import StudyDataset, load_study
    from semscale_gui.study_panel import StudyPanel

    panel = StudyPanel()
    qtbot.addWidget(panel)
    root = demo_study.parent
    assert panel.add_backbone(BackboneSpec("demo-vit"))
    assert not panel.add_backbone(BackboneSpec("demo-vit"))  # the same name twice
    assert panel.add_dataset(StudyDataset("cifar", str(root / "datasets" / "shapes-cifar"),
                                          str(root / "labels" / "shapes-cifar.csv")))
    panel.levels.setText("1, 2")
    panel.templates.setCurrentText("plain")
    path = root / "saved-from-tab.toml"
    assert panel.save_to(path)
    text = path.read_text()
    assert 'path = "datasets/shapes-cifar"' in text and "levels = [1, 2]" in text
    s = load_study(path)
    assert s.protocol["levels"] == [1, 2] and s.protocol["templates"] == "plain"
    assert [d.name for d in s.datasets] == ["cifar"] and s.backbones[0].model == "demo-vit"


def test_preview_opens(qtbot, gui_env):
    from semscale_gui import study_panel, study_plot

    for mod in (study_panel, study_plot):
        w = mod.preview()
        qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        assert not w.grab().isNull()


def test_dataset_dialog_fills_an_entry(qtbot, gui_env, demo_study):
    from semscale_gui.study_panel import DatasetDialog

    dlg = DatasetDialog()
    qtbot.addWidget(dlg)
    i = dlg.torchvision.findText("CIFAR10")
    assert i > 0
    dlg.torchvision.activated.emit(i)
    assert dlg.path.text() == "tv:CIFAR10" and dlg.name.text() == "cifar10"
    dlg.path.setText(str(demo_study.parent / "datasets" / "shapes-parquet" / "test.parquet"))
    assert dlg.name.text() == "shapes-parquet"  # a file named like every split is named after its folder
    dlg.split.setText("test")
    d = dlg.value()
    assert (d.name, d.split, d.labels) == ("shapes-parquet", "test", None)
    dlg.show()
    qtbot.waitExposed(dlg)
    dlg.grab().save(str(demo_study.parent / "dataset-dialog.png"))


def test_study_plot_keeps_equal_curves_apart_and_draws_no_ci_for_few_datasets(qtbot, gui_env):
    import numpy as np
    import pandas as pd

    from semscale_gui.study_panel import StudyPanel
    from semscale_gui.study_plot import DATASET_OFFSET, MIN_DATASETS_FOR_CI, StudyPlot

    rows = [{"dataset": d, "backbone": "b", "level": k, "delta_top1_vs_level1": v * np.log2(k)}
            for d, v in (("a", 0.02), ("same-as-a", 0.02), ("c", -0.01)) for k in (1, 2, 4)]
    s = pd.DataFrame(rows)
    g = s.groupby("level")["delta_top1_vs_level1"]
    by_level = pd.DataFrame({"backbone": "b", "level": [1, 2, 4], "n_datasets": 3, "mean_delta_top1": g.mean().values,
                             "delta_ci_low": g.min().values, "delta_ci_high": g.max().values})
    w = StudyPlot()
    qtbot.addWidget(w)
    w.set_data(s, by_level)
    xa = w.dataset_curves["a"].getData()[0]
    xb = w.dataset_curves["same-as-a"].getData()[0]
    np.testing.assert_allclose(xb - xa, DATASET_OFFSET)  # equal curves side by side, not on top of each other
    assert w.dataset_curves["a"].opts["symbol"] != w.dataset_curves["same-as-a"].opts["symbol"]
    assert 3 < MIN_DATASETS_FOR_CI and w.band is None and not w.band_shown
    assert f"no interval is drawn below {MIN_DATASETS_FOR_CI} datasets" in w.note.text()

    panel = StudyPanel()
    qtbot.addWidget(panel)
    assert panel.overall.text() == "no study open"  # not "0 of 1 datasets"
    assert panel.table.textElideMode() == Qt.TextElideMode.ElideLeft
