"""Compare runs: the accuracy curves of several run folders in one plot, and their differences.

Typical questions: flat against pooled mode, two template sets, two label files, one
backbone against another run's. Each run folder is read (run.json and levels.csv only)
in a background task; the table lists, per run and backbone, what differs from the first
run's config and the top-1 difference at each level (points, same backbone when the first
run has it, else its first backbone).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QListWidget, QListWidgetItem, QPushButton,
    QSizePolicy, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from semscale_gui import settings
from core.results.compare import (COMPARED_KEYS, ComparedRun, comparison_table, config_differences,  # noqa: F401
                                  names_differences, read_compared_run)
from core.results.compare import compare_names, labels_differ

from semscale_gui.tasks import run_task
from semscale_gui.plots.base import _style_plot, colour, tick_font

class RunComparison(QWidget):
    """Overlay of several runs' accuracy curves (legend per run) and a table of differences."""

    changed = Signal()  # after a run was added or removed and the views redrawn
    status_message = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.runs: list[ComparedRun] = []
        self._loading = 0
        self.add_button = QPushButton("Add run…")
        self.add_button.setToolTip("Add a run folder (run.json) to the comparison")
        self.add_button.clicked.connect(self.add_run_dialog)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.add_open_button = QPushButton("Add the open run")
        self.add_open_button.setToolTip("Add the run shown in the other Results tabs")
        self.add_open_button.setEnabled(False)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.hint = QLabel()
        self.hint.setStyleSheet("color: #666;")
        self.hint.setWordWrap(True)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setMaximumWidth(320)
        self.list.setMinimumWidth(140)
        self.list.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.view = pg.PlotWidget()
        self.plot: pg.PlotItem = self.view.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        # beside the plot, as in the accuracy plot: inside it would hide a curve
        self.legend = pg.LegendItem(labelTextSize="10pt")
        self.legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.plot.layout.addItem(self.legend, 2, 3)
        self.plot.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignTop)
        self.plot.legend = self.legend  # curves given a name= are listed in it
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.setWordWrap(False)
        buttons = QHBoxLayout()
        for b in (self.add_button, self.add_open_button, self.remove_button, self.clear_button):
            buttons.addWidget(b)
        buttons.addWidget(self.hint, 1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QLabel("Runs (the first is the reference)"))
        ll.addWidget(self.list, 1)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(left)
        top.addWidget(self.view)
        top.setStretchFactor(1, 1)
        top.setSizes([190, 850])
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.table)
        split.addWidget(self._names_box())
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        split.setSizes([520, 200, 200])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(buttons)
        lay.addWidget(split, 1)
        self.frame = pd.DataFrame()
        self._redraw()

    # ---------------------------------------------------------------- runs

    def add_run_dialog(self) -> None:
        start = settings.get_str("last/run_dir", str(settings.runs_dir()))
        d = QFileDialog.getExistingDirectory(self, "Add a run to compare", start)
        if d:
            self.add_runs([d])

    def add_runs(self, paths: Sequence[str | Path]) -> None:
        """Read each run folder in the background; they are listed in the order given."""
        slots: list[Optional[ComparedRun]] = [None] * len(paths)
        left = [len(paths)]
        self._loading += len(paths)
        self._redraw()

        def finish_one() -> None:
            left[0] -= 1
            self._loading -= 1
            if left[0] == 0:
                known = {r.path.resolve() for r in self.runs}
                for r in slots:
                    if r is not None and r.path.resolve() not in known:
                        self.runs.append(r)
                        known.add(r.path.resolve())
                self._retitle()
                self._redraw()

        for i, p in enumerate(paths):
            def done(run: ComparedRun, i=i) -> None:
                slots[i] = run
                finish_one()

            def failed(e: Exception, _tb: str, p=p) -> None:
                self.status_message.emit(f"Cannot compare {p}: {e}")
                finish_one()

            run_task(lambda p=p: read_compared_run(p), done, failed, context=self)

    def _retitle(self) -> None:
        """Folder names, with their parent where two runs share a name."""
        names = [r.path.name for r in self.runs]
        for r in self.runs:
            r.title = r.path.name if names.count(r.path.name) == 1 else f"{r.path.parent.name}/{r.path.name}"

    def remove_selected(self) -> None:
        rows = sorted({self.list.row(it) for it in self.list.selectedItems()}, reverse=True)
        for r in rows:
            del self.runs[r]
        self._retitle()
        self._redraw()

    def clear(self) -> None:
        self.runs = []
        self._redraw()

    @property
    def loading(self) -> bool:
        return self._loading > 0

    # ---------------------------------------------------------------- drawing

    def curve_labels(self) -> list[str]:
        """Legend entries, one per run (and backbone when a run has several)."""
        out = []
        for r in self.runs:
            many = len(r.curves) > 1
            out += [f"{r.title} · {b}" if many else r.title for b in r.curves]
        return out

    def _redraw(self) -> None:
        plot = self.plot
        plot.clear()
        self.legend.clear()
        _style_plot(plot, "top-1 accuracy (%)", "names per class (log₂ scale)")
        self.list.clear()
        ticks: dict[float, str] = {}
        labels = iter(self.curve_labels())
        i = 0
        for r in self.runs:
            item = QListWidgetItem(r.title)
            item.setToolTip(f"{r.path} ({r.status})")
            item.setForeground(colour(i))
            self.list.addItem(item)
            for b, (lv, top1) in r.curves.items():
                xs = np.log2(np.maximum(lv, 1))
                col = colour(i)
                style = Qt.PenStyle.SolidLine if i < 8 else Qt.PenStyle.DashLine
                plot.plot(xs, top1 * 100, pen=pg.mkPen(col, width=2.5, style=style), symbol="o", symbolSize=7,
                          symbolBrush=col, symbolPen="w", name=next(labels))
                for x, v in zip(xs, lv):
                    ticks[float(x)] = str(int(v))
                i += 1
        if not ticks:
            ticks = {math.log2(v): str(v) for v in (1, 2, 4, 8)}
        plot.getAxis("bottom").setTicks([sorted(ticks.items()), []])
        xs_all = list(ticks)
        plot.setXRange(min(xs_all) - 0.25, max(xs_all) + 0.25, padding=0)
        if self.runs:
            plot.enableAutoRange(axis="y")
        else:
            plot.setYRange(0, 100)
        if self._loading:
            self.hint.setText(f"reading {self._loading} run folder(s) …")
        elif not self.runs:
            self.hint.setText("Add two or more run folders (e.g. flat vs pooled, two template sets, two label files) "
                              "to overlay their accuracy curves.")
        else:
            self.hint.setText(f"{len(self.runs)} run(s); differences are in points of top-1 against the first run")
        self.frame = comparison_table(self.runs)
        self._fill_table()
        self._refresh_names_choice()
        self.changed.emit()

    def _fill_table(self) -> None:
        df, t = self.frame, self.table
        t.clear()
        t.setRowCount(len(df))
        t.setColumnCount(len(df.columns))
        t.setHorizontalHeaderLabels([str(c) for c in df.columns])
        for r, row in enumerate(df.itertuples(index=False)):
            for c, v in enumerate(row):
                text = "" if isinstance(v, float) and math.isnan(v) else (f"{v:+.2f}" if str(df.columns[c]).startswith("Δ")
                                                                          else str(v))
                item = QTableWidgetItem(text)
                item.setToolTip(f"{df.columns[c]}: {text}")
                if isinstance(v, (int, float, np.floating, np.integer)):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    if str(df.columns[c]).startswith("Δ") and not math.isnan(float(v)) and abs(float(v)) >= 0.005:
                        item.setForeground(QColor("#1b7f3b") if v > 0 else QColor("#b00020"))
                if c == 0:
                    item.setFont(tick_font())
                t.setItem(r, c, item)
        t.resizeColumnsToContents()
        for c in range(t.columnCount()):
            t.setColumnWidth(c, min(280, t.columnWidth(c) + 8))

    # ---------------------------------------------------------------- names by class

    def _names_box(self) -> QWidget:
        """Per class, the names another run added, removed or re-ranked against the reference and the
        recall change (shown when label files differ; read in the background)."""
        self.names_frame = pd.DataFrame()
        self._names_job = 0
        self.names_loading = False
        self.names_label = QLabel("Names by class against the first run:")
        self.names_choice = QComboBox()
        self.names_choice.setToolTip("A run whose names differ from the first run's")
        self.names_choice.currentIndexChanged.connect(lambda _i: self._load_names())
        self.names_table = QTableWidget(0, 0)
        self.names_table.verticalHeader().setVisible(False)
        self.names_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.names_table.setSortingEnabled(True)
        self.names_box = QWidget()
        lay = QVBoxLayout(self.names_box)
        lay.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.names_label)
        head.addWidget(self.names_choice, 1)
        lay.addLayout(head)
        lay.addWidget(self.names_table, 1)
        self.names_box.setVisible(False)
        return self.names_box

    def _refresh_names_choice(self) -> None:
        ref = self.runs[0] if self.runs else None
        differing = [r for r in self.runs[1:] if labels_differ(ref.config, r.config)] if ref else []
        before = self.names_choice.currentData()
        self.names_choice.blockSignals(True)
        self.names_choice.clear()
        for r in differing:
            self.names_choice.addItem(r.title, str(r.path))
        j = self.names_choice.findData(before)
        self.names_choice.setCurrentIndex(max(j, 0))
        self.names_choice.blockSignals(False)
        self.names_box.setVisible(bool(differing))
        if differing:
            self.names_label.setText(f"Names by class against {ref.title}:")
            self._load_names()
        else:
            self.names_frame = pd.DataFrame()
            self.names_table.setRowCount(0)

    def _load_names(self) -> None:
        other = self.names_choice.currentData()
        if not self.runs or not other:
            return
        ref = str(self.runs[0].path)
        self._names_job += 1
        job = self._names_job
        self.names_loading = True

        def done(df: pd.DataFrame) -> None:
            if job == self._names_job:
                self.names_loading = False
                self.names_frame = df
                self._fill_names()

        def failed(e: Exception, _tb: str) -> None:
            if job == self._names_job:
                self.names_loading = False
                self.status_message.emit(f"Cannot compare names: {e}")

        run_task(lambda: compare_names(ref, other), done, failed, context=self)

    def _fill_names(self) -> None:
        df, t = self.names_frame, self.names_table
        changed = df[(df["added"] != "") | (df["removed"] != "") | (df["reranked"] != "")] if len(df) else df
        t.setSortingEnabled(False)
        t.clear()
        cols = ["class", "added", "removed", "reranked", "recall_before", "recall_after", "recall_change"]
        heads = ["class", "added", "removed", "re-ranked", "recall before (%)", "recall after (%)", "Δ recall (points)"]
        t.setRowCount(len(changed))
        t.setColumnCount(len(cols))
        t.setHorizontalHeaderLabels(heads)
        for r, row in enumerate(changed[cols].itertuples(index=False)):
            for c, v in enumerate(row):
                item = QTableWidgetItem()
                if c >= 4:
                    num = float(v) * 100
                    item.setData(Qt.ItemDataRole.DisplayRole, "" if math.isnan(num) else round(num, 2))
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    if c == 6 and not math.isnan(num) and abs(num) >= 0.005:
                        item.setForeground(QColor("#1b7f3b") if num > 0 else QColor("#b00020"))
                else:
                    item.setText(str(v))
                item.setToolTip(f"{heads[c]}: {item.text()}")
                t.setItem(r, c, item)
        t.setSortingEnabled(True)
        t.resizeColumnsToContents()
        for c in range(t.columnCount()):
            t.setColumnWidth(c, min(280, t.columnWidth(c) + 8))
        level = df["level"].iloc[0] if len(df) else None
        if len(df):
            self.names_label.setText(f"Names by class against {self.runs[0].title if self.runs else '?'}: "
                                     f"{len(changed)} of {len(df)} classes changed (recall at level {level})")
