"""Linear probes in the app: the Run panel's probe options, and the k-shot tab's probe and
zero-shot curves after a real sweep started from the window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QPoint, Qt

from core.util.errors import InputError


def test_run_panel_probe_options(qtbot, main_window, tmp_path):
    panel = main_window.run_panel
    assert not panel.probes.isChecked() and not panel.probe_shots.isEnabled()
    cfg = panel.build_config(str(tmp_path), str(tmp_path / "labels.csv"), "plain", tmp_path / "run")
    assert cfg.probe_shots == []
    qtbot.mouseClick(panel.probes, Qt.MouseButton.LeftButton, pos=QPoint(6, panel.probes.height() // 2))
    assert panel.probes.isChecked() and panel.probe_shots.isEnabled() and panel.probe_solver.isEnabled()
    panel.probe_shots.clear()
    qtbot.keyClicks(panel.probe_shots, "2, 8, all")
    panel.probe_solver.setCurrentIndex(panel.probe_solver.findData("clip_benchmark"))
    cfg = panel.build_config(str(tmp_path), str(tmp_path / "labels.csv"), "plain", tmp_path / "run")
    assert cfg.probe_shots == [2, 8, "all"] and cfg.probe_solver == "clip_benchmark"
    panel.probe_shots.clear()
    qtbot.keyClicks(panel.probe_shots, "2,half")
    with pytest.raises(InputError, match="half") as e:
        panel.build_config(str(tmp_path), str(tmp_path / "labels.csv"), "plain", tmp_path / "run")
    assert e.value.field == "probe-shots"
    # a run's config shows again (re-run)
    panel.apply_config({"probe_shots": [1, "all"], "probe_solver": "optimum"})
    assert panel.probes.isChecked() and panel.probe_shots.text() == "1,all"
    assert panel.probe_solver.currentData() == "optimum"
    panel.apply_config({})
    assert not panel.probes.isChecked()


def test_sweep_with_probes_draws_probe_and_zero_shot(qtbot, loaded_window):
    w = loaded_window
    w.run_panel.ensembles.setChecked(False)
    qtbot.mouseClick(w.run_panel.probes, Qt.MouseButton.LeftButton, pos=QPoint(6, w.run_panel.probes.height() // 2))
    w.run_panel.probe_shots.clear()
    qtbot.keyClicks(w.run_panel.probe_shots, "1,2,all")
    with qtbot.waitSignal(w.controller.finished, timeout=180000) as done:
        assert w.start_sweep()
    status, run_dir, _ = done.args
    assert status == "completed"
    probes = pd.read_csv(Path(run_dir) / "probes.csv", keep_default_na=False, na_values=[""])
    mean = probes[probes["split"].astype(str) == "mean"]
    mean.index = mean["shots"].astype(str)
    assert list(mean.index) == ["1", "2", "all"]

    res = w.results
    res.tabs.setCurrentWidget(res.kshot)
    plot = res.kshot
    qtbot.waitUntil(lambda: "probe" in plot.curves, timeout=10000)
    assert plot.probe_backbone.currentText() == "tiny"
    shots, top1, lo, hi = plot.curves["probe"]
    assert list(shots) == ["1", "2", "all"]
    assert np.allclose(top1, mean["top1"].astype(float).to_numpy() * 100)
    assert np.all(lo <= top1 + 1e-9) and np.all(hi >= top1 - 1e-9)
    assert np.allclose(plot.curves["zeroshot"][1], mean["zeroshot_top1"].astype(float).to_numpy() * 100)
    legend = [item[1].text for item in plot.legend.items]
    assert any("linear probe of tiny" in t for t in legend) and any("zero-shot tiny" in t for t in legend)
    ticks = [label for _, label in plot.plot.getAxis("bottom")._tickLevels[0]]
    assert ticks == ["1", "2", "all"]
    assert "Linear probe of <b>tiny</b>" in plot.summary.text()
