"""True against predicted class at one level, and the most frequent confusions.

Counting runs in a background task per (predictions, backbone, level), kept in the
``AnalysisCache``; the view then shows the classes the filter picks (search, sort, top N)
on both axes, plus an "other classes" column for predictions outside them, so every row
still adds up to the whole class.
"""

from __future__ import annotations

import itertools

from typing import Optional

import numpy as np
import pandas as pd
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QHeaderView, QLabel, QSplitter, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)

from core.results.confusion import (ConfusionCounts, _recall, confusion_columns, confusion_counts,  # noqa: F401
                                    image_count)
from semscale_gui.tasks import AnalysisCache
from semscale_gui.plots.base import _controls, _labelled, refill_combo
from semscale_gui.plots.class_filter import ClassFilter
from semscale_gui.plots.heatmap import _Heatmap

OTHER = "(other classes)"
_tokens = itertools.count(1)


class ConfusionPlot(_Heatmap):
    """True class (rows) vs predicted class (columns) at one level, from predictions.csv."""

    level_requested = Signal()
    images_requested = Signal(object)  # core.results.drilldown.ConfusionCell of a clicked cell

    def __init__(self, parent: Optional[QWidget] = None, cache: Optional[AnalysisCache] = None) -> None:
        super().__init__(parent, cache)
        self.backbone = QComboBox()
        self.level = QComboBox()
        self.normalise = QCheckBox("row-normalised")
        self.normalise.setChecked(True)
        for w in (self.backbone, self.level):
            w.currentIndexChanged.connect(self._redraw)
        self.normalise.toggled.connect(self._draw_counts)
        self.filter = ClassFilter(default_sort="recall_low")
        self.filter.changed.connect(self._draw_counts)
        self.top = QTableWidget(0, 4)
        self.top.setHorizontalHeaderLabels(["true class", "predicted as", "images", "% of class"])
        self.top.verticalHeader().setVisible(False)
        self.top.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.top.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.top.setWordWrap(False)
        self.top.verticalHeader().setDefaultSectionSize(self.top.fontMetrics().height() + 6)
        self.top.setTextElideMode(Qt.TextElideMode.ElideRight)  # a cut class name keeps its first words
        hh = self.top.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(False)
        for c, mode in ((0, QHeaderView.ResizeMode.Stretch), (1, QHeaderView.ResizeMode.Stretch),
                        (2, QHeaderView.ResizeMode.ResizeToContents), (3, QHeaderView.ResizeMode.ResizeToContents)):
            hh.setSectionResizeMode(c, mode)
        self.top_title = QLabel("Most frequent confusions")
        split = QSplitter()
        split.addWidget(self.view)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.top_title)
        sl.addWidget(self.top)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        split.setSizes([700, 380])
        self.splitter = split
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(_controls(_labelled("backbone:", self.backbone), _labelled("names per class:", self.level),
                                self.normalise))
        lay.addLayout(_controls(self.filter, self.fit_button))
        lay.addWidget(split, 1)
        lay.addWidget(self.readout)
        self.predictions = pd.DataFrame()
        self.classes: list[str] = []
        self.frequency: Optional[np.ndarray] = None
        self.counts = np.zeros((0, 0), dtype=np.int64)  # all classes at the level shown
        self.shown_counts = np.zeros((0, 0), dtype=np.int64)  # the rows and columns on screen
        self._cols: np.ndarray = np.zeros(0, dtype=np.int64)  # the classes of the columns (confusion_columns)
        self.data: Optional[ConfusionCounts] = None
        self._token = 0  # bumped with each new predictions table (part of the cache key)
        self.empty_text.setText("the confusion matrix appears when predictions.csv is written")
        self.cell_clicked.connect(self._select)
        self._redraw()

    def _select(self, row: int, col: int) -> None:
        """A click on a cell asks for its images (not on the column of classes not shown)."""
        from core.results.drilldown import ConfusionCell

        if self.data is None or col >= len(self._cols):
            return
        self.images_requested.emit(ConfusionCell(self.backbone.currentText(), int(self.data.level),
                                         self.classes[int(self._rows[row])], self.classes[int(self._cols[col])]))

    def set_predictions(self, predictions: pd.DataFrame, classes: list[str],
                        frequency: Optional[np.ndarray] = None) -> None:
        """``frequency`` (per class, NaN where unknown) enables the frequency sorts."""
        if predictions is not self.predictions or list(classes) != self.classes:
            self._token = next(_tokens)
        self.predictions, self.classes = predictions, list(classes)
        self.frequency = frequency
        refill_combo(self.backbone, sorted(map(str, predictions["backbone"].unique())) if len(predictions) else [])
        refill_combo(self.level, [str(v) for v in sorted(predictions["level"].unique())] if len(predictions) else [])
        self._redraw()

    def _redraw(self) -> None:
        if self.predictions.empty or not self.level.currentText():
            self._wanted = ()
            self.data = None
            self._draw_counts()
            return
        df, classes, backbone, level = self.predictions, self.classes, self.backbone.currentText(), int(self.level.currentText())
        self._compute(("confusion", self._token, backbone, level),
                      lambda: confusion_counts(df, classes, backbone, level), self._counts_arrived)

    def _counts_arrived(self, c: ConfusionCounts) -> None:
        self.data = c
        self._draw_counts()

    def _draw_counts(self) -> None:
        c = self.data
        self.top.setRowCount(0)
        if c is None:
            self.counts = np.zeros((0, 0), dtype=np.int64)
            self.shown_counts = self.counts
            self.filter.set_count(0, 0, 0)
            self._show_matrix(self.counts, [], [])
            return
        m = c.counts
        self.counts = m
        recall = _recall(m)
        rows = self._filter_rows(self.classes, recall, recall - c.first_recall, self.frequency)
        self._cols = cols = confusion_columns(m, rows)
        sub = m[np.ix_(rows, cols)]
        names = [self.classes[i] for i in rows]
        xnames = [self.classes[j] for j in cols]
        if len(cols) < len(self.classes):  # what the rows predicted outside the classes shown
            other = m[rows].sum(axis=1) - sub.sum(axis=1)
            sub = np.concatenate([sub, other[:, None]], axis=1)
            xnames.append(OTHER)
        self.bottom_axis.pin_last = len(xnames) > len(cols)
        self.shown_counts = sub
        shown = sub.astype(float)
        if self.normalise.isChecked():
            shown = shown / np.maximum(m[rows].sum(axis=1, keepdims=True), 1)
            levels = (0, 1)
        else:
            levels = (0, max(1, int(sub.max()) if sub.size else 1))
        self._fill_top(c)
        self._show_matrix(shown, xnames, names, levels, "predicted class", "true class")

    def _fill_top(self, c: ConfusionCounts) -> None:
        text = self.filter.selection().text.strip().casefold()
        rows = [(i, j, n) for i, j, n in c.top
                if not text or text in self.classes[i].casefold() or text in self.classes[j].casefold()]
        t = self.top
        t.setSortingEnabled(False)
        t.setRowCount(max(1, len(rows)))
        if not rows:
            t.setSpan(0, 0, 1, 4)
            t.setItem(0, 0, QTableWidgetItem("no confusions at this level" if not text else "no confusion matches"))
            self.top_title.setText("Most frequent confusions")
            return
        t.clearSpans()
        tot = c.counts.sum(axis=1)
        for r, (i, j, n) in enumerate(rows):
            share = float(100 * n / tot[i]) if tot[i] else 0.0
            tip = f"'{self.classes[i]}' predicted as '{self.classes[j]}': {n} of {int(tot[i])} images ({share:.1f}%)"
            for col, v in enumerate((self.classes[i], self.classes[j], n, round(share, 1))):
                item = QTableWidgetItem()
                item.setData(Qt.ItemDataRole.DisplayRole, v)
                item.setToolTip(tip)
                if col >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                t.setItem(r, col, item)
        t.setSortingEnabled(True)
        t.sortItems(2, Qt.SortOrder.DescendingOrder)
        self.top_title.setText(f"Most frequent confusions at {c.level} name(s) per class ({len(rows)} shown)")

    def confusion_rows(self) -> list[tuple[str, str, int]]:
        """The confusions listed beside the matrix, in the order shown."""
        out = []
        for r in range(self.top.rowCount()):
            a, b, n = (self.top.item(r, col) for col in range(3))
            if a is not None and b is not None and n is not None:
                out.append((a.text(), b.text(), n.data(Qt.ItemDataRole.DisplayRole)))
        return out

    def describe_cell(self, row: int, col: int) -> str:
        i = int(self._rows[row])
        n, tot = image_count(self.shown_counts[row, col]), image_count(self.counts[i].sum())
        pct = f" ({100 * n / tot:.1f}% of the class)" if tot else ""
        pred = OTHER if col >= len(self._cols) else f"'{self.classes[int(self._cols[col])]}'"
        return f"true '{self.classes[i]}' predicted as {pred}: {n} image(s){pct}"
