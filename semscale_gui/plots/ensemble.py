"""Backbone synergy at one level: backbones, oracle, fixed and adaptive ensembles."""

from __future__ import annotations

from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton, QVBoxLayout, QWidget

from core.results.views import ResultsData
from semscale_gui.plots.base import _controls, _labelled, _style_plot, refill_combo, tick_font

FIXED_METHODS = [("best_single", "best single"), ("oracle", "oracle (any right)"), ("mean_logits", "mean of logits"),
                 ("mean_probs", "mean of probabilities"), ("majority_vote", "majority vote")]
ADAPTIVE_TITLES = {"global": "global weights", "nlc": "logit controller (NLC)", "mean_logits": "mean of logits",
                   "best_single": "best single (picked on k)", "best_single_oracle": "best single (oracle pick)"}


class EnsemblePlot(QWidget):
    """Backbone synergy at one level: each backbone, the oracle, fixed ensembles, and the
    k-shot adaptive ensembles (mean over splits) — the engine's backbones/ensembles tables.

    The buttons (or a click on a backbone's, the oracle's or a fixed ensemble's bar) ask for
    the images behind the gap: those only one backbone gets right, and those the oracle gets
    right and the chosen ensemble does not."""

    images_requested = Signal(object)  # core.results.drilldown.SynergyImages

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
        self.ensemble = QComboBox()
        for key in ("mean_logits", "mean_probs", "majority_vote"):
            self.ensemble.addItem(dict(FIXED_METHODS)[key], key)
        self.only_one_btn = QPushButton("Images only one backbone gets right")
        self.only_one_btn.clicked.connect(lambda: self.select("only_one"))
        self.oracle_btn = QPushButton("Oracle right, ensemble wrong")
        self.oracle_btn.clicked.connect(lambda: self.select("oracle_not_ensemble"))
        lay.addLayout(_controls(_labelled("names per class:", self.level), self.only_one_btn, self.oracle_btn,
                                _labelled("ensemble:", self.ensemble)))
        lay.addWidget(self.summary)
        lay.addWidget(self.view, 1)
        self.results = ResultsData()
        self.bars: list[tuple[str, float]] = []
        self.view.scene().sigMouseClicked.connect(self._click)
        self._redraw()

    def select(self, kind: str, ensemble: str = "") -> None:
        """Ask for the images behind the synergy at the level shown (see the class docstring)."""
        from core.results.drilldown import SynergyImages

        if self.level.currentText():
            self.images_requested.emit(SynergyImages(int(self.level.currentText()), kind,
                                             ensemble or self.ensemble.currentData()))

    def _click(self, evt) -> None:
        pos = evt.scenePos()
        if evt.button() != Qt.MouseButton.LeftButton or not self.plot.vb.sceneBoundingRect().contains(pos):
            return
        i = int(round(self.plot.vb.mapSceneToView(pos).y()))
        if not 0 <= i < len(self._groups):
            return
        method = {t: k for k, t in FIXED_METHODS}.get(self.bars[i][0], "")
        if self._groups[i] == 0:
            self.select("only_one")
        elif method == "oracle":
            self.select("oracle_not_ensemble")
        elif method in ("mean_logits", "mean_probs", "majority_vote"):
            self.select("oracle_not_ensemble", method)

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
        enough = len(self.results.table("backbones")) > 0
        self.only_one_btn.setEnabled(bool(self.level.currentText()) and enough)
        self.oracle_btn.setEnabled(bool(self.level.currentText()) and enough)
        if not self.level.currentText():
            self.bars, self._groups = [], []
            self.summary.setText("Tick two or more backbones in the Run panel: the run then compares them, "
                                 "measures the oracle (any backbone right) and fits k-shot ensembles.")
            plot.getAxis("left").setTicks([[]])
            return
        k = int(self.level.currentText())
        rows = self._rows(k)
        self.bars = [(t, v) for t, v, _ in rows]
        self._groups = [g for _, _, g in rows]
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
