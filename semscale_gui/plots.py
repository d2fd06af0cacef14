"""pyqtgraph views of a run: accuracy vs names per class, per-class recall, confusion,
backbone comparison and the raw level table.

Each view is a small QWidget with ``set_results(ResultsData)``; it redraws from the data
object and never computes anything the engine already computed. Callers throttle how
often ``set_results`` runs during a live sweep (see ``ResultsPanel``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QHBoxLayout, QHeaderView, QLabel, QListWidget, QSizePolicy, QSplitter, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from .results_data import ResultsData, confusion

pg.setConfigOptions(background="w", foreground="#222222", antialias=True)

# Okabe-Ito: distinguishable for colour-blind readers and in greyscale print.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]


def tick_font() -> QFont:
    """The application font at 10 pt (built lazily: a QFont made before the app is generic)."""
    from PySide6.QtWidgets import QApplication

    f = QFont(QApplication.font())
    f.setPointSize(10)
    return f


def colour(i: int) -> QColor:
    return QColor(PALETTE[i % len(PALETTE)])


def _style_plot(plot: pg.PlotItem, left: str, bottom: str) -> None:
    for name in ("left", "bottom"):
        ax = plot.getAxis(name)
        ax.setTickFont(tick_font())
        ax.setTextPen("#222222")
        ax.setPen("#666666")
    plot.setLabel("left", left, **{"font-size": "11pt"})
    plot.setLabel("bottom", bottom, **{"font-size": "11pt"})


def _controls(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        row.addWidget(w)
    row.addStretch(1)
    return row


def _labelled(text: str, w: QWidget) -> QWidget:
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 6, 0)
    lay.addWidget(QLabel(text))
    lay.addWidget(w)
    return box


def refill_combo(combo: QComboBox, values: list[str], prefer_last: bool = False) -> None:
    """Replace a selector's items without emitting signals, keeping the user's choice when it
    is still offered (else the last item with ``prefer_last``); no-op when nothing changed."""
    if values == [combo.itemText(i) for i in range(combo.count())]:
        return
    cur = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(values)
    if cur in values:
        combo.setCurrentText(cur)
    elif prefer_last and values:
        combo.setCurrentText(values[-1])
    combo.blockSignals(False)


def export_graphics(view: pg.GraphicsView, path: str | Path, scale: float = 2.0) -> Path:
    """Save what ``view`` shows as PNG (``scale`` x its size) or SVG (vector).

    SVG is written with Qt's QSvgGenerator: pyqtgraph's own SVG exporter cannot parse the
    path syntax Qt 6.12 writes. PNG is rendered at a device pixel ratio of ``scale`` rather
    than through a scaled painter, so pixel-sized items (scatter symbols, markers) grow
    with everything else instead of staying at their on-screen pixel size.
    """
    path = Path(path)
    scene = view.scene()
    rect = view.sceneRect() if view.sceneRect().isValid() else scene.sceneRect()
    if path.suffix.lower() == ".svg":
        from PySide6.QtSvg import QSvgGenerator

        gen = QSvgGenerator()
        gen.setFileName(str(path))
        gen.setSize(rect.size().toSize())
        gen.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
        gen.setTitle("semscale plot")
        painter = QPainter(gen)
        scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
        painter.end()
    else:
        from PySide6.QtGui import QImage

        w, h = int(rect.width() * scale), int(rect.height() * scale)
        img = QImage(w, h, QImage.Format.Format_ARGB32)
        img.setDevicePixelRatio(scale)
        img.fill(QColor("white"))
        painter = QPainter(img)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
        painter.end()
        if not img.save(str(path)):
            raise OSError(f"could not write {path}")
    return path


def _categorical_ticks(labels: list[str], max_ticks: int = 60) -> list[tuple[float, str]]:
    """Tick every label when they fit, else every n-th (a 1000-class axis stays readable)."""
    step = max(1, math.ceil(len(labels) / max_ticks))
    return [(i + 0.5, lab) for i, lab in enumerate(labels) if i % step == 0]


# ====================================================================== accuracy


class AccuracyPlot(QWidget):
    """Top-1 (and top-5) accuracy vs number of names per class, log2 x axis.

    One curve per backbone, a bootstrap CI band around top-1, the spread over random
    orderings when there are several, and the peak (the scaling threshold) marked.
    """

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.x_mode = QComboBox()
        self.x_mode.addItem("names per class", "level")
        self.x_mode.addItem("categories in the label set", "n_categories")
        self.show_top5 = QCheckBox("top-5")
        self.show_top5.setChecked(True)
        self.show_ci = QCheckBox("95% CI")
        self.show_ci.setChecked(True)
        for w in (self.x_mode, self.show_top5, self.show_ci):
            (w.currentIndexChanged if isinstance(w, QComboBox) else w.toggled).connect(self._redraw)
        self.view = pg.PlotWidget()
        self.plot: pg.PlotItem = self.view.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setMenuEnabled(False)
        # beside the plot, not on it: good models crowd the top (top-5 near 100%), weak ones the
        # bottom, and a legend inside would hide a curve or the peak label in one case or the other
        self.legend = pg.LegendItem(labelTextSize="10pt")
        self.legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.plot.layout.addItem(self.legend, 2, 3)
        self.plot.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignTop)
        self.plot.legend = self.legend  # curves given a name= are listed in it
        self.plot.setYRange(0, 100)
        self.plot.setLimits(yMin=-5, yMax=105)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(_controls(_labelled("x axis:", self.x_mode), self.show_top5, self.show_ci))
        lay.addWidget(self.view, 1)
        self.results = ResultsData()
        self._plotted: dict[str, list[int]] = {}
        self._items: dict[str, dict] = {}
        self._redraw()

    def set_results(self, results: ResultsData) -> None:
        self.results = results
        self._redraw()

    def plotted_levels(self, backbone: Optional[str] = None) -> list[int]:
        """Levels currently drawn (for one backbone, or the union): what the self-test checks."""
        if backbone is not None:
            return list(self._plotted.get(backbone, []))
        return sorted({lv for v in self._plotted.values() for lv in v})

    def _reset(self) -> None:
        """Remove every item: a new run, or a changed display option."""
        plot = self.plot
        plot.clear()
        self.legend.clear()
        self._items = {}
        self._spare: list[dict] = []  # item sets made ahead for planned backbones (see _prepare)
        self._ticks: list = []
        self._xrange: tuple = ()
        xkey = self.x_mode.currentData()
        _style_plot(plot, "accuracy (%)",
                    "names per class (log₂ scale)" if xkey == "level" else "categories in the label set (log₂ scale)")
        self._message = pg.TextItem("", color="#777777", anchor=(0.5, 0.5))
        self._message.setFont(tick_font())
        plot.addItem(self._message)

    def _prepare(self, titles: list[str]) -> None:
        """Make the item sets of the backbones a run will draw before it starts.

        Creating plot items is the most expensive part of a redraw; done here (while the
        run is being set up) the first live redraw only hands them data. The engine names
        a backbone only when it reports it, so the sets are matched by order and their
        legend entries renamed then.
        """
        while len(self._items) + len(self._spare) < len(titles):
            i = len(self._items) + len(self._spare)
            self._spare.append(self._new_items(titles[i], i))

    def _drop_spare(self) -> None:
        for it in self._spare:
            for key, item in it.items():
                for x in (item if isinstance(item, list) else [item]):
                    if x is None:
                        continue
                    if key in ("top1", "top5"):
                        self.legend.removeItem(x)
                    self.plot.removeItem(x)
        self._spare = []

    def _items_for(self, name: str, index: int) -> dict:
        """The plot items of one backbone, created once and then only given new data."""
        it = self._items.get(name)
        if it is not None:
            return it
        if self._spare:
            it = self._spare.pop(0)
            for key, suffix in (("top1", "top-1"), ("top5", "top-5")):
                label = self.legend.getLabel(it[key]) if it[key] is not None else None
                if label is not None and label.text != f"{name} {suffix}":
                    label.setText(f"{name} {suffix}")
        else:
            it = self._new_items(name, index)
        self._items[name] = it
        return it

    def _new_items(self, name: str, index: int) -> dict:
        plot, col = self.plot, colour(index)
        fill = QColor(col)
        fill.setAlpha(45)
        it = {"lo": pg.PlotCurveItem(pen=pg.mkPen(None)), "hi": pg.PlotCurveItem(pen=pg.mkPen(None))}
        it["band"] = pg.FillBetweenItem(it["lo"], it["hi"], brush=pg.mkBrush(fill))
        plot.addItem(it["band"])
        it["band"].setVisible(self.show_ci.isChecked())
        it["spread"] = [plot.plot(pen=pg.mkPen(col, width=1, style=Qt.PenStyle.DotLine)) for _ in range(2)]
        it["top1"] = plot.plot(pen=pg.mkPen(col, width=2.5), symbol="o", symbolSize=8, symbolBrush=col,
                               symbolPen="w", name=f"{name} top-1")
        it["top5"] = None
        if self.show_top5.isChecked():
            it["top5"] = plot.plot(pen=pg.mkPen(col, width=1.5, style=Qt.PenStyle.DashLine), symbol="t",
                                   symbolSize=7, symbolBrush=None, symbolPen=col, name=f"{name} top-5")
        it["vline"] = pg.InfiniteLine(angle=90, pen=pg.mkPen(col, width=1, style=Qt.PenStyle.DashDotLine))
        it["star"] = pg.ScatterPlotItem(symbol="star", size=18, brush=pg.mkBrush(col), pen=pg.mkPen("w"))
        it["text"] = pg.TextItem("", color=col, fill=pg.mkBrush(255, 255, 255, 200))
        it["text"].setFont(tick_font())
        for k in ("vline", "star", "text"):
            plot.addItem(it[k])
            it[k].setVisible(False)
        return it

    def _redraw(self) -> None:
        res = self.results
        key = (id(res), self.x_mode.currentIndex(), self.show_top5.isChecked(), self.show_ci.isChecked())
        if key != getattr(self, "_key", None):
            self._key = key
            self._reset()
        self._plotted = {}
        xkey = self.x_mode.currentData()
        ticks: dict[float, str] = {}
        if xkey == "level":
            for lv in res.planned_levels:
                ticks[math.log2(lv)] = str(lv)
        backbones = res.backbones()
        if res.status == "running" and res.planned_backbones:
            self._prepare(res.planned_backbones)
        elif self._spare:  # the run ended before these backbones reported: no empty legend entries
            self._drop_spare()
        for bi, name in enumerate(backbones):
            c = res.curve(name)
            if c is None:
                continue
            xs_raw = c.levels if xkey == "level" else c.n_categories
            xs = np.log2(np.maximum(xs_raw, 1))
            for x, raw in zip(xs, xs_raw):
                ticks[float(x)] = f"{int(raw)}"
            it = self._items_for(name, bi)
            it["lo"].setData(xs, c.ci_low * 100)
            it["hi"].setData(xs, c.ci_high * 100)
            for item, arr in zip(it["spread"], (c.spread_low, c.spread_high)):
                item.setData(xs, arr * 100) if c.n_orderings > 1 else item.setData([], [])
            it["top1"].setData(xs, c.top1 * 100)
            if it["top5"] is not None:
                it["top5"].setData(xs, c.top5 * 100)
            self._plotted[name] = [int(v) for v in c.levels]
            self._mark_peak(name, c, xs, it)
        major = sorted(ticks.items())
        if len(major) > 14:  # keep the axis legible for long sweeps
            major = major[:: math.ceil(len(major) / 14)]
        if major != self._ticks:
            self._ticks = major
            self.plot.getAxis("bottom").setTicks([major, []] if major else None)
        if not backbones:
            msg = "waiting for the first level…" if res.planned_levels else \
                "Start a sweep or open a run:\naccuracy appears here as each level finishes"
            xs_all = [math.log2(v) for v in res.planned_levels] or [0.0, 3.0]
            self._message.setText(msg)
            self._message.setPos((min(xs_all) + max(xs_all)) / 2, 50)
            self._message.setVisible(True)
            rng: tuple = (min(xs_all) - 0.3, max(xs_all) + 0.3, 0, 100)
        else:
            self._message.setVisible(False)
            xs_all = list(ticks) or [0.0]
            rng = (min(xs_all) - 0.25, max(xs_all) + 0.25)
        if rng != self._xrange:
            self._xrange = rng
            self.plot.setXRange(rng[0], rng[1], padding=0)
            if len(rng) == 4:
                self.plot.setYRange(rng[2], rng[3])
        if backbones:
            self.plot.enableAutoRange(axis="y")

    def _mark_peak(self, name: str, c, xs: np.ndarray, it: dict) -> None:
        t = self.results.threshold(name)
        hits = np.nonzero(c.levels == t["peak_level"])[0] if t and t.get("peak_level") is not None else []
        if len(xs) == 0 or len(hits) == 0:
            for k in ("vline", "star", "text"):
                it[k].setVisible(False)
            return
        j = int(hits[0])
        x, y = float(xs[j]), float(c.top1[j] * 100)
        it["vline"].setPos(x)
        it["star"].setData([x], [y])
        trend = t.get("trend", "")
        words = {"declining": "falls after", "plateau": "plateaus after", "rising": "still rising"}
        lv = int(t["peak_level"])
        mid = (float(np.min(xs)) + float(np.max(xs))) / 2
        # keep the label inside the plot: right-aligned in the right half, left-aligned otherwise
        it["text"].setAnchor((1.0, 1.3) if x > mid else (0.0, 1.3))
        it["text"].setText(f"peak {y:.1f}% at {lv} name{'s' if lv != 1 else ''}"
                           f"{' — ' + words.get(trend, trend) if trend else ''}")
        it["text"].setPos(x, y)
        for k in ("vline", "star", "text"):
            it[k].setVisible(True)


# ====================================================================== heatmaps


class _Heatmap(QWidget):
    """Shared parts of the matrix views: an ImageItem, a colour bar and a hover readout."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        self.plot: pg.PlotItem = self.view.addPlot()
        self.plot.setMenuEnabled(False)
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=False, y=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.cmap = pg.colormap.get("viridis")
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=self.cmap, width=14, interactive=False)
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.readout = QLabel(" ")
        self.readout.setStyleSheet("color: #444;")
        self.empty_text = pg.TextItem("", color="#777777", anchor=(0.5, 0.5))
        self.empty_text.setFont(tick_font())
        self.plot.addItem(self.empty_text)
        self._proxy = pg.SignalProxy(self.view.scene().sigMouseMoved, rateLimit=30, slot=self._hover)
        self.matrix = np.zeros((0, 0))

    def _show_matrix(self, m: np.ndarray, xlabels: list[str], ylabels: list[str], levels=(0, 1),
                     xtitle: str = "", ytitle: str = "") -> None:
        self.matrix = m
        _style_plot(self.plot, ytitle, xtitle)
        if m.size == 0:
            self.image.clear()
            self.image.setVisible(False)
            self.plot.getAxis("bottom").setTicks([[]])
            self.plot.getAxis("left").setTicks([[]])
            self.empty_text.setVisible(True)
            self.plot.setRange(xRange=(0, 1), yRange=(0, 1))
            self.empty_text.setPos(0.5, 0.5)
            return
        self.empty_text.setVisible(False)
        self.image.setVisible(True)
        self.image.setImage(np.asarray(m, dtype=float), autoLevels=False)
        self.image.setRect(QRectF(0, 0, m.shape[1], m.shape[0]))
        self.bar.setLevels(levels)
        self.plot.getAxis("bottom").setTicks([_categorical_ticks(xlabels, 30), []])
        self.plot.getAxis("left").setTicks([_categorical_ticks(ylabels, 60), []])
        self.plot.setRange(xRange=(0, m.shape[1]), yRange=(0, m.shape[0]), padding=0.01)

    def _hover(self, evt) -> None:
        pos = evt[0]
        if self.matrix.size == 0 or not self.plot.sceneBoundingRect().contains(pos):
            return
        p: QPointF = self.plot.vb.mapSceneToView(pos)
        col, row = int(math.floor(p.x())), int(math.floor(p.y()))
        if 0 <= row < self.matrix.shape[0] and 0 <= col < self.matrix.shape[1]:
            self.readout.setText(self.describe_cell(row, col))

    def describe_cell(self, row: int, col: int) -> str:  # overridden
        return ""


