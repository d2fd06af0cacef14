"""The main window: Dataset / Synonyms / Results tabs, the Run panel and the Log as docks.

It wires widgets to each other and to the :class:`~semscale_gui.worker.SweepController`;
the only decisions it makes are the ones that span panels (saving the edited labels into
the run folder before a sweep starts, re-running a run.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication, QDockWidget, QFileDialog, QFrame, QLabel, QMainWindow, QMenu, QMessageBox, QScrollArea, QTabWidget,
    QWidget,
)

from semscale_gui import settings
from semscale_gui.meta import __version__
from semscale_gui.dataset_browser import RECENT_KEY, DatasetBrowser
from semscale_gui.dialogs import show_about, show_error, show_warning
from semscale_gui.icons import icon
from semscale_gui.labels_document import LabelsDocument
from semscale_gui.log_view import LogView
from semscale_gui.results_panel import ResultsPanel
from semscale_gui.run_panel import RunPanel
from semscale_gui.study_panel import StudyPanel
from semscale_gui.synonym_editor import SynonymEditor
from semscale_gui.tasks import jobs, run_task
from semscale_gui.widgets import make_action
from semscale_gui.worker import SweepController


def warm_up_engine() -> dict:
    """Import torch/open_clip off the GUI thread and collect what the pickers need.

    The engine's modules are imported here too: imported later, on the sweep's own thread,
    they hold the interpreter lock in long stretches and stall painting (measured with
    ``benchmarks/bench_gui.py``)."""
    import core.embedding.shards  # noqa: F401
    import core.pipeline.runner  # noqa: F401
    from scipy.stats import spearmanr  # noqa: F401

    from core.models.openclip import available_devices, list_models

    from semscale_gui.demo_setup import demo_models

    return {"devices": available_devices(), "demo": demo_models(), "models": list_models()}


CLOSE_WAIT_S = 30.0  # how long closing the window waits for background jobs in all


class MainWindow(QMainWindow):
    engine_ready = Signal()

    def __init__(self, load_demo: bool = True, restore_state: bool = True) -> None:
        super().__init__()
        self.setWindowTitle(f"semscale {__version__} — semantic scaling with CLIP")
        self.setWindowIcon(icon("app"))
        self.engine_info: Optional[dict] = None
        self.controller = SweepController(self)
        self.doc = LabelsDocument(self)
        self._pending_start: Optional[Callable[[], None]] = None
        self._n_skipped = 0
        self._skipped_paths: set[str] = set()
        self.cache_dialog: Optional[QWidget] = None
        self._closing = False
        self._build()
        self._menus()
        self._wire()
        self.resize(1480, 940)
        if restore_state:
            self._restore_window()
        QTimer.singleShot(0, self._start_warmup)
        QTimer.singleShot(0, self._check_user_folders)
        if load_demo:
            QTimer.singleShot(0, self._first_dataset)

    # ---------------------------------------------------------------- layout

    def _build(self) -> None:
        self.browser = DatasetBrowser()
        self.editor = SynonymEditor(self.doc)
        self.results = ResultsPanel()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.browser, icon("dataset"), "1 · Dataset")
        self.tabs.addTab(self.editor, icon("synonyms"), "2 · Synonyms")
        self.tabs.addTab(self.results, icon("results"), "3 · Results")
        self.study_panel = StudyPanel()
        self.tabs.addTab(self.study_panel, icon("dataset"), "4 · Study")
        self.setCentralWidget(self.tabs)

        self.run_panel = RunPanel()
        self.run_dock = QDockWidget("Run", self)
        self.run_dock.setObjectName("runDock")
        # in a scroll area: on a 1280x800 screen the panel is taller than the space beside the Log, and its
        # minimum height would push the window (and the Log, the status bar) below the screen
        run_scroll = QScrollArea()
        run_scroll.setWidgetResizable(True)
        run_scroll.setFrameShape(QFrame.Shape.NoFrame)
        run_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        run_scroll.setWidget(self.run_panel)
        self.run_dock.setWidget(run_scroll)
        self.run_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                                  | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                                  | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.run_dock)

        self.log = LogView()
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("logDock")
        self.log_dock.setWidget(self.log)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.resizeDocks([self.run_dock], [380], Qt.Orientation.Horizontal)
        self.resizeDocks([self.log_dock], [150], Qt.Orientation.Vertical)

        self.dataset_label = QLabel("no dataset")
        self.engine_label = QLabel("engine: loading …")
        self.statusBar().addPermanentWidget(self.dataset_label)
        self.statusBar().addPermanentWidget(self.engine_label)

    def _menus(self) -> None:
        mb = self.menuBar()

        def act(menu: QMenu, text: str, slot, shortcut=None, ico: str = "") -> QAction:
            return make_action(self, text, ico, slot, shortcut=shortcut, add_to=menu)

        f = mb.addMenu("&File")
        act(f, "Open dataset &folder…", self.browser.choose_folder, QKeySequence.StandardKey.Open, "open")
        act(f, "Open dataset &manifest…", self.browser.choose_file, "Ctrl+Shift+O")
        self.recent_menu = f.addMenu("Open &recent dataset")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        act(f, "Open demo dataset", self.open_demo)
        act(f, "Open s&tudy…", self.study_panel.open_dialog)
        f.addSeparator()
        act(f, "&Import labels…", self.editor.import_dialog, "Ctrl+I", "import")
        act(f, "&Export labels…", self.editor.export_dialog, "Ctrl+E", "export")
        f.addSeparator()
        act(f, "Open &run…", self.results.open_run_dialog, "Ctrl+Shift+R", "open")
        act(f, "Export run &CSVs…", self.results.export_csv_dialog, None, "export")
        act(f, "Export &plot (PNG/SVG)…", self.results.export_plot_dialog, "Ctrl+Shift+E", "export")
        self.export_report_action = act(f, "Export re&port (HTML)…", self.results.export_report_dialog, None, "export")
        f.addSeparator()
        self.quit_action = act(f, "&Quit", self.request_quit, QKeySequence.StandardKey.Quit)

        e = mb.addMenu("&Edit")
        e.addAction(self.editor.undo_action)
        e.addAction(self.editor.redo_action)
        e.addSeparator()
        for a in (self.editor.add_name_action, self.editor.remove_name_action, self.editor.rank_up_action,
                  self.editor.rank_down_action):
            e.addAction(a)

        r = mb.addMenu("&Run")
        self.start_action = act(r, "&Start sweep", self.start_sweep, "Ctrl+R", "run")
        self.cancel_action = act(r, "&Cancel", self.cancel_sweep, "Esc", "stop")
        self.cancel_action.setEnabled(False)
        r.addSeparator()
        act(r, "Re-run from run.&json…", self.rerun_dialog, None, "rerun")
        act(r, "Copy run &config", self.results.copy_config, None, "copy")

        v = mb.addMenu("&View")
        for i, name in enumerate(("Dataset", "Synonyms", "Results", "Study")):
            act(v, f"&{name}", lambda _=False, i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}")
        v.addSeparator()
        v.addAction(self.run_dock.toggleViewAction())
        v.addAction(self.log_dock.toggleViewAction())

        h = mb.addMenu("&Help")
        act(h, "&About semscale", lambda: show_about(self))
        act(h, "About &Qt", QApplication.aboutQt)

    def _wire(self) -> None:
        b, ed, rp, res, c = self.browser, self.editor, self.run_panel, self.results, self.controller
        b.dataset_loaded.connect(self._dataset_loaded)
        b.labels_suggested.connect(self._labels_suggested)
        b.load_failed.connect(lambda msg: show_error(self, "Cannot open the dataset", msg))
        b.status_message.connect(self.statusBar().showMessage)
        ed.status_message.connect(lambda m: self.statusBar().showMessage(m, 6000))
        ed.labels_changed.connect(lambda: b.set_labels(self.doc.to_labelset()))
        rp.levels_text_changed.connect(ed.set_levels_text)
        ed.templates.changed.connect(lambda: rp.set_templates_summary(ed.templates.summary()))
        rp.set_templates_summary(ed.templates.summary())
        rp.context_changed.connect(self._push_run_context)
        rp.start_requested.connect(self.start_sweep)
        rp.cancel_requested.connect(self.cancel_sweep)
        res.status_message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        res.rerun_requested.connect(self.rerun)
        res.names.effects_changed.connect(ed.name_effects.set_effects)  # the editor colours names by the last run
        self.study_panel.status_message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.study_panel.open_run_requested.connect(self._open_study_run)
        self.study_panel.log_message.connect(self.log.append_message)
        c.progress.connect(rp.on_progress)
        c.progress.connect(self._engine_busy)
        c.log.connect(self.log.append_message)
        c.level_finished.connect(res.add_level)
        c.table_rows.connect(res.add_table_rows)
        c.level_finished.connect(self.log.append_level)
        c.skipped.connect(self._skipped)
        c.failed.connect(self._failed)
        c.finished.connect(self._finished)
        self._push_run_context()

    def _engine_busy(self, ev) -> None:
        """The status bar says what the engine is doing while a sweep runs, not "ready"."""
        from core.util.events import stage_title

        self.engine_label.setText(f"engine: {stage_title(ev.stage)} {ev.done}/{ev.total}")

    def _push_run_context(self) -> None:
        """The editor's neighbour suggestions use the backbone and cache the Run panel would."""
        from semscale_gui.backbone_picker import spec_title

        rp = self.run_panel
        titles = [spec_title(s) for s in rp.backbones.checked_specs()]
        self.editor.set_run_context(list(zip(titles, rp.spec_fields())), rp.cache_dir(), rp.use_cache.isChecked())

    # ---------------------------------------------------------------- startup

    def _start_warmup(self) -> None:
        def done(info: dict) -> None:
            self.engine_info = info
            self.run_panel.set_devices(info["devices"])
            self.run_panel.backbones.set_engine_info(info["demo"], info["models"])
            dev = ", ".join(d for d in info["devices"] if d != "auto")
            self._engine_ready_text = f"engine ready ({dev})"
            self.engine_label.setText(self._engine_ready_text)
            self.engine_ready.emit()

        def failed(e: Exception, tb: str) -> None:
            self.engine_label.setText("engine unavailable")
            show_error(self, "The engine could not start", f"{type(e).__name__}: {e}", tb)

        run_task(warm_up_engine, done, failed, context=self, lane="engine")  # listing a dataset never waits for torch

    def _check_user_folders(self) -> None:
        """Say once, at startup, when preferences or the data folder cannot be written."""
        from semscale_gui.user_folders import data_problem, settings_problem

        problems = [p for p in (settings_problem(), data_problem()) if p]
        if problems:
            show_warning(self, "Some folders cannot be written",
                         "\n\n".join(problems) + "\n\nThe app still works; choose a writable runs folder in the "
                         "Run panel. Preferences may not be remembered.")

    def _first_dataset(self) -> None:
        """Reopen the last dataset, or on first launch the demo dataset."""
        last = settings.get_str("last/dataset", "")
        if last and Path(last).exists():
            self.browser.open_path(last)
        else:
            self.open_demo()

    def open_demo(self) -> None:
        from semscale_gui.demo_setup import ensure_demo_dataset

        self.statusBar().showMessage("Preparing the demo dataset …")

        def done(path: Optional[Path]) -> None:
            if path is None:
                self.statusBar().showMessage("The demo dataset generator is not installed; open a dataset folder", 8000)
            else:
                self.browser.open_path(path)

        run_task(ensure_demo_dataset, done,
                 lambda e, tb: show_error(self, "Cannot write the demo dataset", str(e), tb), context=self)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in settings.recent(RECENT_KEY):
            self.recent_menu.addAction(p, lambda p=p: self.browser.open_path(p))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    # ---------------------------------------------------------------- dataset & labels

    def _dataset_loaded(self, ds: Any) -> None:
        base = self.browser.path if self.browser.path.is_dir() else self.browser.path.parent
        freq = next((p for p in (base / "class_frequency.csv", base.parent / "class_frequency.csv") if p.is_file()), None)
        self.run_panel.suggest_frequency(freq)
        self.dataset_label.setText(f"{Path(str(self.browser.path)).name}: {len(ds)} images, {len(ds.classes)} classes")
        self.editor.set_data_classes(ds.classes)
        if not self.doc.classes or set(self.doc.classes).isdisjoint(ds.classes):
            from core.labels.labelset import labels_from_classes

            self.doc.load_labelset(labels_from_classes(ds.classes))
        self.browser.set_labels(self.doc.to_labelset())
        from .demo_setup import demo_dataset_dir

        demo = demo_dataset_dir().resolve() in Path(str(self.browser.path)).resolve().parents
        self.run_panel.set_ready_hint(
            f"The demo dataset is open ({len(ds)} images, {len(ds.classes)} classes): <b>Start sweep</b> runs it "
            "with the backbones ticked above, or open your own dataset first." if demo else "Ready")
        if self._pending_start is not None:
            start, self._pending_start = self._pending_start, None
            start()

    def _labels_suggested(self, path: str) -> None:
        # unsaved edits stay one Undo away instead of being replaced silently
        if self.editor.load_file(path, undoable=not self.doc.undo_stack.isClean()):
            self.statusBar().showMessage(f"Loaded names from {path}", 6000)
            self.browser.set_labels(self.doc.to_labelset())

    # ---------------------------------------------------------------- running

    def start_sweep(self, use_cache: Optional[bool] = None) -> bool:
        """Save the edited labels into a new run folder and start the sweep on the worker thread.

        When the cache folder cannot be written a dialog asks what to do and the sweep
        starts (or not) from its answer; this call then returns False.
        """
        from core.util.errors import InputError
        from core.labels.labelset import parse_levels

        if self.controller.running or self.cache_dialog is not None:
            return False
        if self.browser.dataset is None or self.browser.path is None:
            show_error(self, "No dataset", "Open a dataset first (File ▸ Open dataset folder).")
            return False
        specs = self.run_panel.backbones.checked_specs()
        if not specs:
            show_error(self, "No backbone", "Tick at least one backbone in the Run panel.")
            return False
        err = self.editor.templates.error()
        if err:
            show_error(self, "Invalid templates", err)
            return False
        try:
            levels = parse_levels(self.run_panel.levels.text().strip() or None, max(1, self.doc.max_names))
        except InputError as e:
            show_error(self, "Invalid levels", str(e))
            return False
        if use_cache is None and self.run_panel.use_cache.isChecked() and not self._cache_writable():
            return False
        out = self.run_panel.new_run_dir(self.browser.path.name if self.browser.path.name != "images"
                                         else self.browser.path.parent.name)
        try:
            labels_path = self.doc.save(out / "labels.csv")
        except OSError as e:
            show_error(self, "Cannot write to the runs folder", f"{out}: {e.strerror or e}")
            return False
        try:
            config = self.run_panel.build_config(str(self.browser.path), str(labels_path),
                                                 self.editor.templates.value(), out, use_cache=use_cache)
        except InputError as e:
            show_error(self, "Invalid settings", str(e))
            return False
        from semscale_gui.backbone_picker import spec_title

        self.run_panel.remember()
        self._n_skipped = 0
        self._skipped_paths = set()
        self.browser.clear_run_skipped()
        self.results.begin_live(config, levels, [spec_title(s) for s in specs])
        self.run_panel.set_running(True, len(specs))
        self.start_action.setEnabled(False)
        self.cancel_action.setEnabled(True)
        self.log.append_message(f"starting a sweep of {len(levels)} levels with "
                                f"{', '.join(spec_title(s) for s in specs)} → {out}")
        self.tabs.setCurrentWidget(self.results)
        self.results.repaint()  # paint the plots once now, before the worker competes for the interpreter
        self.controller.start(config)
        return True

    def _cache_writable(self) -> bool:
        """True when the cache folder can be written; else open the dialog that asks what to do."""
        from semscale_gui.user_folders import CacheFolderDialog, cache_dir, folder_problem

        folder = cache_dir()
        why = folder_problem(folder)
        if why is None:
            return True

        def chosen(kind: str, _folder: Optional[str]) -> None:
            self.cache_dialog = None
            self._push_run_context()
            if kind == "choose":
                self.log.append_message(f"embedding cache moved to {_folder}")
                self.start_sweep()
            elif kind == "nocache":
                self.log.append_message(f"running without the embedding cache ({folder}: {why})", "warning")
                self.start_sweep(use_cache=False)

        self.cache_dialog = CacheFolderDialog(folder, why, chosen, self)
        self.cache_dialog.open()
        return False

    def cancel_sweep(self) -> None:
        if self.controller.running:
            self.controller.cancel()

    def _skipped(self, path: str, reason: str) -> None:
        if path in self._skipped_paths:  # one image skipped by several backbones is one row of skipped.csv
            return
        self._skipped_paths.add(path)
        self._n_skipped = len(self._skipped_paths)
        self.log.append_skipped(path, reason)
        self.browser.add_run_skipped(path, reason)

    def _failed(self, message: str, details: str) -> None:
        self.log.append_message(message, "error")
        show_error(self, "The sweep failed", message, details)

    def _finished(self, status: str, run_dir: str, summary: Any) -> None:
        self.run_panel.on_finished(status, run_dir)
        self.engine_label.setText(getattr(self, "_engine_ready_text", "engine ready"))
        self.results.finish_live(status, run_dir, summary)
        self.start_action.setEnabled(True)
        self.cancel_action.setEnabled(False)
        skipped = f", {self._n_skipped} images skipped" if self._n_skipped else ""
        self.log.append_message(f"run {status}{skipped}: {run_dir}", "info" if status == "completed" else "warning")
        self.statusBar().showMessage(f"Run {status}: {run_dir}", 10000)
        if run_dir:
            self.browser.load_run_skipped(Path(run_dir) / "skipped.csv")

    def _open_study_run(self, run_dir: str) -> None:
        self.results.open_run(run_dir)
        self.tabs.setCurrentWidget(self.results)

    # ---------------------------------------------------------------- re-run

    def rerun_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Re-run from run.json", settings.get_str("last/run_dir", ""),
                                              "run.json (run.json);;JSON (*.json)")
        if path:
            self.results.open_run(Path(path).parent, on_loaded=lambda run: self.rerun(run.meta))

    def rerun(self, meta: dict) -> None:
        """Load a run's dataset, names, templates and settings into the panels and start it again."""
        from core.labels.labelset import LabelSet

        cfg = meta.get("config", {})
        if self.controller.running:
            show_error(self, "A sweep is running", "Wait for it to finish, or cancel it, before re-running another.")
            return
        if not cfg.get("dataset"):
            show_error(self, "Cannot re-run", "run.json has no dataset in its config")
            return
        self.run_panel.apply_config(cfg)
        if cfg.get("templates") is not None:
            self.editor.templates.set_value(cfg["templates"])
        names = cfg.get("labels_resolved")

        def start() -> None:
            if names:
                self.doc.load_labelset(LabelSet(names={c: list(v) for c, v in names.items()}), undoable=True,
                                       text="Names from run.json")
            self.start_sweep()

        same = self.browser.path is not None and Path(str(self.browser.path)).resolve() == Path(cfg["dataset"]).resolve()
        if same and self.browser.dataset is not None:
            start()
        else:
            self._pending_start = start
            self.browser.open_path(cfg["dataset"])

    # ---------------------------------------------------------------- state

    def _restore_window(self) -> None:
        s = settings.app_settings()
        geo = s.value("window/geometry")
        state = s.value("window/state")
        if isinstance(geo, QByteArray):
            self.restoreGeometry(geo)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def save_window_state(self) -> None:
        s = settings.app_settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        settings.sync()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's API
        super().showEvent(event)
        self._fit_screen()
        handle = self.windowHandle()
        if handle is not None and not getattr(self, "_screen_hooked", False):
            handle.screenChanged.connect(lambda _s: self._fit_screen())
            self._screen_hooked = True

    def _fit_screen(self) -> None:
        """The window never grows past its screen: docks and splitters give way instead."""
        screen = self.screen()
        if screen is None or QApplication.platformName() in ("offscreen", "minimal"):
            return  # no real screen: off-screen renders (tests, --screenshot) keep the size asked for
        avail = screen.availableGeometry().size()
        self.setMaximumSize(avail)
        if self.width() > avail.width() or self.height() > avail.height():
            self.resize(min(self.width(), avail.width()), min(self.height(), avail.height()))

    def request_quit(self) -> None:
        """Quit, asking first while a sweep or study is running (a closed window cancels it)."""
        if not (self.controller.running or self.study_panel.controller.running):
            self._quit_confirmed = True
            self.close()
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Quit semscale",
                          "A sweep is running. Quit anyway?\n\nIt is cancelled; the levels it finished are kept "
                          "in its run folder.", parent=self)
        quit_btn = box.addButton("Cancel the sweep and quit", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Keep running", QMessageBox.ButtonRole.RejectRole)
        box.setObjectName("quitDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(button) -> None:
            if button is quit_btn:
                self._quit_confirmed = True
                self.close()

        box.buttonClicked.connect(answered)
        box.open()  # window-modal, the sweep keeps drawing behind it
        self.quit_box = box

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save the settings, then cancel every background job (sweep, study, suggestions, reads)
        and wait for them with the window hidden and the event loop turning, at most
        ``CLOSE_WAIT_S`` in all; what is still running then is joined when the app ends."""
        if event.spontaneous() and not getattr(self, "_quit_confirmed", False) and not self._closing \
                and (self.controller.running or self.study_panel.controller.running):
            event.ignore()  # the window's close button: ask first, as File > Quit does
            self.request_quit()
            return
        if self._closing:  # closed again while waiting for the jobs
            super().closeEvent(event)
            return
        self._closing = True
        self.run_panel.remember()
        self.save_window_state()
        runner = jobs()
        if not runner.idle:
            if self.controller.running or self.study_panel.controller.running:
                self.log.append_message("closing: stopping the run after the current batch …", "warning")
            self.hide()
            runner.cancel_all()
            runner.wait_idle(CLOSE_WAIT_S)
        super().closeEvent(event)
