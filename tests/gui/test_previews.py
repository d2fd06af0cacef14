"""Every panel has a stand-alone preview (``python -m semscale_gui.<panel>``) that opens."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

PANELS = ["dataset_browser", "synonym_editor", "template_editor", "run_panel", "backbone_picker", "plots", "gallery",
          "results_panel", "log_view", "kshot_plot", "study_plot", "study_panel", "kind_dialogs"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", PANELS)
def test_preview_widget_opens(qtbot, gui_env, name):
    mod = importlib.import_module(f"semscale_gui.{name}")
    w = mod.preview()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.isVisible() and w.width() > 100 and w.height() > 100
    assert not w.grab().isNull()


def test_preview_main_modules_run(gui_env, tmp_path):
    """Run each module's real ``__main__`` (two at a time; they close themselves)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SEMSCALE_GUI_PREVIEW_MS="300")
    results = {}
    for i in range(0, len(PANELS), 2):
        procs = {n: subprocess.Popen([sys.executable, "-m", f"semscale_gui.{n}"], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for n in PANELS[i:i + 2]}
        for n, p in procs.items():
            out, _ = p.communicate(timeout=120)
            results[n] = (p.returncode, out)
    for n, (rc, out) in results.items():
        assert rc == 0 and "preview ok" in out and "visible=True" in out, f"{n}: rc={rc}\n{out}"
