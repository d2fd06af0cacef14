"""What every plot shares: the palette, fonts, axis styling, selector rows and export.

One place for these so the views look alike and a fix to, say, export reaches all of them.
"""

from __future__ import annotations

import math
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

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
        ax.enableAutoSIPrefix(False)  # plain percent at every scale, never "(x0.001)"
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
