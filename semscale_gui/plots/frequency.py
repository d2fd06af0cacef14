"""Per-class recall against class frequency.

At 1,000 classes one text label per point would bury the plot: the class name appears
for the point under the mouse, for points clicked, and for the classes a search matches
(at most ``MAX_LABELS``). Up to ``LABEL_ALL_UP_TO`` classes every point is named.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QStackedWidget, QVBoxLayout, QWidget

from core.results.views import ResultsData
from semscale_gui.plots.base import _controls, _labelled, _style_plot, colour, refill_combo, tick_font

MAX_LABELS = 30
LABEL_ALL_UP_TO = 25  # a small dataset's scatter names every class, as it always did


class FrequencyPlot(QWidget):
    """Per-class recall against how often the class occurs in training data (log scale)."""

    drawn = Signal()

    images_requested = Signal(object)  # core.results.drilldown.ClassAtLevel of a clicked point

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.backbone = QComboBox()
        self.level = QComboBox()
        for cb in (self.backbone, self.level):
            cb.currentIndexChanged.connect(self._redraw)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Label classes…")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Label the classes whose name contains this text (click a point to label it)")
        self.search.setMaximumWidth(200)
        self.search.textChanged.connect(self._update_labels)  # a lambda here crashed PySide at exit
        self.view = pg.PlotWidget()
        self.plot: pg.PlotItem = self.view.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.summary = QLabel(" ")
        # a run with a VLM and CLIP backbones can show both against frequency (plots/vlm_clip.py)
        from semscale_gui.plots.vlm_clip import VlmClipFrequency

        self.show_as = QComboBox()
        self.show_as.addItems(["each backbone", "VLM vs CLIP"])
        self.show_as.setToolTip("Per-class recall of a vision-language model and a CLIP backbone against class "
                                "frequency, and their difference")
        self.show_as.currentIndexChanged.connect(self._show_as_changed)
        self.vlm_clip = VlmClipFrequency()
        self.single = QWidget()
        sl = QVBoxLayout(self.single)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addLayout(_controls(_labelled("backbone:", self.backbone), _labelled("names per class:", self.level),
                               self.search))
        sl.addWidget(self.summary)
        sl.addWidget(self.view, 1)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.single)
        self.stack.addWidget(self.vlm_clip)
        self.show_box = _labelled("show:", self.show_as)
        self.show_box.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(_controls(self.show_box))
        lay.addWidget(self.stack, 1)
        self.results = ResultsData()
        self.points = 0
        self.selected: set[str] = set()  # classes labelled by a click
        self._names: list[str] = []
        self._xy = np.zeros((0, 2))
        self._labels: list[pg.TextItem] = []
        self._hover_text = pg.TextItem("", color="#000000", anchor=(0, 1), fill=pg.mkBrush(255, 255, 255, 220))
        self._hover_text.setFont(tick_font())
        self._hover_text.setZValue(20)
        self._scatter: Optional[pg.ScatterPlotItem] = None
        self._redraw()

    def set_results(self, results: ResultsData) -> None:
        self.results = results
        df = results.table("frequency")
        # vectorised: iterating a 10,000-row string column element by element costs a frame
        refill_combo(self.backbone, [str(v) for v in pd.unique(df["backbone"].astype(str))] if not df.empty else [])
        refill_combo(self.level, [str(int(v)) for v in np.sort(pd.unique(df["level"]))] if not df.empty else [])
        self._redraw()
        from core.results.answers import split_kinds

        vlms, clips = split_kinds(results.meta)
        both = bool(vlms and clips and not df.empty)
        self.show_box.setVisible(both)
        if both:
            self.vlm_clip.set_results(results)
        elif self.show_as.currentIndex():
            self.show_as.setCurrentIndex(0)

    def _show_as_changed(self, i: int) -> None:
        self.stack.setCurrentIndex(i)
        if i:
            self.vlm_clip.set_results(self.results)

    def _redraw(self) -> None:
        plot = self.plot
        plot.clear()
        self._labels, self._scatter = [], None
        _style_plot(plot, "per-class recall (%)", "class frequency in training data (log₁₀ scale)")
        self._hover_text.setVisible(False)
        plot.addItem(self._hover_text)  # one item for the life of the view, re-added after each clear
        df = self.results.table("frequency")
        if df.empty or not self.level.currentText():
            self.points = 0
            self._names, self._xy = [], np.zeros((0, 2))
            self.summary.setText("Give a class-frequency CSV (class,frequency) in the Run panel to relate per-class "
                                 "accuracy to how often each class occurs in training data.")
            self.drawn.emit()
            return
        d = df[(df["backbone"].astype(str) == self.backbone.currentText()) & (df["level"] == int(self.level.currentText()))]
        self.points = len(d)
        self._names = [str(c) for c in d["class"]]
        self._xy = np.column_stack([d["log_frequency"].to_numpy(float), d["recall"].to_numpy(float) * 100])
        col = colour(max(0, self.backbone.currentIndex()))
        self._scatter = pg.ScatterPlotItem(self._xy[:, 0], self._xy[:, 1], data=np.arange(len(d)), size=9 if len(d) > 200 else 10,
                                           brush=pg.mkBrush(col), pen=pg.mkPen("w"), hoverable=True,
                                           hoverBrush=pg.mkBrush("#D55E00"), hoverSize=13, tip=None)
        self._scatter.sigHovered.connect(self._hovered)
        self._scatter.sigClicked.connect(self._clicked)
        plot.addItem(self._scatter)
        plot.setYRange(-3, 108)
        if len(d):
            lo, hi = float(d["log_frequency"].min()), float(d["log_frequency"].max())
            span = max(hi - lo, 0.5)
            plot.setXRange(lo - 0.05 * span, hi + 0.15 * span, padding=0)  # room for the last class's label
        self._update_labels()
        summ = self.results.table("frequency_summary")
        text = f"{len(d)} classes" + ("" if len(d) <= LABEL_ALL_UP_TO else " · hover a point for its class, click to label it")
        if not summ.empty:
            m = summ[(summ["backbone"].astype(str) == self.backbone.currentText())
                     & (summ["level"] == int(self.level.currentText()))]
            if len(m) and pd.notna(m.iloc[0]["spearman_rho"]):
                text += f" · Spearman ρ = {m.iloc[0]['spearman_rho']:.2f} (p = {m.iloc[0]['p_value']:.3g})"
        self.summary.setText(text)
        self.drawn.emit()

    def describe_point(self, i: int) -> str:
        x, y = self._xy[i]
        freq = 10 ** x - 1
        return f"{self._names[i]}: recall {y:.1f}%, frequency {freq:,.4g}"

    def labelled_classes(self) -> list[str]:
        """Classes with a text label on the plot now (clicked or matching the search)."""
        return [t.toPlainText() for t in self._labels]

    def _update_labels(self, *_args) -> None:
        for t in self._labels:
            self.plot.removeItem(t)
        self._labels = []
        text = self.search.text().strip().casefold()
        few = len(self._names) <= LABEL_ALL_UP_TO
        picked = [i for i, n in enumerate(self._names)
                  if few or n in self.selected or (text and text in n.casefold())]
        for i in picked[:MAX_LABELS]:
            t = pg.TextItem(self._names[i], color="#333333", anchor=(0, 1))
            t.setFont(tick_font())
            t.setPos(float(self._xy[i, 0]), float(self._xy[i, 1]))
            self.plot.addItem(t)
            self._labels.append(t)

    def _hovered(self, _item, points, _ev) -> None:
        if len(points):
            i = int(points[0].data())
            self._hover_text.setText(self.describe_point(i))
            self._hover_text.setPos(float(self._xy[i, 0]), float(self._xy[i, 1]))
            self._hover_text.setVisible(True)
        else:
            self._hover_text.setVisible(False)

    def _clicked(self, _item, points, _ev) -> None:
        for pt in points[:1]:
            name = self._names[int(pt.data())]
            self.selected.symmetric_difference_update({name})
            self.select_class(name)
        self._update_labels()

    def select_class(self, cls: str) -> None:
        """Ask for the images of one class at the level shown (a click on its point does this too)."""
        from core.results.drilldown import ClassAtLevel

        self.images_requested.emit(ClassAtLevel(self.backbone.currentText(), int(self.level.currentText()), cls))
