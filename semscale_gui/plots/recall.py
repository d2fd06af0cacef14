"""Per-class recall across levels.

The pivot (per-class rows → class × level matrix) runs in a background task and is kept
per run and backbone (``AnalysisCache``); choosing, sorting and cutting the rows is then
numpy on a 1,000 × levels array, cheap enough for the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QVBoxLayout, QWidget

from core.results.class_order import frequency_of
from core.results.views import ResultsData, recall_matrix
from semscale_gui.tasks import AnalysisCache
from semscale_gui.plots.base import _controls, _labelled, refill_combo
from semscale_gui.plots.class_filter import ClassFilter
from semscale_gui.plots.heatmap import _Heatmap


@dataclass
class RecallPivot:
    """All classes × levels of one backbone, with what the sorts need."""

    classes: list[str]
    levels: list[int]
    matrix: np.ndarray
    frequency: Optional[np.ndarray]


def recall_pivot(per_class: list[dict], frequency_rows: list[dict], backbone: str, top5: bool) -> RecallPivot:
    import pandas as pd

    classes, levels, m = recall_matrix(per_class, backbone, top5)
    freq = frequency_of(classes, pd.DataFrame(frequency_rows)) if frequency_rows else None
    return RecallPivot(classes, levels, m, freq)


class RecallHeatmap(_Heatmap):
    """Per-class recall (rows) across levels (columns): which classes gain or lose names."""

    images_requested = Signal(object)  # core.results.drilldown.ClassAtLevel of a clicked cell

    def __init__(self, parent: Optional[QWidget] = None, cache: Optional[AnalysisCache] = None) -> None:
        super().__init__(parent, cache)
        self.backbone = QComboBox()
        self.metric = QComboBox()
        self.metric.addItem("top-1 recall", False)
        self.metric.addItem("top-5 recall", True)
        self.filter = ClassFilter(default_sort="change")
        for cb in (self.backbone, self.metric):
            cb.currentIndexChanged.connect(self._redraw)
        self.filter.changed.connect(self._draw_pivot)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(_controls(_labelled("backbone:", self.backbone), _labelled("show:", self.metric)))
        lay.addLayout(_controls(self.filter, self.fit_button))
        lay.addWidget(self.view, 1)
        lay.addWidget(self.readout)
        self.results = ResultsData()
        self.pivot: Optional[RecallPivot] = None
        self._classes: list[str] = []
        self._levels: list[int] = []
        self.cell_clicked.connect(self._select)
        self._redraw()

    def _select(self, row: int, col: int) -> None:
        from core.results.drilldown import ClassAtLevel

        self.images_requested.emit(ClassAtLevel(self.backbone.currentText(), self._levels[col], self._classes[row]))

    def set_results(self, results: ResultsData) -> None:
        self.results = results
        refill_combo(self.backbone, results.backbones())
        self._redraw()

    def _redraw(self) -> None:
        res, backbone, top5 = self.results, self.backbone.currentText(), bool(self.metric.currentData())
        freq_rows = res.tables.get("frequency", [])
        key = ("recall", res.token, len(res.per_class), len(freq_rows), backbone, top5)
        rows, frows = list(res.per_class), list(freq_rows)  # snapshots: a live run appends on this thread
        self._compute(key, lambda: recall_pivot(rows, frows, backbone, top5), self._pivot_arrived)

    def _pivot_arrived(self, p: RecallPivot) -> None:
        self.pivot = p
        self._draw_pivot()

    def _draw_pivot(self) -> None:
        p = self.pivot
        self.empty_text.setText("per-class recall appears here as levels finish")
        if p is None or p.matrix.size == 0:
            self._classes, self._levels = [], []
            self.filter.set_count(0, 0, 0)
            self._show_matrix(np.zeros((0, 0)), [], [])
            return
        m = p.matrix
        last, first = m[:, -1], m[:, 0]
        order = self._filter_rows(p.classes, last, last - first, p.frequency)
        self._classes = [p.classes[i] for i in order]
        self._levels = list(p.levels)
        self._show_matrix(m[order], [str(v) for v in p.levels], self._classes, (0, 1), "names per class", "class")

    def describe_cell(self, row: int, col: int) -> str:
        v = self.matrix[row, col]
        what = self.metric.currentText()
        val = "no images" if np.isnan(v) else f"{v * 100:.1f}%"
        text = f"class '{self._classes[row]}' with {self._levels[col]} name(s) per class: {what} {val}"
        first = self.matrix[row, 0]
        if col > 0 and not np.isnan(v) and not np.isnan(first):
            k0 = self._levels[0]
            text += f" ({(v - first) * 100:+.1f} points from {k0} name{'s' if k0 != 1 else ''})"
        return text
