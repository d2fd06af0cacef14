"""The matrix view that the recall heatmap and the confusion matrix build on."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QLabel, QWidget

from .base import _categorical_ticks, _style_plot, tick_font


class _Heatmap(QWidget):
    """Shared parts of the matrix views: an ImageItem, a colour bar, a hover readout and clicks."""

    cell_clicked = Signal(int, int)  # row, column of the matrix shown

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
        self.view.scene().sigMouseClicked.connect(self._click)
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

    def cell_at(self, scene_pos: QPointF) -> Optional[tuple[int, int]]:
        """(row, column) of the matrix under a scene position, or None."""
        if self.matrix.size == 0 or not self.plot.vb.sceneBoundingRect().contains(scene_pos):
            return None
        p: QPointF = self.plot.vb.mapSceneToView(scene_pos)
        col, row = int(math.floor(p.x())), int(math.floor(p.y()))
        if 0 <= row < self.matrix.shape[0] and 0 <= col < self.matrix.shape[1]:
            return row, col
        return None

    def _hover(self, evt) -> None:
        cell = self.cell_at(evt[0])
        if cell is not None:
            self.readout.setText(self.describe_cell(*cell))

    def _click(self, evt) -> None:
        cell = self.cell_at(evt.scenePos())
        if cell is not None and evt.button() == Qt.MouseButton.LeftButton:
            self.cell_clicked.emit(*cell)

    def describe_cell(self, row: int, col: int) -> str:  # overridden
        return ""
