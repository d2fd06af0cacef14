"""Results: the live plots of the running sweep, or of a run directory opened from disk.

Level events are appended to a :class:`ResultsData` and the plots are redrawn at most
every ``REFRESH_MS`` (a single-shot QTimer coalesces bursts), so a fast sweep never
floods the GUI thread. Export copies the run directory's files unchanged and saves any
plot as PNG or SVG.
"""

from __future__ import annotations

import html
import json
import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Optional

import pandas as pd
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QLabel, QSplitter, QTabWidget, QVBoxLayout, QWidget

from semscale_gui import settings
from semscale_gui.dialogs import show_error
from semscale_gui.gallery import GalleryPanel
from semscale_gui.widgets import make_action, text_toolbar, single_shot_timer
from semscale_gui.kshot_plot import KShotPlot
from semscale_gui.plots.answers import AnswersView
from semscale_gui.plots.robustness import RobustnessView
from semscale_gui.plots import (AccuracyPlot, BackboneComparison, ConfusionPlot, EnsemblePlot, FrequencyPlot, LevelsTable,
                    RecallHeatmap, RunComparison, export_graphics)
from core.results.views import CONTROL_LABELS, ResultsData, names_of
from semscale_gui.tasks import AnalysisCache, run_task

REFRESH_MS = 150
EXPORT_SUFFIXES = (".csv", ".json")  # every table and run.json; caches and logits stay behind


PREDICTION_VIEW_COLUMNS = ["image", "true_class", "level", "predicted_class", "correct", "ordering", "backbone", "names",
                           "credit", "n_owners", "predicted_classes", "predicted_label", "score"]  # the last two: the gallery


def read_predictions(path: Path) -> pd.DataFrame:
    from core.results.runs import committed_length, read_csv

    # only whole levels: rows past run.json's committed length, or a last row cut short, are left out
    return read_csv(path, committed_length(path), usecols=lambda c: c in PREDICTION_VIEW_COLUMNS)


def verdict_note(t: dict) -> str:
    """" (McNemar p = 0.29, Holm, …; peak in 78% of resamples)" for an engine verdict, '' for a live estimate."""
    if t.get("p_value") is None:
        return ""
    note = f" (McNemar p = {t['p_value']:.2g}, Holm, {t.get('test', '')}"
    share = (t.get("peak_share") or {})
    s = share.get(str(t["peak_level"]), share.get(t["peak_level"]))
    return note + (f"; peak in {s * 100:.0f}% of resamples)" if s is not None else ")")


def effect_note(r: ResultsData, backbone: str) -> str:
    """"; at the peak, synonyms vs random words +20.0 points […]": the semantic effect at the synonyms' peak."""
    t = r.threshold(backbone)
    effects = (r.summary.get("backbones", {}).get(backbone, {}) or {}).get("semantic_effect") or {}
    parts = []
    for control, by_level in effects.items():
        e = by_level.get(str(t.get("peak_level")), by_level.get(t.get("peak_level")))
        if e:
            parts.append(f"{CONTROL_LABELS.get(control, control)} {e['effect'] * 100:+.1f} points "
                         f"[{e['ci_low'] * 100:+.1f}, {e['ci_high'] * 100:+.1f}]")
    return f"; at the peak, synonyms vs {', '.join(parts)}" if parts else ""


def class_frequency(results: ResultsData, classes: list[str]):
    """Per-class frequency for the confusion view's sorts (None without a frequency table)."""
    from core.results.class_order import frequency_of

    return frequency_of(classes, results.table("frequency")) if results.tables.get("frequency") else None


def load_results(path: str | Path) -> tuple[Any, ResultsData, pd.DataFrame, list[str], Any]:
    """Everything a run shows, read and prepared off the GUI thread:
    (run, results, predictions, classes, per-class frequency)."""
    from core.results.runs import load_run

    run = load_run(path)
    results = ResultsData.from_run(run)
    pred = run.predictions
    if len(pred):
        pred = pred[[c for c in PREDICTION_VIEW_COLUMNS if c in pred.columns]]
    classes = results.classes() or (sorted(set(pred["true_class"].astype(str))) if len(pred) else [])
    return run, results, pred, classes, class_frequency(results, classes)


