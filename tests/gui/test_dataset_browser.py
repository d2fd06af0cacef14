"""Dataset browser: opening (path, drag-and-drop, recent), classes, lazy thumbnails, problems."""

from __future__ import annotations

import threading

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.gui.conftest import shown


def test_open_folder_lists_classes_and_loads_thumbnails_off_thread(qtbot, gui_env, image_folder):
    from semscale_gui import settings
    from semscale_gui.dataset_browser import RECENT_KEY, DatasetBrowser

    w = shown(qtbot, DatasetBrowser(), 1000, 600)
    with qtbot.waitSignal(w.dataset_loaded, timeout=20000):
        w.open_path(image_folder)
    rows = {w.class_table.item(r, 0).text(): int(w.class_table.item(r, 1).text()) for r in range(w.class_table.rowCount())}
    assert rows == {"blue triangle": 4, "green circle": 4, "red square": 4, "yellow bar": 4}
    assert w.current_class() == w.class_table.item(0, 0).text()

    decode_threads: set[int] = set()
    w.thumbs.thumbnail_ready.connect(lambda _i: None)
    original = type(w.thumbs.dataset).open

    def spy(self, i):
        decode_threads.add(threading.get_ident())
        return original(self, i)

    type(w.thumbs.dataset).open = spy
    try:
        w.select_class("green circle")
        qtbot.waitUntil(lambda: w.thumbs.n_loaded() == 4, timeout=10000)
    finally:
        type(w.thumbs.dataset).open = original
    assert decode_threads and threading.get_ident() not in decode_threads
    qtbot.waitUntil(lambda: w.preview.image.pixmap() is not None and not w.preview.image.pixmap().isNull(), timeout=10000)
    assert "green circle" in w.preview.info.text()
    assert settings.recent(RECENT_KEY)[0] == str(image_folder)

    qtbot.waitUntil(lambda: w.image_check_done, timeout=10000)
    assert "Unreadable files: none" in w.problems.toPlainText()
    assert w.tabs.tabText(1) == "Problems (0)"


def test_unreadable_image_and_missing_names_are_listed(qtbot, gui_env, image_folder):
    from core.labels.labelset import LabelSet
    from semscale_gui.dataset_browser import DatasetBrowser

    (image_folder / "red square" / "broken.png").write_bytes(b"not an image at all")
    w = DatasetBrowser()
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.dataset_loaded, timeout=20000):
        w.open_path(image_folder)
    qtbot.waitUntil(lambda: w.image_check_done, timeout=10000)
    w.set_labels(LabelSet(names={"red square": ["red square"], "green circle": ["green circle"]}))
    text = w.problems.toPlainText()
    assert "red square/broken.png: not an image" in text
    assert "Classes in the data but not in the labels file: 2" in text
    assert w.tabs.tabText(1) == "Problems (3)"


def test_drop_a_folder_opens_it(qtbot, gui_env, image_folder):
    from semscale_gui.dataset_browser import DatasetBrowser

    w = DatasetBrowser()
    qtbot.addWidget(w)
    w.show()
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(image_folder))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, md, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    # Qt only routes a Drop through the event loop during a real drag, so call the handler
    with qtbot.waitSignal(w.dataset_loaded, timeout=20000):
        w.dropEvent(ev)
    assert ev.isAccepted()
    assert len(w.dataset) == 16


def test_bad_path_reports_the_error(qtbot, gui_env, tmp_path):
    from semscale_gui.dataset_browser import DatasetBrowser

    w = DatasetBrowser()
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.load_failed, timeout=10000) as blocker:
        w.open_path(tmp_path / "missing")
    assert "dataset not found" in blocker.args[0]
    assert w.dataset is None


def test_images_skipped_by_a_run_are_listed_in_problems(qtbot, loaded_window, image_folder):
    w = loaded_window
    b = w.browser
    qtbot.waitUntil(lambda: b.image_check_done, timeout=10000)
    (image_folder / "green circle" / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # breaks after listing
    assert "Skipped by the last run" not in b.problems.toPlainText()
    live = []
    w.controller.skipped.connect(lambda path, reason: live.append(path))
    with qtbot.waitSignal(w.controller.finished, timeout=180000) as done:
        assert w.start_sweep()
    assert done.args[0] == "completed"
    assert live == ["green circle/001.png"]
    qtbot.waitUntil(lambda: "Skipped by the last run: 1" in b.problems.toPlainText(), timeout=5000)
    text = b.problems.toPlainText()
    line = next(ln for ln in text.splitlines() if "green circle/001.png" in ln and "Skipped" not in ln)
    assert line.strip().startswith("green circle/001.png: ") and len(line.split(": ", 1)[1]) > 3  # path: reason
    assert b.tabs.tabText(1) == "Problems (1)"
    assert b.run_skipped == [tuple(r) for r in __import__("csv").reader(
        open(f"{done.args[1]}/skipped.csv", encoding="utf-8"))][1:]  # the same as the run's skipped.csv
