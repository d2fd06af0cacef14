"""The app's entry points: --self-test end to end, and the window's menus and settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.gui.conftest import shown

ROOT = Path(__file__).resolve().parents[2]


def test_self_test_passes(gui_env):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    p = subprocess.run([sys.executable, "-m", "semscale_gui.app", "--self-test", "--timeout", "240"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert p.returncode == 0, p.stdout + p.stderr
    assert lines[-1].startswith("self-test passed:"), p.stdout
    assert len(lines) == 1, p.stdout


def test_menus_have_shortcuts_and_about_shows_versions(qtbot, main_window):
    from PySide6.QtWidgets import QMessageBox

    w = main_window
    titles = [a.text() for a in w.menuBar().actions()]
    assert titles == ["&File", "&Edit", "&Run", "&View", "&Help"]
    assert w.start_action.shortcut().toString() == "Ctrl+R"
    help_menu = w.menuBar().actions()[-1].menu()
    help_menu.actions()[0].trigger()
    box = next(b for b in w.findChildren(QMessageBox) if b.objectName() == "aboutDialog")
    assert "PySide6" in box.informativeText() and "semscale" in box.text()
    box.close()


def test_window_state_and_last_folders_persist(qtbot, gui_env, image_folder):
    from semscale_gui import settings
    from semscale_gui.main_window import MainWindow

    w = shown(qtbot, MainWindow(load_demo=False, restore_state=False), 1234, 777)
    with qtbot.waitSignal(w.browser.dataset_loaded, timeout=20000):
        w.browser.open_path(image_folder)
    w.run_panel.device.setCurrentText("cpu")
    w.log_dock.hide()
    w.close()
    assert not settings.app_settings().value("window/geometry").isEmpty()
    assert settings.get_str("last/dataset") == str(image_folder)
    assert settings.get_str("run/device") == "cpu"

    w2 = MainWindow(load_demo=True, restore_state=True)  # reopens the last dataset, not the demo
    qtbot.addWidget(w2)
    w2.show()
    qtbot.waitUntil(lambda: w2.browser.dataset is not None, timeout=20000)
    assert w2.browser.path == image_folder
    assert w2.log_dock.isHidden()  # dock layout restored from QSettings
    assert w2.run_panel.device.currentText() == "cpu"
    w2.close()


def test_first_launch_opens_the_demo_dataset(qtbot, gui_env):
    import pytest

    pytest.importorskip("core.demo.data")
    from semscale_gui.main_window import MainWindow

    w = MainWindow(load_demo=True, restore_state=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.browser.dataset is not None, timeout=60000)
    assert w.browser.path.parent.name == "demo"
    assert str(w.browser.path).startswith(str(gui_env / "gui-data"))
    qtbot.waitUntil(lambda: w.doc.max_names == 8, timeout=10000)  # the demo's ranked names were loaded
    assert "Start sweep</b> runs it" in w.run_panel.stage.text()  # a first start says what Start does
    w.close()


def test_both_demo_backbones_listed_and_ticked_on_first_launch(qtbot, gui_env):
    from semscale_gui.backbone_picker import BackbonePicker

    p = BackbonePicker()
    qtbot.addWidget(p)
    p.set_engine_info({"demo-resnet": {"description": "small ResNet"}, "demo-vit": {"description": "small ViT"}}, [])
    titles = [p.list.item(i).text() for i in range(p.list.count())]
    assert titles == ["demo-resnet", "demo-vit"]
    assert sorted(s["model"] for s in p.checked_specs()) == ["demo-resnet", "demo-vit"]
