"""Backbones side by side: top-1 per level and each backbone's threshold."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from core.results.views import ResultsData
from semscale_gui.plots.base import _style_plot, colour
from semscale_gui.plots.similarity import SimilarityMatrix


def bar_range(curves) -> tuple[float, float]:
    """The top-1 axis (%) of the bars: from a little below the lowest CI to a little above the highest,
    on whole 5-point steps, so differences of a few points are visible (0-100 when nothing is drawn)."""
    vals = []
    for c in curves:
        if c is None:
            continue
        for arr in (c.top1, c.ci_low, c.ci_high):
            a = np.asarray(arr, dtype=float) * 100
            vals.extend(a[np.isfinite(a)].tolist())
    if not vals:
        return 0.0, 100.0
    lo, hi = min(vals), max(vals)
    pad = max(2.0, 0.15 * (hi - lo))
    return max(0.0, np.floor((lo - pad) / 5) * 5), min(100.0, np.ceil((hi + pad) / 5) * 5)


class BackboneComparison(QWidget):
    """Top-1 per level, one bar per backbone, and a table of each backbone's threshold."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.view = pg.PlotWidget()
        self.plot: pg.PlotItem = self.view.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(y=True, alpha=0.25)
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextSize="10pt")
        self.legend.setBrush(pg.mkBrush(255, 255, 255, 220))
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(
            ["backbone", "top-1 at 1 name", "peak level", "peak top-1", "after the peak", "best level vs 1 name"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(150)
        self.hint = QLabel()
        self.hint.setStyleSheet("color: #666;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.hint)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.table)
        self.similarity = SimilarityMatrix()  # similarity.csv: shown when the run has it
        lay.addWidget(self.similarity)
        self.results = ResultsData()
        self._redraw()

    def set_results(self, results: ResultsData) -> None:
        self.results = results
        self._redraw()
        self.similarity.set_results(results)

    def _redraw(self) -> None:
        plot, res = self.plot, self.results
        plot.clear()
        self.legend.clear()
        _style_plot(plot, "top-1 accuracy (%)", "names per class")
        names = res.backbones()
        self.hint.setText("Tick several backbones in the Run panel to compare them side by side."
                          if len(names) < 2 else f"{len(names)} backbones on the same label set")
        curves = [res.curve(n) for n in names]
        levels = sorted({int(v) for c in curves if c is not None for v in c.levels})
        pos = {lv: i for i, lv in enumerate(levels)}
        width = 0.8 / max(1, len(names))
        self.y_range = y0, y1 = bar_range(curves)
        for bi, (name, c) in enumerate(zip(names, curves)):
            if c is None:
                continue
            xs = np.array([pos[int(v)] for v in c.levels]) - 0.4 + width * (bi + 0.5)
            top = c.top1 * 100
            bars = pg.BarGraphItem(x=xs, y0=y0, height=top - y0, width=width * 0.92, brush=colour(bi),
                                   pen=pg.mkPen("w"))
            plot.addItem(bars)
            self.legend.addItem(bars, name)
            lo, hi = np.asarray(c.ci_low, dtype=float) * 100, np.asarray(c.ci_high, dtype=float) * 100
            if len(lo) == len(top) and np.isfinite(lo).any():  # the bootstrap CI of each bar
                plot.addItem(pg.ErrorBarItem(x=xs, y=top, top=np.nan_to_num(hi - top), bottom=np.nan_to_num(top - lo),
                                             beam=width * 0.3, pen=pg.mkPen("#222222", width=1.2)))
        plot.getAxis("bottom").setTicks([[(i, str(lv)) for lv, i in pos.items()], []])
        if levels:
            plot.setXRange(-0.6, len(levels) - 0.4)
            plot.setYRange(y0, y1, padding=0)  # zoomed to the bars and their CIs: a 5-point gap must show
        self.table.setRowCount(len(names))
        for r, (name, c) in enumerate(zip(names, curves)):
            t = res.threshold(name)
            first = f"{c.top1[0] * 100:.1f}%" if c is not None and len(c.top1) else ""
            peak = f"{t['peak_top1'] * 100:.1f}%" if t.get("peak_top1") is not None else ""
            gain = ""
            if c is not None and len(c.top1) and t.get("peak_top1") is not None:
                gain = f"{(t['peak_top1'] - c.top1[0]) * 100:+.1f} points"
            vals = [name, first, str(t.get("peak_level", "")), peak, t.get("trend", ""), gain]
            for col, v in enumerate(vals):
                item = QTableWidgetItem(v)
                if col == 0:
                    item.setForeground(colour(r))
                self.table.setItem(r, col, item)
