"""A VLM next to a CLIP backbone: per-class recall of both against class frequency, and their difference.

The study question of VLM classification papers: where CLIP and a VLM differ per class, and
whether the difference follows how often the class occurs in training data. Numbers come from
:func:`core.results.answers.vlm_clip_frequency` (Spearman's rho for each curve and for the
difference); the Frequency tab shows this view when a run has both kinds.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from core.results.views import ResultsData
from semscale_gui.plots.base import _controls, _labelled, _style_plot, colour, refill_combo, tick_font

LABEL_ALL_UP_TO = 25  # classes named on the difference plot (more would bury it; hover the Frequency view)

AXIS = "class frequency in training data (log₁₀ scale)"


def _rho(pair) -> str:
    rho, p = pair
    return "ρ = n/a" if rho != rho else f"ρ = {rho:+.2f} (p = {p:.2g})"


class VlmClipFrequency(QWidget):
    """Two plots: both recalls against log frequency, and VLM − CLIP against log frequency."""

    drawn = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.vlm = QComboBox()
        self.clip = QComboBox()
        self.level = QComboBox()
        for cb in (self.vlm, self.clip, self.level):
            cb.currentIndexChanged.connect(self._redraw)
        self.summary = QLabel(" ")
        self.summary.setWordWrap(True)
        self.recall_view = pg.PlotWidget()
        self.diff_view = pg.PlotWidget()
        self.view = self.recall_view  # what "Export plot" saves
        for v in (self.recall_view, self.diff_view):
            v.getPlotItem().setMenuEnabled(False)
            v.getPlotItem().showGrid(x=True, y=True, alpha=0.25)
        plots = QHBoxLayout()
        plots.addWidget(self.recall_view, 1)
        plots.addWidget(self.diff_view, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(_controls(_labelled("VLM:", self.vlm), _labelled("CLIP:", self.clip),
                                _labelled("names per class:", self.level)))
        lay.addWidget(self.summary)
        lay.addLayout(plots, 1)
        self.results = ResultsData()
        self.table = pd.DataFrame()
        self.stats: dict = {}

    def set_results(self, results: ResultsData) -> None:
        from core.results.answers import split_kinds

        self.results = results
        vlms, clips = split_kinds(results.meta)
        refill_combo(self.vlm, vlms)
        refill_combo(self.clip, clips)
        df = results.table("frequency")
        levels = sorted(pd.unique(df["level"])) if len(df) else []
        refill_combo(self.level, [str(int(v)) for v in levels])
        self._redraw()

    def _redraw(self, *_args) -> None:
        from core.results.answers import vlm_clip_frequency

        rp, dp = self.recall_view.getPlotItem(), self.diff_view.getPlotItem()
        rp.clear()
        dp.clear()
        if rp.legend is not None:
            rp.legend.clear()
        _style_plot(rp, "per-class recall (%)", AXIS)
        _style_plot(dp, "VLM − CLIP recall (points)", AXIS)
        vlm, clip, level = self.vlm.currentText(), self.clip.currentText(), self.level.currentText()
        if not (vlm and clip and level):
            self.table, self.stats = pd.DataFrame(), {}
            self.summary.setText("Needs a run with a vision-language backbone, a CLIP backbone and class "
                                 "frequencies.")
            self.drawn.emit()
            return
        per_class = pd.DataFrame(self.results.per_class)
        self.table, self.stats = vlm_clip_frequency(self.results.table("frequency"), per_class, vlm, clip, int(level))
        t = self.table
        x = t["log_frequency"].to_numpy(float)
        legend = rp.legend or rp.addLegend(offset=(8, 8))
        yc, yv = t["recall_clip"].to_numpy(float) * 100, t["recall_vlm"].to_numpy(float) * 100
        if len(t):  # each class's CLIP and VLM recall joined: the gap is the difference plotted on the right
            rp.addItem(pg.PlotDataItem(np.repeat(x, 2), np.column_stack([yc, yv]).ravel(), connect="pairs",
                                       pen=pg.mkPen("#bbbbbb", width=1)))
        for i, (y, name, symbol) in enumerate(((yc, clip, "o"), (yv, vlm, "t"))):
            rp.addItem(pg.ScatterPlotItem(x, y, size=10, symbol=symbol, brush=pg.mkBrush(colour(i)),
                                          pen=pg.mkPen("w"), name=name))
        legend.setLabelTextSize("10pt")
        rp.setYRange(-3, 108)
        d = t["difference"].to_numpy(float) * 100
        dp.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen("#888", style=pg.QtCore.Qt.PenStyle.DashLine)))
        brushes = [pg.mkBrush(colour(1) if v > 0 else colour(0) if v < 0 else pg.mkColor("#888888")) for v in d]
        dp.addItem(pg.ScatterPlotItem(x, d, size=10, brush=brushes, pen=pg.mkPen("w")))
        if len(t) >= 2 and np.ptp(x) > 0:  # a least-squares line to guide the eye; the statistic is Spearman's
            slope, icpt = np.polyfit(x, d, 1)
            xs = np.array([x.min(), x.max()])
            dp.addItem(pg.PlotDataItem(xs, slope * xs + icpt, pen=pg.mkPen("#444", width=1.5)))
        if len(t) <= LABEL_ALL_UP_TO:
            for name, xi, di in zip(t["class"].astype(str), x, d):
                label = pg.TextItem(name, color="#333333", anchor=(0, 1))
                label.setFont(tick_font())
                label.setPos(float(xi), float(di))
                dp.addItem(label)
        if len(x):
            span = max(float(np.ptp(x)), 0.5)
            for plot in (rp, dp):
                plot.setXRange(float(x.min()) - 0.05 * span, float(x.max()) + 0.3 * span, padding=0)
        lim = max(5.0, float(np.abs(d).max()) * 1.1) if len(d) else 100.0
        dp.setYRange(-lim, lim)
        s = self.stats
        self.summary.setText(f"{s['n_classes']} classes at {level} name(s) per class · Spearman with frequency: "
                             f"<b>{vlm}</b> {_rho(s['vlm'])}, <b>{clip}</b> {_rho(s['clip'])}, "
                             f"difference (VLM − CLIP) {_rho(s['difference'])}")
        self.drawn.emit()
