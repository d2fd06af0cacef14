"""GUI fixtures: isolated settings/data folders, the main window, a window with data loaded.

Everything runs off-screen (QT_QPA_PLATFORM=offscreen) on tiny data: four classes of a few
generated images and the tiny random-initialised open_clip model from tests/conftest.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")


@pytest.fixture
def gui_env(tmp_path, monkeypatch):
    """Settings, data and runs in a temporary folder, never the user's."""
    monkeypatch.setenv("SEMSCALE_GUI_SETTINGS", str(tmp_path / "gui-settings.ini"))
    monkeypatch.setenv("SEMSCALE_DATA_DIR", str(tmp_path / "gui-data"))
    return tmp_path


@pytest.fixture
def tiny_spec(tiny_model) -> dict:
    cfg, ck = tiny_model
    return {"model": cfg, "pretrained": None, "checkpoint": ck, "label": "tiny"}


@pytest.fixture
def main_window(qtbot, gui_env):
    """The real main window; any sweep still running is cancelled and joined at teardown."""
    from semscale_gui.main_window import MainWindow

    w = MainWindow(load_demo=False, restore_state=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    if w.controller.running:
        w.controller.cancel()
        assert w.controller.wait(60000), "the worker thread did not stop"
    w.close()


@pytest.fixture
def loaded_window(main_window, qtbot, image_folder, labels_csv, tiny_spec):
    """Main window with the tiny dataset open, its labels.csv loaded and the tiny model ticked."""
    w = main_window
    with qtbot.waitSignal(w.browser.dataset_loaded, timeout=30000):
        w.browser.open_path(image_folder)
    qtbot.waitUntil(lambda: w.doc.max_names == 4, timeout=5000)  # labels.csv beside the images was picked up
    w.run_panel.backbones.set_checked([tiny_spec])
    w.run_panel.workers.setValue(0)
    w.editor.templates.set_value("plain")
    return w


def shown(qtbot, widget, width: int, height: int):
    """``widget`` at ``width`` x ``height``, shown, and closed by qtbot when the test ends."""
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    return widget