class RecallHeatmap(_Heatmap):
    """Per-class recall (rows) across levels (columns): which classes gain or lose names."""

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
        self._redraw()

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


class ConfusionPlot(_Heatmap):
    """True class (rows) vs predicted class (columns) at one level, from predictions.csv."""

    level_requested = Signal()

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
        self._redraw()

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
            self.top.addItem(f"{self.classes[i]} → {self.classes[j]}: {off[i, j]:g} of {m[i].sum():g}")
        if self.top.count() == 0:
            self.top.addItem("no confusions at this level")

    def describe_cell(self, row: int, col: int) -> str:
        n, tot = int(self.counts[row, col]), int(self.counts[row].sum())
        pct = f" ({100 * n / tot:.1f}% of the class)" if tot else ""
        return f"true '{self.classes[row]}' predicted as '{self.classes[col]}': {n} image(s){pct}"


# ====================================================================== comparison


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
        self.results = ResultsData()
        self._redraw()

    def set_results(self, results: ResultsData) -> None:
        self.results = results
        self._redraw()

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
        for bi, (name, c) in enumerate(zip(names, curves)):
            if c is None:
                continue
            xs = np.array([pos[int(v)] for v in c.levels]) - 0.4 + width * (bi + 0.5)
            bars = pg.BarGraphItem(x=xs, height=c.top1 * 100, width=width * 0.92, brush=colour(bi), pen=pg.mkPen("w"))
            plot.addItem(bars)
            self.legend.addItem(bars, name)
        plot.getAxis("bottom").setTicks([[(i, str(lv)) for lv, i in pos.items()], []])
        if levels:
            plot.setXRange(-0.6, len(levels) - 0.4)
            plot.setYRange(0, 100)
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


