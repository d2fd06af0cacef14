"""The matrix view that the recall heatmap and the confusion matrix build on.

Rows and columns are classes (or levels); at 1,000 classes not every name fits, so the
axes label only as many rows as there is room for at the current zoom (every n-th, a
multiple of n so labels do not jump while panning) and every cell tells its full story
in the readout line and the tooltip. Mouse wheel zooms, dragging pans, "Fit" resets.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QLabel, QToolButton, QWidget

from core.results.class_order import ClassSelection, select_classes
from semscale_gui.tasks import AnalysisCache, analysis_cache
from semscale_gui.plots.base import _style_plot, tick_font

MAX_LABEL_CHARS = 28
MAX_AXIS_WIDTH = 230


class CategoryAxis(pg.AxisItem):
    """Names at the centres of rows (left) or columns (bottom): all that fit, else every n-th."""

    def __init__(self, orientation: str, max_chars: int = MAX_LABEL_CHARS) -> None:
        super().__init__(orientation)
        self.pin_last = False  # always label the last row/column (the confusion view's "other classes")
        self.enableAutoSIPrefix(False)
        # the step below already keeps labels apart; pyqtgraph's own limit would drop them all
        self.setStyle(textFillLimits=[(0, 1.0)], autoExpandTextSpace=False)
        if orientation in ("top", "bottom"):  # the first and last names may reach past the matrix's edges
            self.setStyle(hideOverlappingLabels=70)
        self.max_chars = max_chars
        self.labels: list[str] = []
        self._widths = np.zeros(0)

    def short(self, text: str) -> str:
        return text if len(text) <= self.max_chars else text[: self.max_chars - 1] + "…"

    def _metrics(self) -> QFontMetrics:
        return QFontMetrics(self.style.get("tickFont") or QFont())

    def set_labels(self, labels: Sequence[str]) -> None:
        self.labels = [str(x) for x in labels]
        fm = self._metrics()
        self._widths = np.array([fm.horizontalAdvance(self.short(x)) for x in self.labels], dtype=float)
        if self.orientation in ("left", "right"):
            widest = float(self._widths.max()) if len(self._widths) else 0.0
            # room for the names plus the rotated axis title beside them (else it covers short names)
            title = self._metrics().height() + 8 if self.label.isVisible() else 0
            self.setWidth(int(min(MAX_AXIS_WIDTH, max(30.0, widest + 16 + title))))
        self.picture = None
        self.update()

    def label_step(self, lo: float, hi: float, size: float) -> int:
        """Label every n-th row/column so that neighbouring labels do not overlap."""
        n = len(self.labels)
        if n == 0 or size <= 0:
            return 1
        px = size / max(hi - lo, 1e-9)  # pixels per row or column
        if self.orientation in ("left", "right"):
            need = self._metrics().height() * 1.15
        else:
            a, b = max(0, int(math.floor(lo))), min(n, int(math.ceil(hi)))
            need = (float(self._widths[a:b].max()) if b > a else 0.0) + 10
        return max(1, math.ceil(need / px))

    def tickValues(self, minVal: float, maxVal: float, size: float):  # noqa: N802 - pyqtgraph's API
        minVal, maxVal = sorted((minVal, maxVal))  # an inverted axis (rows top-down) passes them reversed
        n = len(self.labels)
        lo, hi = max(0, int(math.floor(minVal))), min(n, int(math.ceil(maxVal)))
        if n == 0 or hi <= lo:
            return []
        step = self.label_step(minVal, maxVal, size)
        start = -(-lo // step) * step
        idx = list(range(start, hi, step))
        if self.pin_last and hi == n and idx and idx[-1] != n - 1:
            if n - 1 - idx[-1] < step:  # room for the pinned label: drop the one before it
                idx.pop()
            idx.append(n - 1)
        return [(float(step), [i + 0.5 for i in idx])]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph's API
        out = []
        for v in values:
            i = int(math.floor(v))
            out.append(self.short(self.labels[i]) if 0 <= i < len(self.labels) else "")
        return out

    def visible_labels(self) -> list[str]:
        """The labels drawn now (what a test or a user can read on the axis)."""
        vb = self.linkedView()
        if vb is None:
            return []
        (x0, x1), (y0, y1) = vb.viewRange()
        lo, hi = (y0, y1) if self.orientation in ("left", "right") else (x0, x1)
        size = self.geometry().height() if self.orientation in ("left", "right") else self.geometry().width()
        vals = self.tickValues(lo, hi, size)
        return self.tickStrings(vals[0][1], 1, 1) if vals else []


class _Heatmap(QWidget):
    """Shared parts of the matrix views: an ImageItem, a colour bar, name axes, zoom and a hover readout."""

    drawn = Signal()  # after each redraw (a view's data may arrive from a background task)
    cell_clicked = Signal(int, int)  # row, column of the matrix shown

    def __init__(self, parent: Optional[QWidget] = None, cache: Optional[AnalysisCache] = None) -> None:
        super().__init__(parent)
        self.cache = cache or analysis_cache()
        self._wanted: tuple = ()  # the cache key of the data to draw next
        self._rows: np.ndarray = np.zeros(0, dtype=np.int64)  # the classes shown, as the filter chose them
        self.view = pg.GraphicsLayoutWidget()
        self.left_axis = CategoryAxis("left")
        self.bottom_axis = CategoryAxis("bottom", max_chars=16)
        self.plot: pg.PlotItem = self.view.addPlot(axisItems={"left": self.left_axis, "bottom": self.bottom_axis})
        self.plot.setMenuEnabled(False)
        self.plot.invertY(True)
        self.plot.hideButtons()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.cmap = pg.colormap.get("viridis")
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=self.cmap, width=14, interactive=False)
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.readout = QLabel(" ")
        self.readout.setStyleSheet("color: #444;")
        self.readout.setWordWrap(True)
        self.fit_button = QToolButton()
        self.fit_button.setText("Fit")
        self.fit_button.setToolTip("Show the whole matrix again (the mouse wheel zooms, dragging pans)")
        self.fit_button.clicked.connect(self.fit)
        self.empty_text = pg.TextItem("", color="#777777", anchor=(0.5, 0.5))
        self.empty_text.setFont(tick_font())
        self.plot.addItem(self.empty_text)
        self._proxy = pg.SignalProxy(self.view.scene().sigMouseMoved, rateLimit=30, slot=self._hover)
        self.view.scene().sigMouseClicked.connect(self._click)
        self.matrix = np.zeros((0, 0))
        self.row_labels: list[str] = []
        self.col_labels: list[str] = []

    def _show_matrix(self, m: np.ndarray, xlabels: list[str], ylabels: list[str], levels=(0, 1),
                     xtitle: str = "", ytitle: str = "") -> None:
        self.matrix = m
        self.row_labels, self.col_labels = list(ylabels), list(xlabels)
        _style_plot(self.plot, ytitle, xtitle)
        if m.size == 0:
            self.image.clear()
            self.image.setVisible(False)
            self.left_axis.set_labels([])
            self.bottom_axis.set_labels([])
            self.empty_text.setVisible(True)
            self.plot.setLimits(xMin=None, xMax=None, yMin=None, yMax=None)
            self.plot.setMouseEnabled(x=False, y=False)
            self.plot.setRange(xRange=(0, 1), yRange=(0, 1))
            self.empty_text.setPos(0.5, 0.5)
            self.view.setToolTip("")
            self.drawn.emit()
            return
        self.empty_text.setVisible(False)
        self.image.setVisible(True)
        self.image.setImage(np.asarray(m, dtype=float), autoLevels=False)
        self.image.setRect(QRectF(0, 0, m.shape[1], m.shape[0]))
        self.bar.setLevels(levels)
        self.left_axis.set_labels(ylabels)
        self.bottom_axis.set_labels(xlabels)
        self.plot.setMouseEnabled(x=True, y=True)
        self.plot.setLimits(xMin=0, xMax=m.shape[1], yMin=0, yMax=m.shape[0],
                            minXRange=min(1, m.shape[1]), minYRange=min(1, m.shape[0]))
        self.fit()
        self.drawn.emit()

    def _compute(self, key: tuple, fn: Callable[[], Any], on_done: Callable[[Any], None]) -> None:
        """``fn()`` from the analysis cache (a background task), handed to ``on_done`` unless another
        key was asked for meanwhile (a newer backbone, level or run)."""
        self._wanted = key

        def done(value: Any) -> None:
            if self._wanted == key:
                on_done(value)

        self.cache.request(key, fn, done, context=self)

    def _filter_rows(self, classes: Sequence[str], recall: np.ndarray, change: np.ndarray,
                     frequency: Optional[np.ndarray]) -> np.ndarray:
        """The class rows the filter asks for (search, sort, top N); it shows how many match."""
        sel = self.filter.selection()
        self.filter.set_frequency_available(frequency is not None)
        rows = select_classes(classes, sel, recall=recall, change=change, frequency=frequency)
        matching = len(select_classes(classes, ClassSelection(sel.text, "label", 0)))
        self.filter.set_count(len(rows), matching, len(classes))
        self._rows = rows
        return rows

    def fit(self) -> None:
        if self.matrix.size:
            self.plot.setRange(xRange=(0, self.matrix.shape[1]), yRange=(0, self.matrix.shape[0]), padding=0)

    def _hover(self, evt) -> None:
        pos = evt[0]
        if self.matrix.size == 0 or not self.plot.sceneBoundingRect().contains(pos):
            return
        p: QPointF = self.plot.vb.mapSceneToView(pos)
        col, row = int(math.floor(p.x())), int(math.floor(p.y()))
        if 0 <= row < self.matrix.shape[0] and 0 <= col < self.matrix.shape[1]:
            text = self.describe_cell(row, col)
            self.readout.setText(text)
            self.view.setToolTip(text)
        elif 0 <= row < self.matrix.shape[0] and col < 0:  # over the row names
            self.view.setToolTip(self.row_labels[row] if row < len(self.row_labels) else "")

    def cell_at(self, scene_pos: QPointF) -> Optional[tuple[int, int]]:
        """(row, column) of the matrix under a scene position, or None."""
        if self.matrix.size == 0 or not self.plot.vb.sceneBoundingRect().contains(scene_pos):
            return None
        p: QPointF = self.plot.vb.mapSceneToView(scene_pos)
        col, row = int(math.floor(p.x())), int(math.floor(p.y()))
        return (row, col) if 0 <= row < self.matrix.shape[0] and 0 <= col < self.matrix.shape[1] else None

    def _click(self, evt) -> None:
        cell = self.cell_at(evt.scenePos())
        if cell is not None and evt.button() == Qt.MouseButton.LeftButton:
            self.cell_clicked.emit(*cell)

    def describe_cell(self, row: int, col: int) -> str:  # overridden
        return ""
