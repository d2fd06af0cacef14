"""Per-class recall across levels."""

from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QVBoxLayout, QWidget

from ..results_data import ResultsData
from .base import _controls, _labelled, refill_combo
from .heatmap import _Heatmap


class RecallHeatmap(_Heatmap):
    """Per-class recall (rows) across levels (columns): which classes gain or lose names."""

    selected = Signal(object)  # core.drilldown.ClassAtLevel of a clicked cell

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.backbone = QComboBox()
        self.metric = QComboBox()
        self.metric.addItem("top-1 recall", False)
        self.metric.addItem("top-5 recall", True)
        self.order = QComboBox()
        self.order.addItems(["label order", "lowest recall first", "biggest change first"])
        for cb in (self.backbone, self.metric, self.order):
            cb.currentIndexChanged.connect(self._redraw)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(_controls(_labelled("backbone:", self.backbone), _labelled("show:", self.metric),
                                _labelled("sort:", self.order)))
        lay.addWidget(self.view, 1)
        lay.addWidget(self.readout)
        self.results = ResultsData()
        self._classes: list[str] = []
        self._levels: list[int] = []
        self.cell_clicked.connect(self._select)
        self.view.setToolTip("Click a cell to see that class's images at that level")
        self._redraw()

    def _select(self, row: int, col: int) -> None:
        from core.drilldown import ClassAtLevel

        self.selected.emit(ClassAtLevel(self.backbone.currentText(), self._levels[col], self._classes[row]))

    def set_results(self, results: ResultsData) -> None:
        self.results = results
        refill_combo(self.backbone, results.backbones())
        self._redraw()

    def _redraw(self) -> None:
        classes, levels, m = self.results.recall_matrix(self.backbone.currentText(), bool(self.metric.currentData()))
        if m.size:
            order = np.arange(len(classes))
            if self.order.currentIndex() == 1:
                order = np.argsort(np.nan_to_num(m[:, 0], nan=2.0), kind="stable")
            elif self.order.currentIndex() == 2:
                order = np.argsort(-np.abs(np.nan_to_num(m[:, -1] - m[:, 0])), kind="stable")
            m = m[order]
            classes = [classes[i] for i in order]
        self._classes, self._levels = classes, levels
        self.empty_text.setText("per-class recall appears here as levels finish")
        self._show_matrix(m, [str(v) for v in levels], classes, (0, 1), "names per class", "class")

    def describe_cell(self, row: int, col: int) -> str:
        v = self.matrix[row, col]
        what = self.metric.currentText()
        val = "no images" if np.isnan(v) else f"{v * 100:.1f}%"
        return f"class '{self._classes[row]}' with {self._levels[col]} name(s) per class: {what} {val}"
