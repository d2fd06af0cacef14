"""The app builds a sweep configuration on its GUI thread without importing the engine's heavy parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from semscale_gui.run_panel import RunPanel
panel = RunPanel()
panel.backbones.set_checked([{"model": "demo-resnet", "pretrained": None, "checkpoint": None}])
cfg = panel.build_config("data/images", "data/labels.csv", "plain", "runs/x")
from core.util.config import SweepConfig, DEFAULT_BOOTSTRAP, DEFAULT_ENSEMBLE_SHOTS
print(json.dumps({"type": type(cfg).__name__, "backbones": [b.model for b in cfg.backbones],
                  "bootstrap": cfg.bootstrap == DEFAULT_BOOTSTRAP,
                  "shots": cfg.ensemble_shots == list(DEFAULT_ENSEMBLE_SHOTS),
                  "heavy": sorted(m for m in ("torch", "open_clip", "core.pipeline.runner", "core.models.openclip") if m in sys.modules)}))
"""


def test_run_panel_builds_a_config_without_torch(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT),
           "SEMSCALE_GUI_SETTINGS": str(tmp_path / "settings.ini"), "SEMSCALE_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"type": "SweepConfig", "backbones": ["demo-resnet"], "bootstrap": True, "shots": True,
                   "heavy": []}
