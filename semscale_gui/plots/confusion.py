"""True against predicted class at one level, and the most frequent confusions."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QListWidget, QSplitter, QVBoxLayout, QWidget

from ..results_data import confusion
from .base import _controls, _labelled, refill_combo
from .heatmap import _Heatmap


class ConfusionPlot(_Heatmap):
    """True class (rows) vs predicted class (columns) at one level, from predictions.csv."""

    level_requested = Signal()
    selected = Signal(object)  # core.drilldown.ConfusionCell of a clicked cell

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.backbone = QComboBox()
        self.level = QComboBox()
        self.normalise = QCheckBox("row-normalised")
        self.normalise.setChecked(True)
        for w in (self.backbone, self.level):
            w.currentIndexChanged.connect(self._redraw)
        self.normalise.toggled.connect(self._redraw)
        self.top = QListWidget()
        self.top.setMaximumWidth(320)
        split = QSplitter()
        split.addWidget(self.view)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(QLabel("Most frequent confusions"))
        sl.addWidget(self.top)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(_controls(_labelled("backbone:", self.backbone), _labelled("names per class:", self.level),
                                self.normalise))
        lay.addWidget(split, 1)
        lay.addWidget(self.readout)
        self.predictions = pd.DataFrame()
        self.classes: list[str] = []
        self.counts = np.zeros((0, 0), dtype=np.int64)
        self.empty_text.setText("the confusion matrix appears when predictions.csv is written")
        self.cell_clicked.connect(self._select)
        self.view.setToolTip("Click a cell to see its images")
        self._redraw()

    def _select(self, row: int, col: int) -> None:
        from core.drilldown import ConfusionCell

        self.selected.emit(ConfusionCell(self.backbone.currentText(), int(self.level.currentText()),
                                         self.classes[row], self.classes[col]))

    def set_predictions(self, predictions: pd.DataFrame, classes: list[str]) -> None:
        self.predictions, self.classes = predictions, list(classes)
        refill_combo(self.backbone, sorted(map(str, predictions["backbone"].unique())) if len(predictions) else [])
        refill_combo(self.level, [str(v) for v in sorted(predictions["level"].unique())] if len(predictions) else [])
        self._redraw()

    def _redraw(self) -> None:
        self.top.clear()
        if self.predictions.empty or not self.level.currentText():
            self.counts = np.zeros((0, 0), dtype=np.int64)
            self._show_matrix(self.counts, [], [])
            return
        m = confusion(self.predictions, self.classes, int(self.level.currentText()), self.backbone.currentText())
        self.counts = m
        shown = m.astype(float)
        if self.normalise.isChecked():
            shown = shown / np.maximum(m.sum(axis=1, keepdims=True), 1)
            levels = (0, 1)
        else:
            levels = (0, max(1, int(m.max())))
        self._show_matrix(shown, self.classes, self.classes, levels, "predicted class", "true class")
        off = m.copy()
        np.fill_diagonal(off, 0)
        flat = np.argsort(-off, axis=None)[:25]
        for k in flat:
            i, j = divmod(int(k), m.shape[1])
            if off[i, j] == 0:
                break
            self.top.addItem(f"{self.classes[i]} → {self.classes[j]}: {off[i, j]} of {m[i].sum()}")
        if self.top.count() == 0:
            self.top.addItem("no confusions at this level")

    def describe_cell(self, row: int, col: int) -> str:
        n, tot = int(self.counts[row, col]), int(self.counts[row].sum())
        pct = f" ({100 * n / tot:.1f}% of the class)" if tot else ""
        return f"true '{self.classes[row]}' predicted as '{self.classes[col]}': {n} image(s){pct}"
