"""The app writes only to the user's folders and says so clearly when it cannot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox


def _blocked(tmp_path: Path) -> Path:
    """A cache path that cannot be created: a plain file sits where its parent folder should be."""
    (tmp_path / "not-a-folder").write_text("a file, not a folder")
    return tmp_path / "not-a-folder" / "cache"


def _cache_dialog(qtbot, w):
    qtbot.waitUntil(lambda: w.cache_dialog is not None and w.cache_dialog.isVisible(), timeout=5000)
    return w.cache_dialog


def test_unwritable_cache_folder_asks_and_can_run_without_cache(qtbot, loaded_window, tmp_path, monkeypatch):
    blocked = _blocked(tmp_path)
    monkeypatch.setenv("SEMSCALE_CACHE_DIR", str(blocked))
    w = loaded_window
    assert not w.start_sweep()  # nothing starts until the user decides
    box = _cache_dialog(qtbot, w)
    assert box.objectName() == "cacheFolderDialog"
    assert str(blocked) in box.text() and "Choose another folder" in box.choose_button.text()
    assert not w.controller.running
    with qtbot.waitSignal(w.controller.finished, timeout=180000) as done:
        box.nocache_button.click()
    status, run_dir, _ = done.args
    assert status == "completed"
    meta = json.loads((Path(run_dir) / "run.json").read_text())
    assert meta["config"]["use_cache"] is False
    assert w.run_panel.use_cache.isChecked()  # only this run went without; the setting is unchanged
    assert blocked.parent.is_file()


def test_unwritable_cache_folder_choose_another(qtbot, loaded_window, tmp_path, monkeypatch):
    from semscale_gui import settings
    from semscale_gui.user_folders import CACHE_KEY

    monkeypatch.setenv("SEMSCALE_CACHE_DIR", str(_blocked(tmp_path)))
    other = tmp_path / "my-cache"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(other)))
    w = loaded_window
    assert not w.start_sweep()
    box = _cache_dialog(qtbot, w)
    with qtbot.waitSignal(w.controller.finished, timeout=180000) as done:
        box.choose_button.click()
    assert done.args[0] == "completed"
    assert settings.get_str(CACHE_KEY) == str(other)
    meta = json.loads((Path(done.args[1]) / "run.json").read_text())
    assert meta["config"]["cache_dir"] == str(other) and meta["config"]["use_cache"] is True
    assert list(other.glob("*.sqlite"))  # the cache went where the user said
    assert w.editor._cache_dir == str(other)  # suggestions share the same cache


def test_cancel_leaves_everything_as_it_was(qtbot, loaded_window, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSCALE_CACHE_DIR", str(_blocked(tmp_path)))
    w = loaded_window
    runs = Path(w.run_panel.out_dir.text())
    before = set(runs.iterdir()) if runs.is_dir() else set()
    assert not w.start_sweep()
    _cache_dialog(qtbot, w).cancel_button.click()
    qtbot.waitUntil(lambda: w.cache_dialog is None, timeout=5000)
    assert not w.controller.running
    assert (set(runs.iterdir()) if runs.is_dir() else set()) == before  # no half-made run folder


def test_startup_says_when_the_data_folder_cannot_be_written(qtbot, gui_env, tmp_path, monkeypatch):
    from semscale_gui.main_window import MainWindow

    monkeypatch.setenv("SEMSCALE_DATA_DIR", str(_blocked(tmp_path)))
    w = MainWindow(load_demo=False, restore_state=False)  # must not crash
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: any(b.isVisible() for b in w.findChildren(QMessageBox)), timeout=5000)
    box = next(b for b in w.findChildren(QMessageBox) if b.isVisible())
    assert "cannot be written" in box.text() and str(_blocked(tmp_path)) in box.text()
    box.close()
    w.close()


def test_nothing_is_written_inside_a_frozen_bundle(tmp_path, monkeypatch):
    from semscale_gui import user_folders

    bundle = tmp_path / "semscale"  # PyInstaller one-folder: semscale/semscale + semscale/_internal/
    (bundle / "_internal").mkdir(parents=True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle / "semscale"))
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle / "_internal"), raising=False)
    for inside in (bundle / "cache", bundle / "_internal" / "embeddings"):
        assert "application's own folder" in user_folders.folder_problem(inside)
        assert not inside.exists()
    assert user_folders.folder_problem(tmp_path / "user-cache") is None