def templates_note(templates) -> str:
    """"templates simple (3)", or the custom list's count and first line: a run's accuracy depends on them."""
    if isinstance(templates, str):
        try:
            from core.labels.labelset import preset_templates

            n = len(preset_templates(templates)) if templates == "plain" or "open_clip" in sys.modules else None
        except Exception:  # noqa: BLE001 - a name that is no preset (a file) is shown as it is
            n = None
        return f"templates {templates}" + (f" ({n})" if n else "")
    lines = list(templates or [])
    return f"{len(lines)} custom templates" + (f" (“{lines[0]}” …)" if lines else "")


TABS_MIN_WIDTH = 360
GALLERY_MIN_WIDTH = 300


class ResultsPanel(QWidget):
    """Plots + export of one run."""

    rerun_requested = Signal(object)  # run.json contents
    refreshed = Signal()  # after each (throttled) redraw
    predictions_loaded = Signal()
    run_opened = Signal(str)  # a run directory was read and is shown
    status_message = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.results = ResultsData()
        self.predictions = pd.DataFrame()
        self._stale: set[QWidget] = set()
        self._pending_predictions: Optional[tuple[pd.DataFrame, list[str], Any]] = None
        self.analysis = AnalysisCache(self)  # pivots and counts of the runs shown, computed in the background
        self.refresh_count = 0
        self._last_draw = 0.0
        self._predictions_levels = -1
        self._timer = single_shot_timer(self, REFRESH_MS, self.refresh)
        self._build()
        self.refresh()

    def _build(self) -> None:
        tb = text_toolbar()
        act = partial(make_action, self, add_to=tb)  # act(text, icon, slot, tip)

        self.open_action = act("Open run…", "open", self.open_run_dialog, "Open a run directory (run.json)")
        self.export_csv_action = act("Export CSVs…", "export", self.export_csv_dialog,
                                     "Copy the run's CSV files and run.json to a folder")
        self.export_plot_action = act("Export plot…", "export", self.export_plot_dialog,
                                      "Save the plot on screen as PNG or SVG")
        self.export_report_action = act("Export report…", "export", self.export_report_dialog,
                                        "Save one HTML report of this run (figures, tables, verdicts, how to "
                                        "reproduce) that a colleague can open in any browser")
        self.copy_config_action = act("Copy config", "copy", self.copy_config,
                                      "Copy this run's configuration (JSON) to the clipboard")
        self.rerun_action = act("Re-run", "rerun", self.request_rerun, "Run again with this run's settings")
        self.toolbar = tb

        self.header = QLabel()
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.header.setStyleSheet("QLabel { padding: 4px 6px; background: #f4f7fa; border: 1px solid #dde3ea; }")

        self.accuracy = AccuracyPlot()
        self.heatmap = RecallHeatmap(cache=self.analysis)
        self.confusion = ConfusionPlot(cache=self.analysis)
        self.comparison = BackboneComparison()
        self.ensembles = EnsemblePlot()
        self.kshot = KShotPlot()
        self.frequency = FrequencyPlot()
        self.answers = AnswersView()
        self.table = LevelsTable()
        self.compare = RunComparison()
        self.compare.status_message.connect(self.status_message)
        self.compare.add_open_button.clicked.connect(self.compare_open_run)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.accuracy, "Accuracy vs names")
        self.tabs.addTab(self.heatmap, "Per-class recall")
        self.tabs.addTab(self.confusion, "Confusion")
        self.tabs.addTab(self.comparison, "Backbones")
        self.tabs.addTab(self.ensembles, "Synergy")
        self.tabs.addTab(self.kshot, "k-shot")
        self.tabs.addTab(self.frequency, "Frequency")
        self.tabs.addTab(self.answers, "Answers")
        from semscale_gui.names_view import NamesView

        self.names = NamesView()  # which names win, take or lose images (names.csv)
        self.tabs.addTab(self.names, "Names")
        self.tabs.addTab(self.table, "Table")
        self.tabs.addTab(self.compare, "Compare runs")
        self.robustness = RobustnessView()  # robustness.csv: accuracy vs perturbation severity
        self.tabs.addTab(self.robustness, "Robustness")
        self.robustness.images_requested.connect(self.show_images)
        self.tabs.currentChanged.connect(self._tab_changed)
        # the images behind a clicked number, beside the plots (hidden until something is clicked)
        self.gallery = GalleryPanel()
        self.gallery.hide()
        self.gallery.status_message.connect(self.status_message)
        for view in (self.accuracy, self.heatmap, self.confusion, self.ensembles, self.frequency, self.names):
            view.images_requested.connect(self.show_images)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        # explicit minimum widths: the pages' own minimum hints add up past a 1600 px screen once the
        # gallery opens, and Qt would widen the main window (off-screen) rather than squeeze them
        self.tabs.setMinimumWidth(TABS_MIN_WIDTH)
        self.gallery.setMinimumWidth(GALLERY_MIN_WIDTH)
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(self.gallery)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.addWidget(tb)
        lay.addWidget(self.header)
        lay.addWidget(self.splitter, 1)

    def show_images(self, selection: Any) -> None:
        """Open the gallery on the images behind a plot's selection (core.results.drilldown)."""
        if not self.gallery.isVisible():
            self.gallery.show()
            total = max(self.splitter.width(), 800)
            share = 9 if total >= 1100 else 11  # a narrow window keeps the view readable; the gallery scrolls
            self.splitter.setSizes([total * share // 20, total - total * share // 20])
        self.gallery.show_selection(selection)

    # ---------------------------------------------------------------- live

    def begin_live(self, config: Any, planned_levels: list[int], backbones: list[str]) -> None:
        self.analysis.clear()
        self._set_antialiasing(False)  # cheaper repaints while the worker competes for the CPU
        self.results = ResultsData(run_dir=str(config.out), status="running", planned_levels=list(planned_levels),
                                   planned_backbones=list(backbones), meta={"config": config.to_dict()})
        self._reset_predictions()
        self.refresh()

    def _set_antialiasing(self, on: bool) -> None:
        for view in (self.accuracy, self.heatmap, self.confusion, self.comparison, self.ensembles, self.kshot,
                     self.frequency):
            view.view.setAntialiasing(on)

    def _reset_predictions(self) -> None:
        self._predictions_levels = -1
        self.predictions = pd.DataFrame()
        self._pending_predictions = (pd.DataFrame(), [], None)
        self.gallery.set_source(None)  # a new run: its images arrive with its predictions
        self.gallery.hide()
        self._draw_current()

    def _schedule(self) -> None:
        """Coalesce: one redraw ``REFRESH_MS`` after the first of a burst of events.

        (Drawing immediately on the first event was tried: it makes the GUI thread paint
        while the worker is busiest, which costs more than it gains.)
        """
        if not self._timer.isActive():
            self._timer.start()

    def add_level(self, ev: Any) -> None:
        self.results.add_level(ev.row, ev.per_class, ev.backbone)
        self._schedule()

    def add_table_rows(self, table: str, rows: Any) -> None:
        self.results.add_table_rows(table, rows)
        self._schedule()

    def finish_live(self, status: str, run_dir: str, summary: Any) -> None:
        self.results.status = status
        if run_dir:
            self.results.run_dir = run_dir
        if isinstance(summary, dict) and summary:
            self.results.summary = summary
        meta_path = Path(self.results.run_dir or "") / "run.json"
        if meta_path.is_file():
            try:
                self.results.meta = json.loads(meta_path.read_text(encoding="utf-8"))
                self.results.meta["status"] = status
            except (OSError, ValueError):
                pass
        self._reload_levels(Path(self.results.run_dir or "") / "levels.csv")
        self._timer.stop()
        self._set_antialiasing(True)
        self.refresh()
        self.load_predictions()

    def _reload_levels(self, path: Path) -> None:
        """The finished levels.csv replaces the live rows: the paired tests along a curve
        (``p_vs_level1_holm``, ``peak_share``) are only known once its last level is scored,
        and the engine writes them into every row of the file, not into the live events."""
        from core.results.runs import read_csv

        if not path.is_file():
            return
        try:
            rows = read_csv(path).to_dict("records")
        except (OSError, ValueError):
            return
        if len(rows) >= len(self.results.levels):
            self.results.levels = rows
            self.results._curves.clear()

    # ---------------------------------------------------------------- drawing

    def refresh(self) -> None:
        """Redraw from ``self.results`` (the throttled timer calls this).

        Only the view on screen is redrawn now; the others are marked stale and redrawn
        when their tab is shown, so a live run pays for one plot per refresh, not six.
        """
        self.refresh_count += 1
        self._last_draw = time.monotonic()
        self._stale = {self.accuracy, self.heatmap, self.comparison, self.ensembles, self.kshot, self.frequency,
                       self.table, self.answers, self.robustness}
        self._draw_current()
        self.names.set_results(self.results)  # read whichever tab is shown: the synonym editor colours by it
        self._update_header()
        has_run = bool(self.results.run_dir) and (Path(self.results.run_dir) / "run.json").exists()
        for a in (self.export_csv_action, self.export_report_action, self.copy_config_action, self.rerun_action):
            a.setEnabled(has_run and self.results.status != "running")
        self.compare.add_open_button.setEnabled(has_run and self.results.status != "running")
        self.refreshed.emit()

    def _update_header(self) -> None:
        r = self.results
        if not r.run_dir and not r.levels:
            self.header.setText("No results yet. Start a sweep from the Run panel, or open a previous run.")
            return
        cfg = r.meta.get("config", {})
        status_col = {"completed": "#1b7f3b", "running": "#0b5394", "cancelled": "#9a6700",
                      "failed": "#b00020", "interrupted": "#9a6700"}.get(r.status, "#444")
        parts = [f"<b>{Path(r.run_dir).name if r.run_dir else 'run'}</b>",
                 f"<span style='color:{status_col}'><b>{r.status or 'unknown'}</b></span>"]
        if cfg.get("mode"):
            parts.append(f"{cfg['mode']} mode")
        if cfg.get("templates") is not None:
            parts.append(html.escape(templates_note(cfg["templates"])))
        levels = cfg.get("levels_resolved") or r.planned_levels
        if levels:
            done = len({(x['backbone'], names_of(x), x['level']) for x in r.levels})
            kinds = 1 + len(cfg.get("controls") or [])
            total = len(levels) * max(1, len(r.planned_backbones) or len(r.backbones())) * int(cfg.get("orderings", 1) or 1) * kinds
            parts.append(f"levels {', '.join(map(str, levels))} ({min(done * int(cfg.get('orderings', 1) or 1), total)}/{total} scored)")
            settled = (r.summary or {}).get("until_settled")
            if settled and settled.get("candidates"):  # --levels until-settled: where the sweep stopped
                parts.append(f"until settled (of {', '.join(map(str, settled['candidates']))})")
        if r.levels:
            parts.append(f"{r.levels[0].get('n_images', '?')} images")
        lines = [" · ".join(parts)]
        for name in r.backbones():
            t = r.threshold(name)
            if t and t.get("peak_level") is not None:
                trend = {"declining": "falls after it", "plateau": "plateaus after it",
                         "rising": "still rising at the last level",
                         "fluctuating": "rises and falls, ending where it began"}.get(t.get("trend", ""), t.get("trend", ""))
                lines.append(f"{name}: peak top-1 {t['peak_top1'] * 100:.1f}% at {t['peak_level']} "
                             f"name(s) per class; {trend}{verdict_note(t)}{effect_note(r, name)}")
        self.header.setText("<br>".join(lines))

    def _draw_current(self) -> None:
        view = self.tabs.currentWidget()
        if view in self._stale:
            self._stale.discard(view)
            view.set_results(self.results)
        elif view is self.confusion and self._pending_predictions is not None:
            df, classes, freq = self._pending_predictions
            self._pending_predictions = None
            self.confusion.set_predictions(df, classes, freq)

    def _tab_changed(self, _i: int) -> None:
        self._draw_current()
        if self.tabs.currentWidget() is self.confusion and self._predictions_levels != len(self.results.levels):
            self.load_predictions()

    # ---------------------------------------------------------------- predictions (background)

    def load_predictions(self) -> None:
        path = self.results.predictions_path
        if path is None:
            return
        n_levels = len(self.results.levels)
        results = self.results
        classes = results.classes()

        def read() -> tuple[pd.DataFrame, list[str], Any]:
            df = read_predictions(path)
            cls = classes or sorted(set(df["true_class"].astype(str)))
            return df, cls, class_frequency(results, cls)

        def done(out: tuple[pd.DataFrame, list[str], Any]) -> None:
            if self.results.predictions_path != path:
                return
            self._set_predictions(*out, n_levels=n_levels)

        run_task(read, done, lambda e, _tb: self.status_message.emit(f"cannot read {path}: {e}"),
                 pool=self.analysis.pool, context=self)

    def _set_predictions(self, df: pd.DataFrame, classes: list[str], freq: Any, n_levels: int) -> None:
        from core.results.drilldown import RunImages

        self._predictions_levels = n_levels
        self._pending_predictions = (df, classes, freq)
        self.predictions = df
        meta = dict(self.results.meta, summary=self.results.summary or self.results.meta.get("summary", {}))
        if self.results.run_dir:
            self.gallery.set_source(RunImages(Path(self.results.run_dir), df, classes, RunImages.scales_of(meta), meta))
        self._draw_current()
        self.predictions_loaded.emit()

    def compare_open_run(self, *_args) -> None:
        """Add the run shown to the Compare runs tab."""
        if self.results.run_dir:
            self.compare.add_runs([self.results.run_dir])

    # ---------------------------------------------------------------- opening runs

    def open_run_dialog(self) -> None:
        start = settings.get_str("last/run_dir", str(settings.runs_dir()))
        d = QFileDialog.getExistingDirectory(self, "Open run directory", start)
        if d:
            self.open_run(d)

    def open_run(self, path: str | Path, on_loaded=None) -> None:
        """Read a run directory (and prepare its tables) in the background and show it."""
        if self.results.status == "running":
            show_error(self, "A sweep is running", "Open a previous run once the current sweep has finished "
                       "(or cancel it): its results are being drawn here.")
            return

        def done(out: tuple) -> None:
            run, results, pred, classes, freq = out
            settings.set_value("last/run_dir", str(Path(run.dir).parent))
            self.results = results
            self.analysis.clear()
            self._reset_predictions()
            self.refresh()
            if results.predictions_path is not None:
                self._set_predictions(pred, classes, freq, n_levels=len(results.levels))
            self.status_message.emit(f"Opened run {run.dir} ({run.status})")
            self.run_opened.emit(str(run.dir))
            if on_loaded is not None:
                on_loaded(run)

        def failed(e: Exception, tb: str) -> None:
            from core.util.errors import InputError

            show_error(self, "Cannot open the run", str(e), "" if isinstance(e, InputError) else tb)

        run_task(lambda: load_results(path), done, failed, pool=self.analysis.pool, context=self)

    # ---------------------------------------------------------------- export

    def export_csv_dialog(self) -> None:
        if not self.results.run_dir:
            return
        d = QFileDialog.getExistingDirectory(self, "Export the run's files to", settings.get_str("last/export_dir", str(Path(self.results.run_dir).parent) if self.results.run_dir
                                                               else str(Path.home())))
        if d:
            settings.set_value("last/export_dir", d)
            self.export_csvs(Path(d) / Path(self.results.run_dir).name)

    def export_csvs(self, dest: str | Path) -> list[Path]:
        """Copy the run directory's files into ``dest`` for people: byte for byte, except that a
        CSV cell a spreadsheet would run as a formula gets a leading quote (core.util.tables.neutralise)."""
        from core.util.tables import neutralise_csv

        src = Path(self.results.run_dir or "")
        dest = Path(dest)
        try:
            dest.mkdir(parents=True, exist_ok=True)
            out = []
            for f in sorted(src.iterdir()):
                if f.is_file() and f.suffix in EXPORT_SUFFIXES and not f.name.endswith(".tmp"):
                    if f.suffix == ".csv":
                        neutralise_csv(f, dest / f.name)
                        out.append(dest / f.name)
                    else:
                        out.append(Path(shutil.copy2(f, dest / f.name)))
        except OSError as e:
            show_error(self, "Export failed", f"{dest}: {e.strerror or e}")
            return []
        self.status_message.emit(f"Exported {len(out)} files to {dest}")
        return out

    def export_report_dialog(self) -> None:
        if not self.results.run_dir:
            return
        run = Path(self.results.run_dir)
        start = Path(settings.get_str("last/export_dir", str(run.parent))) / f"{run.name}-report.html"
        path, _ = QFileDialog.getSaveFileName(self, "Export report", str(start), "HTML report (*.html)")
        if path:
            settings.set_value("last/export_dir", str(Path(path).parent))
            self.export_report(path)

    def export_report(self, path: str | Path) -> bool:
        """Write the report of the run shown to ``path`` in the background (semscale_gui.report_export)."""
        from semscale_gui.report_export import ReportExport

        if not self.results.run_dir:
            return False
        if getattr(self, "report_export", None) is None:
            self.report_export = ReportExport(self)
            self.report_export.saved.connect(lambda p: self.status_message.emit(f"Report saved to {p}"))
        started = self.report_export.start(self.results.run_dir, path)
        self.status_message.emit("Writing the report…" if started else "A report is being written already")
        return started

    def current_plot_view(self):
        w = self.tabs.currentWidget()
        return getattr(w, "view", None)

    def export_plot_dialog(self) -> None:
        view = self.current_plot_view()
        if view is None:
            self.status_message.emit("The table has no plot to export; use Export CSVs")
            return
        name = self.tabs.tabText(self.tabs.currentIndex()).lower().replace(" ", "-")
        start = Path(settings.get_str("last/export_dir", self.results.run_dir or str(Path.home()))) / f"{name}.png"
        path, _ = QFileDialog.getSaveFileName(self, "Export plot", str(start), "PNG image (*.png);;SVG vector (*.svg)")
        if path:
            settings.set_value("last/export_dir", str(Path(path).parent))
            self.export_plot(path)

    def export_plot(self, path: str | Path, view=None) -> Optional[Path]:
        view = view or self.current_plot_view()
        if view is None:
            return None
        try:
            out = export_graphics(view, path)
        except OSError as e:
            show_error(self, "Export failed", str(e))
            return None
        self.status_message.emit(f"Plot saved to {out}")
        return out

    def config_json(self) -> str:
        return json.dumps(self.results.meta.get("config", {}), indent=2, default=str)

    def copy_config(self) -> None:
        QGuiApplication.clipboard().setText(self.config_json())
        self.status_message.emit("Run configuration copied to the clipboard")

    def request_rerun(self) -> None:
        if self.results.meta.get("config"):
            self.rerun_requested.emit(self.results.meta)


def preview() -> QWidget:
    from semscale_gui.plots import sample_results

    w = ResultsPanel()
    w.results = sample_results()
    w.results.run_dir = "/tmp/example-run"
    w.results.status = "completed"
    w.refresh()
    w.resize(1000, 650)
    w.setWindowTitle("semscale — results preview")
    return w


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
