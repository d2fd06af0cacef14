"""Export report…: clicked in the Results toolbar and the File menu, written on a worker
thread (the event loop keeps turning), saved where asked, and offered to be opened."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox

from tests.gui.conftest import shown
from tests.report_html import frame, parse_report


class Opened(QObject):
    """Receives the URLs the app asks the desktop to open (Qt's own URL-handler hook)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_export_report_button_writes_in_background_and_offers_to_open(qtbot, gui_env, two_backbone_run, tmp_path,
                                                                     monkeypatch):
    import pandas as pd

    import core.reporting.report as report
    from semscale_gui.results_panel import ResultsPanel

    p = shown(qtbot, ResultsPanel(), 1000, 700)
    assert not p.export_report_action.isEnabled()  # nothing to report yet
    with qtbot.waitSignal(p.run_opened, timeout=30000):
        p.open_run(two_backbone_run)
    assert p.export_report_action.isEnabled()

    target = tmp_path / "exported" / "colleague.html"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    threads = []
    real = report.render
    monkeypatch.setattr(report, "render", lambda src: threads.append(threading.current_thread()) or real(src))

    button = p.toolbar.widgetForAction(p.export_report_action)
    with qtbot.waitSignal(p.status_message, timeout=5000) as started:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert started.args == ["Writing the report…"] and not target.exists()  # the click returned at once
    qtbot.waitUntil(lambda: target.exists() and p.report_export.offer is not None, timeout=60000)
    assert threads and threads[0] is not threading.main_thread()  # drawn on a worker, not the event loop

    page = parse_report(target.read_text(encoding="utf-8"))
    levels = pd.read_csv(two_backbone_run / "levels.csv")
    shown_levels = frame(page.tables["table-levels"])
    assert list(shown_levels["top1"]) == list(levels["top1"]) and list(shown_levels["backbone"]) == list(levels["backbone"])

    box = p.report_export.offer
    assert isinstance(box, QMessageBox) and str(target) in box.text()
    opened = Opened()
    QDesktopServices.setUrlHandler("file", opened, "open")
    try:
        qtbot.mouseClick(p.report_export.open_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(opened.urls), timeout=5000)
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert opened.urls[0].toLocalFile() == str(target)


def test_file_menu_export_report(qtbot, main_window, two_backbone_run, tmp_path, monkeypatch):
    w = main_window
    with qtbot.waitSignal(w.results.run_opened, timeout=30000):
        w.results.open_run(two_backbone_run)
    target = tmp_path / "menu-report.html"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    file_menu = w.menuBar().actions()[0].menu()
    action = next(a for a in file_menu.actions() if a.text().replace("&", "").startswith("Export report"))
    assert action is w.export_report_action
    action.trigger()
    qtbot.waitUntil(lambda: w.results.report_export.offer is not None, timeout=60000)
    assert target.stat().st_size > 10000 and "<svg" in target.read_text()
    w.results.report_export.offer.close()


def test_a_run_folder_that_is_gone_is_an_error_box(qtbot, gui_env, two_backbone_run, tmp_path):
    import shutil

    from semscale_gui.results_panel import ResultsPanel

    run = tmp_path / "run"
    shutil.copytree(two_backbone_run, run)
    p = shown(qtbot, ResultsPanel(), 900, 600)
    with qtbot.waitSignal(p.run_opened, timeout=30000):
        p.open_run(run)
    shutil.rmtree(run)
    with qtbot.waitSignal(p.status_message, timeout=5000):
        assert p.export_report(tmp_path / "r.html")
    qtbot.waitUntil(lambda: p.findChild(QMessageBox, "errorDialog") is not None, timeout=30000)
    box = p.findChild(QMessageBox, "errorDialog")
    assert "no such run or study folder" in box.text() and not (tmp_path / "r.html").exists()
    box.close()


def test_study_tab_exports_the_study_report(qtbot, gui_env, two_backbone_run, tmp_path, monkeypatch):
    """The Study tab's Export report… writes every dataset and the summary (a study folder built
    from two copies of a run and the study's own summary writer)."""
    import json
    import shutil

    from core.study.summary import write_summaries
    from semscale_gui.study_panel import StudyPanel

    study = tmp_path / "study"
    runs = {n: study / "runs" / n for n in ("first", "second")}
    for d in runs.values():
        shutil.copytree(two_backbone_run, d, ignore=shutil.ignore_patterns("logits"))
    write_summaries(study, runs)
    (study / "study.json").write_text(json.dumps({
        "status": "completed", "study_file": None, "protocol": {}, "backbones": [], "versions": {},
        "datasets": [{"name": n, "status": "completed", "run_dir": f"runs/{n}"} for n in runs]}))
    panel = shown(qtbot, StudyPanel(), 1000, 700)
    panel.out_dir = study
    target = tmp_path / "study-report.html"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    from PySide6.QtWidgets import QToolBar

    toolbar = next(t for t in panel.findChildren(QToolBar) if panel.export_report_action in t.actions())
    qtbot.mouseClick(toolbar.widgetForAction(panel.export_report_action), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.report_export.offer is not None, timeout=60000)
    page = parse_report(target.read_text(encoding="utf-8"))
    assert page.groups == ["Study summary", "Dataset first", "Dataset second"]
    assert "ds-second-table-levels" in page.tables
    panel.report_export.offer.close()