class LevelsTable(QTableWidget):
    """levels.csv as a table: the numbers behind the plots."""

    COLUMNS = ["backbone", "ordering", "level", "n_categories", "n_images", "top1", "top5", "ci_low", "ci_high",
               "n_correct", "n_tied", "seconds"]

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.setHorizontalHeaderLabels(self.COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def set_results(self, results: ResultsData) -> None:
        rows = results.levels
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, key in enumerate(self.COLUMNS):
                v = row.get(key, "")
                text = f"{v:.4f}" if isinstance(v, float) and key not in ("seconds",) else str(v)
                item = QTableWidgetItem(text)
                if isinstance(v, (int, float)):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(r, c, item)


def sample_results(levels=(1, 2, 4, 8), backbones=("demo-vit", "demo-resnet"), n_classes: int = 10) -> ResultsData:
    """Plausible numbers for the previews (rises, then falls past a threshold)."""
    rng = np.random.default_rng(0)
    res = ResultsData(planned_levels=list(levels))
    classes = [f"class {i}" for i in range(n_classes)]
    for bi, b in enumerate(backbones):
        for k in levels:
            lk = math.log2(k)
            base = 0.55 + 0.16 * lk - 0.04 * lk ** 2 - 0.07 * bi
            per = [{"backbone": b, "ordering": 0, "level": k, "class": c, "n_images": 30,
                    "recall": float(np.clip(base + rng.normal(0, 0.15), 0, 1)),
                    "top5_recall": float(np.clip(base + 0.25 + rng.normal(0, 0.05), 0, 1)), "n_names": k}
                   for c in classes]
            res.add_level({"backbone": b, "ordering": 0, "level": k, "n_categories": n_classes * k, "n_images": 300,
                           "top1": base, "top5": min(1.0, base + 0.25), "ci_low": base - 0.05, "ci_high": base + 0.05,
                           "n_correct": int(base * 300), "seconds": 0.01}, per)
    return res


def preview() -> QWidget:
    """The accuracy plot with sample numbers."""
    w = AccuracyPlot()
    w.set_results(sample_results())
    w.resize(800, 500)
    w.setWindowTitle("semscale — accuracy plot preview")
    return w


if __name__ == "__main__":
    from .preview import run_preview

    run_preview(preview)


# ====================================================================== synergy & frequency

FIXED_METHODS = [("best_single", "best single"), ("oracle", "oracle (any right)"), ("mean_logits", "mean of logits"),
                 ("mean_probs", "mean of probabilities"), ("majority_vote", "majority vote")]
ADAPTIVE_TITLES = {"global": "global weights", "nlc": "logit controller (NLC)", "mean_logits": "mean of logits",
                   "best_single": "best single (picked on k)", "best_single_oracle": "best single (oracle pick)"}


class EnsemblePlot(QWidget):
    """Backbone synergy at one level: each backbone, the oracle, fixed ensembles, and the
    k-shot adaptive ensembles (mean over splits) — the engine's backbones/ensembles tables."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.level = QComboBox()
        self.level.currentIndexChanged.connect(self._redraw)
        self.view = pg.PlotWidget()
        self.plot: pg.PlotItem = self.view.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, alpha=0.25)
        self.plot.invertY(True)
        self.plot.getAxis("left").setStyle(tickLength=0)  # tick marks would poke into the bars
        self.summary = QLabel(" ")
        self.summary.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(_controls(_labelled("names per class:", self.level)))
        lay.addWidget(self.summary)
        lay.addWidget(self.view, 1)
        self.results = ResultsData()
        self.bars: list[tuple[str, float]] = []
        self._redraw()

    def set_results(self, results: ResultsData) -> None:
        self.results = results
        levels = sorted({int(r["level"]) for r in results.tables.get("backbones", [])})
        refill_combo(self.level, [str(v) for v in levels], prefer_last=True)
        self._redraw()

    def _rows(self, k: int) -> list[tuple[str, float, int]]:
        """(label, top-1, colour group) bars for level k."""
        out: list[tuple[str, float, int]] = []
        bb = self.results.table("backbones")
        if not bb.empty:
            for _, r in bb[bb["level"] == k].iterrows():
                out.append((str(r["backbone"]), float(r["top1"]), 0))
        ens = self.results.table("ensembles")
        if not ens.empty:
            e = ens[ens["level"] == k]
            fixed = e[e["k"] == 0].groupby("method")["top1"].mean()
            for key, title in FIXED_METHODS:
                if key in fixed:
                    out.append((title, float(fixed[key]), 1 if key != "oracle" else 2))
            adaptive = e[e["k"] > 0].groupby(["k", "method"])["top1"].mean()
            for (shots, method), v in adaptive.items():
                if method in ("global", "nlc"):
                    out.append((f"{ADAPTIVE_TITLES[method]}, {int(shots)}-shot", float(v), 3))
        return out

    def _redraw(self) -> None:
        plot = self.plot
        plot.clear()
        _style_plot(plot, "", "top-1 accuracy (%)")
        if not self.level.currentText():
            self.bars = []
            self.summary.setText("Tick two or more backbones in the Run panel: the run then compares them, "
                                 "measures the oracle (any backbone right) and fits k-shot ensembles.")
            plot.getAxis("left").setTicks([[]])
            return
        k = int(self.level.currentText())
        rows = self._rows(k)
        self.bars = [(t, v) for t, v, _ in rows]
        groups = [QColor("#0072B2"), QColor("#999999"), QColor("#D55E00"), QColor("#009E73")]
        for i, (title, v, g) in enumerate(rows):
            bar = pg.BarGraphItem(x0=[0], y=[i], height=0.7, width=[v * 100], brush=groups[g], pen=pg.mkPen("w"))
            plot.addItem(bar)
            t = pg.TextItem(f"{v * 100:.1f}%", color="#222222", anchor=(0, 0.5))
            t.setFont(tick_font())
            t.setPos(v * 100 + 0.5, i)
            plot.addItem(t)
        plot.getAxis("left").setTicks([[(i, t) for i, (t, _, _) in enumerate(rows)], []])
        plot.setXRange(-1.5, 105, padding=0)  # a little room left of 0 so its tick label shows
        plot.setYRange(-0.6, len(rows) - 0.4, padding=0)
        best = max((v for _, v, g in rows if g == 0), default=None)
        oracle = next((v for t, v, g in rows if g == 2), None)
        adaptive = max((v for _, v, g in rows if g == 3), default=None)
        parts = []
        if best is not None:
            parts.append(f"best single backbone {best * 100:.1f}%")
        if oracle is not None and best is not None:
            parts.append(f"oracle {oracle * 100:.1f}% (+{(oracle - best) * 100:.1f} points: the room an ensemble has)")
        if adaptive is not None:
            parts.append(f"best k-shot ensemble {adaptive * 100:.1f}% on held-out images "
                         "(the k-shot tab plots it against the number of labelled images)")
        self.summary.setText(f"At {k} name(s) per class: " + "; ".join(parts) if parts else " ")


class FrequencyPlot(QWidget):
    """Per-class recall against how often the class occurs in training data (log scale)."""

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
        plot.addItem(pg.ScatterPlotItem(d["log_frequency"].to_numpy(float), d["recall"].to_numpy(float) * 100,
                                        size=10, brush=pg.mkBrush(col), pen=pg.mkPen("w")))
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
