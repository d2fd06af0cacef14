"""The study's aggregate plot: change of top-1 vs level 1 on the log2 names axis.

One thin line per dataset (from ``summary.csv``) and, on top, the mean over datasets
with its bootstrap CI band (from ``summary_by_level.csv``) for the chosen backbone. It
draws what the engine wrote and computes nothing itself.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from semscale_gui.plots import _controls, _labelled, _style_plot, colour, export_graphics, refill_combo
from core.labels.controls import SYNONYMS


class StudyPlot(QWidget):
    """Per-dataset curves (thin) and their mean with a CI band, for one backbone."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.summary = pd.DataFrame()
        self.by_level = pd.DataFrame()
        self.backbone = QComboBox()
        self.backbone.setMinimumContentsLength(14)
        self.backbone.currentTextChanged.connect(self._backbone_changed)
        self.note = QLabel("Run the study to see how adding names changes top-1 on each dataset.")
        self.note.setWordWrap(True)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.plot = self.view.addPlot()
        _style_plot(self.plot, "top-1 change vs level 1 (points)", "names per class (log₂ axis)")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.legend = self.plot.addLegend(offset=(10, 10), labelTextSize="9pt")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        row = _controls(_labelled("Backbone", self.backbone))
        row.addStretch(1)
        lay.addLayout(row)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.note)
        self.dataset_curves: dict[str, pg.PlotDataItem] = {}
        self.mean_curve: Optional[pg.PlotDataItem] = None
        self.band: Optional[pg.FillBetweenItem] = None

    def set_data(self, summary: pd.DataFrame, by_level: pd.DataFrame) -> None:
        self.summary, self.by_level = summary, by_level
        names = list(dict.fromkeys(summary["backbone"])) if not summary.empty else []
        refill_combo(self.backbone, names)
        self.redraw()

    def _synonyms_only(self, df: pd.DataFrame) -> pd.DataFrame:
        return df[df["names"] == SYNONYMS] if "names" in df.columns else df

    def _backbone_changed(self, _text: str) -> None:  # a bound slot: PySide can crash at exit on a lambda
        self.redraw()

    def redraw(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.dataset_curves, self.mean_curve, self.band = {}, None, None
        bb = self.backbone.currentText()
        s = self._synonyms_only(self.summary)
        if s.empty or not bb:
            self.note.setText("Run the study to see how adding names changes top-1 on each dataset.")
            return
        s = s[s["backbone"] == bb]
        levels = sorted(s["level"].unique())
        ax = self.plot.getAxis("bottom")
        ax.setTicks([[(math.log2(k), str(k)) for k in levels]])
        zero = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("#888888", width=1, style=Qt.PenStyle.DashLine))
        self.plot.addItem(zero)
        for i, (name, g) in enumerate(s.groupby("dataset", sort=False)):
            g = g.sort_values("level")
            c = QColor(colour(i + 1))
            c.setAlpha(170)
            item = self.plot.plot(np.log2(g["level"].to_numpy(float)), g["delta_top1_vs_level1"].to_numpy() * 100,
                                  pen=pg.mkPen(c, width=1.2), symbol="o", symbolSize=4, symbolBrush=c,
                                  symbolPen=None, name=name)
            self.dataset_curves[name] = item
        b = self._synonyms_only(self.by_level)
        b = b[b["backbone"] == bb].sort_values("level") if not b.empty else b
        n = int(b["n_datasets"].max()) if not b.empty else 0
        if not b.empty:
            x = np.log2(b["level"].to_numpy(float))
            lo, hi = b["delta_ci_low"].to_numpy(float) * 100, b["delta_ci_high"].to_numpy(float) * 100
            if np.isfinite(lo).all() and np.isfinite(hi).all():
                band_c = QColor("#222222")
                band_c.setAlpha(40)
                low = pg.PlotDataItem(x, lo, pen=pg.mkPen(None))
                high = pg.PlotDataItem(x, hi, pen=pg.mkPen(None))
                self.band = pg.FillBetweenItem(low, high, brush=pg.mkBrush(band_c))
                self.plot.addItem(self.band)
            self.mean_curve = self.plot.plot(x, b["mean_delta_top1"].to_numpy(float) * 100,
                                             pen=pg.mkPen("#111111", width=3), symbol="s", symbolSize=7,
                                             symbolBrush="#111111", name=f"mean of {n} datasets (95% CI)")
        self.note.setText(f"{bb} on {s['dataset'].nunique()} datasets: a thin line per dataset; the thick line is "
                          "their mean, the band its 95% bootstrap CI over datasets.")

    def export(self, path: str | Path) -> Path:
        return export_graphics(self.view, path)


def preview() -> QWidget:
    """The plot with three made-up datasets."""
    rows = []
    for d, slope in (("a", 0.02), ("b", -0.01), ("c", 0.005)):
        for k in (1, 2, 4, 8):
            rows.append({"dataset": d, "backbone": "demo-vit", "level": k,
                         "delta_top1_vs_level1": slope * math.log2(k)})
    s = pd.DataFrame(rows)
    g = s.groupby("level")["delta_top1_vs_level1"]
    b = pd.DataFrame({"backbone": "demo-vit", "level": [1, 2, 4, 8], "n_datasets": 3,
                      "mean_delta_top1": g.mean().to_numpy(), "delta_ci_low": g.min().to_numpy(),
                      "delta_ci_high": g.max().to_numpy()})
    w = StudyPlot()
    w.set_data(s, b)
    w.resize(800, 500)
    w.setWindowTitle("semscale — study plot preview")
    return w


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
