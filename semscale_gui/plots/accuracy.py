"""Top-1 (and top-5) accuracy against the number of names per class."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QCursor
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QSizePolicy, QToolTip, QVBoxLayout, QWidget

from core.results.views import CONTROL_LABELS, SYNONYMS, Curve, ResultsData
from semscale_gui.plots.base import _controls, _labelled, _style_plot, colour, tick_font

# control curves: dashed in their backbone's colour, one dash pattern and symbol per control
CONTROL_STYLE = {"random-words": ([7, 4], "s"), "random-chars": ([2, 3], "d")}
ALPHA = 0.05
HOVER_PX = 12  # a point within this many pixels of the mouse shows its tooltip
DEFAULT_LEVELS = (1, 2, 4, 8)


class AccuracyPlot(QWidget):
    """Top-1 (and top-5) accuracy vs number of names per class, log2 x axis.

    One curve per backbone, a bootstrap CI band around top-1, the spread over random
    orderings when there are several, and the peak (the scaling threshold) marked.
    Control curves (random words / letters with the same name counts) are dashed in the
    backbone's colour. A filled marker is a level significantly different from level 1
    (exact McNemar, Holm-adjusted along the curve), an open one is not; hovering a point
    shows its test and the share of bootstrap resamples in which each level is the peak. A click
    between two levels of a curve asks for that backbone's flips between them.
    """

    images_requested = Signal(object)  # core.results.drilldown.LevelFlips between the two levels around a click

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.x_mode = QComboBox()
        self.x_mode.addItem("names per class", "level")
        self.x_mode.addItem("categories in the label set", "n_categories")
        self.show_top5 = QCheckBox("top-5")
        self.show_top5.setChecked(True)
        self.show_ci = QCheckBox("95% CI")
        self.show_ci.setChecked(True)
        self.show_controls = QCheckBox("controls")
        self.show_controls.setChecked(True)
        self.show_controls.setToolTip("Control curves: the same number of names per class, random words or letters")
        for w in (self.x_mode, self.show_top5, self.show_ci, self.show_controls):
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
        lay.addLayout(_controls(_labelled("x axis:", self.x_mode), self.show_top5, self.show_ci, self.show_controls))
        lay.addWidget(self.view, 1)
        self.key_note = QLabel("Filled marker: significantly different from level 1 (exact McNemar test on the same "
                               "images, Holm-adjusted along the curve, p < 0.05); open: not. Dashed: control curves "
                               "with the same number of names. Hover a marker for its test and peak distribution.")
        self.key_note.setWordWrap(True)
        self.key_note.setStyleSheet("color: #555;")
        lay.addWidget(self.key_note)
        self.results = ResultsData()
        self._plotted: dict[str, list[int]] = {}
        self._items: dict[str, dict] = {}
        self._points: list[tuple[float, float, str]] = []  # (x, y in view units, tooltip) of every marker
        self.view.scene().sigMouseMoved.connect(self._hover)
        self._xy: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # per backbone: x drawn, top-1 (%)
        self.view.scene().sigMouseClicked.connect(self._click)
        self._redraw()

    def flips_at(self, x: float, y: float):
        """The flips of the curve nearest to (x, y) in data coordinates, between the levels either
        side of x (None outside every curve)."""
        from core.results.drilldown import LevelFlips

        best = None
        for name, (xs, ys) in self._xy.items():
            j = int(np.searchsorted(xs, x)) - 1
            if len(xs) < 2 or x < xs[0] or x > xs[-1]:
                continue
            j = min(max(j, 0), len(xs) - 2)
            t = (x - xs[j]) / max(xs[j + 1] - xs[j], 1e-12)
            dist = abs(ys[j] + t * (ys[j + 1] - ys[j]) - y)
            if best is None or dist < best[0]:
                best = (dist, name, j)
        if best is None:
            return None
        _, name, j = best
        levels = self._plotted[name]
        return LevelFlips(name, levels[j], levels[j + 1])

    def _click(self, evt) -> None:
        pos = evt.scenePos()
        if evt.button() != Qt.MouseButton.LeftButton or not self.plot.vb.sceneBoundingRect().contains(pos):
            return
        p = self.plot.vb.mapSceneToView(pos)
        sel = self.flips_at(p.x(), p.y())
        if sel is not None:
            self.images_requested.emit(sel)

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
        self._control_items: dict[tuple[str, str], pg.PlotDataItem] = {}
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
        it["top1"] = plot.plot(pen=pg.mkPen(col, width=2.5), symbol="o", symbolSize=9, symbolBrush=col,
                               symbolPen=pg.mkPen(col, width=1.5), name=f"{name} top-1")
        it["top5"] = None
        if self.show_top5.isChecked():
            it["top5"] = plot.plot(pen=pg.mkPen(col, width=1.5, style=Qt.PenStyle.DashLine), symbol="t",
                                   symbolSize=7, symbolBrush=None, symbolPen=col, name=f"{name} top-5")
        it["vline"] = pg.InfiniteLine(angle=90, pen=pg.mkPen(col, width=1, style=Qt.PenStyle.DashDotLine))
        it["star"] = pg.ScatterPlotItem(symbol="star", size=18, brush=pg.mkBrush(col), pen=pg.mkPen("w"))
        it["text"] = pg.TextItem("", color=col, fill=pg.mkBrush(255, 255, 255, 200))
        it["text"].setFont(tick_font())
        it["text"].setZValue(20)  # above every curve drawn later (control curves)
        for k in ("vline", "star", "text"):
            plot.addItem(it[k])
            it[k].setVisible(False)
        return it

    def _redraw(self) -> None:
        res = self.results
        key = (res.token, self.x_mode.currentIndex(), self.show_top5.isChecked(), self.show_ci.isChecked(),
               self.show_controls.isChecked())
        if key != getattr(self, "_key", None):
            self._key = key
            self._reset()
        self._plotted, self._xy = {}, {}
        self._points = []
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
            it["top1"].setData(xs, c.top1 * 100, symbolBrush=self._brushes(c, colour(bi)))
            if it["top5"] is not None:
                it["top5"].setData(xs, c.top5 * 100)
            self._plotted[name] = [int(v) for v in c.levels]
            self._xy[name] = (np.asarray(xs, dtype=float), np.asarray(c.top1 * 100, dtype=float))
            self._remember_points(name, c, xs)
            self._mark_peak(name, c, xs, it)
            if self.show_controls.isChecked():
                self._draw_controls(name, bi, xkey)
        if not ticks:  # nothing planned or drawn yet: powers of two, never raw log2 values
            ticks = {math.log2(lv): str(lv) for lv in DEFAULT_LEVELS}
        major = sorted(ticks.items())
        if len(major) > 14:  # keep the axis legible for long sweeps
            major = major[:: math.ceil(len(major) / 14)]
        if major != self._ticks:
            self._ticks = major
            self.plot.getAxis("bottom").setTicks([major, []] if major else None)
        if not backbones:
            msg = "waiting for the first level…" if res.planned_levels else \
                "Start a sweep or open a run:\naccuracy appears here as each level finishes"
            xs_all = [math.log2(v) for v in res.planned_levels or DEFAULT_LEVELS]
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

    def _draw_controls(self, name: str, index: int, xkey: str) -> None:
        """The backbone's control curves, dashed in its colour."""
        res = self.results
        for kind in res.names_kinds():
            if kind == SYNONYMS:
                continue
            c = res.curve(name, kind)
            if c is None:
                continue
            xs = np.log2(np.maximum(c.levels if xkey == "level" else c.n_categories, 1))
            item = self._control_items.get((name, kind))
            if item is None:
                dash, symbol = CONTROL_STYLE.get(kind, ([4, 4], "x"))
                label = CONTROL_LABELS.get(kind, kind)
                col = colour(index)
                item = self.plot.plot(pen=pg.mkPen(col, width=2, dash=dash), symbol=symbol, symbolSize=8,
                                      symbolPen=pg.mkPen(col, width=1.5), symbolBrush=col, name=f"{name} {label}")
                self._control_items[(name, kind)] = item
            item.setData(xs, c.top1 * 100, symbolBrush=self._brushes(c, colour(index)))
            self._remember_points(name, c, xs)

    def alpha(self) -> float:
        """The run's significance level (``--alpha``; 0.05 by default and for older runs)."""
        try:
            return float(self.results.meta.get("config", {}).get("alpha", ALPHA))
        except (TypeError, ValueError):
            return ALPHA

    def significant(self, c: Curve) -> np.ndarray:
        """Levels significantly different from level 1 (Holm-adjusted McNemar p < alpha)."""
        p = np.asarray(c.p_vs_level1_holm, dtype=float)
        if len(p) != len(c.levels):
            return np.zeros(len(c.levels), dtype=bool)
        return np.nan_to_num(p, nan=1.0) < self.alpha()

    def _brushes(self, c: Curve, col: QColor) -> list:
        """Filled markers where the level differs significantly from level 1, open (white) ones elsewhere."""
        filled, empty = pg.mkBrush(col), pg.mkBrush("w")
        return [filled if s else empty for s in self.significant(c)]

    def _remember_points(self, name: str, c: Curve, xs: np.ndarray) -> None:
        for j, x in enumerate(xs):
            self._points.append((float(x), float(c.top1[j] * 100), self.point_text(name, c, j)))

    def point_text(self, name: str, c: Curve, j: int) -> str:
        """Tooltip of one marker: accuracy, its paired test vs level 1 and the peak distribution."""
        lv = int(c.levels[j])
        kind = "" if c.names == SYNONYMS else f" ({CONTROL_LABELS.get(c.names, c.names)})"
        lines = [f"{name}{kind}, {lv} name{'s' if lv != 1 else ''} per class",
                 f"top-1 {c.top1[j] * 100:.1f}%  [{c.ci_low[j] * 100:.1f}, {c.ci_high[j] * 100:.1f}]"]
        p = c.p_vs_level1_holm[j] if len(c.p_vs_level1_holm) == len(c.levels) else np.nan
        if j > 0 and not np.isnan(p):
            lines.append(f"vs level {int(c.levels[0])}: McNemar p = {p:.3g} (Holm), "
                         + ("significant" if p < self.alpha() else "not significant"))
        share = c.peak_share if len(c.peak_share) == len(c.levels) else np.zeros(0)
        if len(share) and not np.all(np.isnan(share)):
            dist = ", ".join(f"{int(lv_)}: {s * 100:.0f}%" for lv_, s in zip(c.levels, share) if not np.isnan(s))
            lines.append(f"peak here in {share[j] * 100:.0f}% of bootstrap resamples")
            lines.append(f"peak distribution: {dist}")
        return "\n".join(lines)

    def text_near(self, scene_pos: QPointF) -> str:
        """The tooltip of the marker nearest a scene position, '' when none is within reach."""
        vb = self.plot.vb
        best, best_d = "", float(HOVER_PX)
        for x, y, text in self._points:
            q = vb.mapViewToScene(QPointF(x, y))
            d = math.hypot(q.x() - scene_pos.x(), q.y() - scene_pos.y())
            if d <= best_d:
                best, best_d = text, d
        return best

    def _hover(self, scene_pos: QPointF) -> None:
        text = self.text_near(scene_pos)
        if text:
            QToolTip.showText(QCursor.pos(), text, self.view)
        else:
            QToolTip.hideText()

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
        words = {"declining": "falls after", "plateau": "plateaus after", "rising": "still rising",
                 "fluctuating": "fluctuates"}
        lv = int(t["peak_level"])
        mid = (float(np.min(xs)) + float(np.max(xs))) / 2
        # keep the label inside the plot: right-aligned in the right half, left-aligned otherwise
        it["text"].setAnchor((1.0, 1.3) if x > mid else (0.0, 1.3))
        p = t.get("p_value")
        it["text"].setText(f"peak {y:.1f}% at {lv} name{'s' if lv != 1 else ''}"
                           f"{' — ' + words.get(trend, trend) if trend else ''}"
                           f"{f' (p = {p:.2g})' if p is not None else ''}")
        it["text"].setPos(x, y)
        for k in ("vline", "star", "text"):
            it[k].setVisible(True)
