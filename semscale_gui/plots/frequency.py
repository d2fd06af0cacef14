"""Per-class recall against class frequency."""

from __future__ import annotations

from typing import Optional

import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from ..results_data import ResultsData
from .base import _controls, _labelled, _style_plot, colour, refill_combo, tick_font


class FrequencyPlot(QWidget):
    """Per-class recall against how often the class occurs in training data (log scale)."""

    selected = Signal(object)  # core.drilldown.ClassAtLevel of a clicked point

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.backbone = QComboBox()
        self.level = QComboBox()
        for cb in (self.backbone, self.level):
            cb.currentIndexChanged.connect(self._redraw)
        self.view = pg.PlotWidget()
        self.plot: pg.PlotItem = self.view.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.summary = QLabel(" ")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(_controls(_labelled("backbone:", self.backbone), _labelled("names per class:", self.level)))
        lay.addWidget(self.summary)
        lay.addWidget(self.view, 1)
        self.results = ResultsData()
        self.points = 0
        self._redraw()

    def set_results(self, results: ResultsData) -> None:
        self.results = results
        df = results.table("frequency")
        refill_combo(self.backbone, list(dict.fromkeys(map(str, df["backbone"]))) if not df.empty else [])
        refill_combo(self.level, [str(v) for v in sorted(set(df["level"]))] if not df.empty else [])
        self._redraw()

    def select_class(self, cls: str) -> None:
        """Ask for the images of one class at the level shown (what a click on its point does)."""
        from core.drilldown import ClassAtLevel

        self.selected.emit(ClassAtLevel(self.backbone.currentText(), int(self.level.currentText()), cls))

    def _redraw(self) -> None:
        plot = self.plot
        plot.clear()
        _style_plot(plot, "per-class recall (%)", "class frequency in training data (log₁₀ scale)")
        df = self.results.table("frequency")
        if df.empty or not self.level.currentText():
            self.points = 0
            self.summary.setText("Give a class-frequency CSV (class,frequency) in the Run panel to relate per-class "
                                 "accuracy to how often each class occurs in training data.")
            return
        d = df[(df["backbone"].astype(str) == self.backbone.currentText()) & (df["level"] == int(self.level.currentText()))]
        self.points = len(d)
        col = colour(max(0, self.backbone.currentIndex()))
        self.scatter = pg.ScatterPlotItem(d["log_frequency"].to_numpy(float), d["recall"].to_numpy(float) * 100,
                                          data=list(map(str, d["class"])), size=10, brush=pg.mkBrush(col),
                                          pen=pg.mkPen("w"), hoverable=True, tip="{data}: click for its images".format)
        self.scatter.sigClicked.connect(lambda _item, points, _ev: points and self.select_class(points[0].data()))
        plot.addItem(self.scatter)
        for _, r in d.iterrows():
            t = pg.TextItem(str(r["class"]), color="#333333", anchor=(0, 1))
            t.setFont(tick_font())
            t.setPos(float(r["log_frequency"]), float(r["recall"]) * 100)
            plot.addItem(t)
        plot.setYRange(-3, 108)
        if len(d):
            lo, hi = float(d["log_frequency"].min()), float(d["log_frequency"].max())
            span = max(hi - lo, 0.5)
            plot.setXRange(lo - 0.05 * span, hi + 0.15 * span, padding=0)  # room for the last class's label
        summ = self.results.table("frequency_summary")
        text = f"{len(d)} classes"
        if not summ.empty:
            m = summ[(summ["backbone"].astype(str) == self.backbone.currentText())
                     & (summ["level"] == int(self.level.currentText()))]
            if len(m) and pd.notna(m.iloc[0]["spearman_rho"]):
                text += f" · Spearman ρ = {m.iloc[0]['spearman_rho']:.2f} (p = {m.iloc[0]['p_value']:.3g})"
        self.summary.setText(text)
