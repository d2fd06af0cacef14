"""``build_scripts/xvfb_screenshot.sh``, which the frozen app's smoke test relies on to say
"the window appeared and painted": it must pass a real painted window, fail a window that
never paints and an app that exits, and record which libraries the window's process loaded."""

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
SCRIPT = ROOT / "build_scripts" / "xvfb_screenshot.sh"
TOOLS = ("Xvfb", "xdotool", "import", "convert", "compare")

pytestmark = pytest.mark.skipif(sys.platform != "linux" or any(shutil.which(t) is None for t in TOOLS),
                                reason="needs Xvfb, xdotool and ImageMagick")

# A top-level window titled "semscale …": either a table of coloured, labelled cells (drawn
# by Qt through the xcb plugin) or a bare widget whose palette is one flat colour.
APP = """
import sys
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QTableWidget, QTableWidgetItem, QWidget
app = QApplication(sys.argv)
if sys.argv[1] == "painted":
    w = QTableWidget(12, 6)
    for r in range(12):
        for c in range(6):
            it = QTableWidgetItem(f"cell {r},{c}")
            it.setBackground(QColor.fromHsv((r * 6 + c) * 5 % 360, 200, 230))
            w.setItem(r, c, it)
else:
    w = QWidget()
    pal = w.palette()
    pal.setColor(QPalette.Window, QColor(90, 90, 90))
    w.setPalette(pal)
    w.setAutoFillBackground(True)
w.setWindowTitle("semscale test window")
w.resize(640, 420)
w.show()
sys.exit(app.exec())
"""


def _run(tmp_path: Path, *command: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    env.update(SEMSCALE_WINDOW_TIMEOUT="60", SEMSCALE_SETTLE_SECONDS="1", SEMSCALE_STABLE_TIMEOUT="20")
    return subprocess.run(["bash", str(SCRIPT), str(tmp_path / "shot.png"), *command], env=env,
                          capture_output=True, text=True, timeout=180)


def test_painted_window_passes_and_its_libraries_are_recorded(tmp_path):
    app = tmp_path / "app.py"
    app.write_text(APP)
    r = _run(tmp_path, sys.executable, str(app), "painted")
    assert r.returncode == 0, r.stderr
    assert "window 'semscale test window' (640x420" in r.stdout and "(xcb)" in r.stdout
    screen = np.asarray(Image.open(tmp_path / "shot.png").convert("RGB"))
    window = np.asarray(Image.open(tmp_path / "shot-window.png").convert("RGB"))
    assert screen.shape == (1080, 1920, 3)
    assert window.shape == (420, 640, 3)
    assert len(np.unique(window.reshape(-1, 3), axis=0)) > 50  # many cell colours and text pixels
    # the window's own process mapped Qt's xcb plugin, from this PySide6
    import PySide6

    plugin = (Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so").resolve()
    libs = {Path(p).resolve() for p in (tmp_path / "shot.libs").read_text().split()}
    assert plugin in libs


def test_window_that_never_paints_fails(tmp_path):
    app = tmp_path / "app.py"
    app.write_text(APP)
    r = _run(tmp_path, sys.executable, str(app), "flat")
    assert r.returncode == 1
    assert "looks blank" in r.stderr
    window = np.asarray(Image.open(tmp_path / "shot-window.png").convert("RGB"))
    assert len(np.unique(window.reshape(-1, 3), axis=0)) == 1  # indeed one flat colour


def test_app_that_exits_before_its_window_fails_with_its_output(tmp_path):
    r = _run(tmp_path, sys.executable, "-c", "import sys; print('no display for me'); sys.exit(3)")
    assert r.returncode == 1
    assert "exited before showing a window" in r.stderr
    assert "no display for me" in r.stderr
    assert not (tmp_path / "shot.png").exists()
