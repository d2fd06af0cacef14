"""The app in a real X server with Qt's xcb platform plugin (not off-screen), as
``build_scripts/smoke_test.sh`` runs the frozen app: the window appears and paints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("Xvfb", "xdotool", "import")


@pytest.mark.skipif(sys.platform != "linux" or any(shutil.which(t) is None for t in TOOLS),
                    reason="needs Xvfb, xdotool and ImageMagick")
def test_app_window_on_xvfb_with_xcb(tmp_path):
    shot = tmp_path / "xcb.png"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    env.update(HOME=str(tmp_path / "home"), SEMSCALE_GUI_SETTINGS=str(tmp_path / "settings.ini"),
               SEMSCALE_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT),
               SEMSCALE_WINDOW_TIMEOUT="240", SEMSCALE_SETTLE_SECONDS="3")
    r = subprocess.run(["bash", str(ROOT / "build_scripts" / "xvfb_screenshot.sh"), str(shot), sys.executable, "-m",
                        "semscale_gui.app"], env=env, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr
    assert "(xcb)" in r.stdout
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape == (1080, 1920, 3)
    # the window painted: many distinct colours where the window is, not one flat X background
    window = img[:600, :1000].reshape(-1, 3)
    assert len(np.unique(window, axis=0)) > 50
