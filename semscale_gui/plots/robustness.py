"""Robustness: top-1 accuracy vs perturbation severity, per backbone (and the oracle and ensembles).

Reads ``robustness.csv`` (severity 0 = the clean images). A click on a point, or the button,
asks for the images that perturbation broke for that system (right clean, wrong perturbed;
:class:`core.results.robustness.BrokenImages`), which the results panel shows in the gallery.
"""

from __future__ import annotations

from typing import Optional

import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton, QVBoxLayout, QWidget

from core.results.views import ResultsData
from semscale_gui.plots.base import _controls, _labelled, _style_plot, colour, refill_combo

CLICK_PIXELS = 10  # how near a point a click must land
SYSTEM_TITLES = {"oracle": "oracle (any right)", "mean_logits": "mean of logits", "mean_probs": "mean of probabilities",
                 "majority_vote": "majority vote"}


class RobustnessView(QWidget):
    """Accuracy vs severity: one curve per system for the chosen perturbation and level."""

    images_requested = Signal(object)  # core.results.robustness.BrokenImages

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.perturbation = QComboBox()
        self.level = QComboBox()
        self.system = QComboBox()
        self.severity = QComboBox()
        for combo in (self.perturbation, self.level):
            combo.currentIndexChanged.connect(self._redraw)
        self.broken_btn = QPushButton("Images it broke")
        self.broken_btn.setToolTip("The images the system got right on the clean image and wrong on the perturbed one")
        self.broken_btn.clicked.connect(self._ask)
        self.view = pg.PlotWidget()
        self.plot: pg.PlotItem = self.view.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextSize="10pt")
        self.summary = QLabel(" ")
        self.summary.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(_controls(_labelled("perturbation:", self.perturbation), _labelled("names per class:", self.level)))
        lay.addLayout(_controls(_labelled("system:", self.system), _labelled("severity:", self.severity),
                                self.broken_btn))
        lay.addWidget(self.summary)
        lay.addWidget(self.view, 1)
        self.results = ResultsData()
        self.points: dict[str, pg.ScatterPlotItem] = {}
        self.view.scene().sigMouseClicked.connect(self._click)
        self._redraw()

    def frame(self) -> pd.DataFrame:
        return self.results.table("robustness")

    def set_results(self, results: ResultsData) -> None:
        self.results = results
        df = self.frame()
        pert = [p for p in dict.fromkeys(map(str, df["perturbation"])) if p != "none"] if len(df) else []
        refill_combo(self.perturbation, pert)
        refill_combo(self.level, [str(v) for v in sorted({int(v) for v in df["level"]})] if len(df) else [])
        self._redraw()

    def _selected(self) -> pd.DataFrame:
        """Rows of the perturbation and level shown, with the clean (severity 0) rows."""
        df = self.frame()
        if df.empty or not self.perturbation.currentText() or not self.level.currentText():
            return pd.DataFrame()
        d = df[(df["level"].astype(int) == int(self.level.currentText()))
               & df["perturbation"].astype(str).isin([self.perturbation.currentText(), "none"])]
        return d.sort_values(["severity"], kind="stable")

    def _redraw(self) -> None:
        plot = self.plot
        plot.clear()
        self.legend.clear()
        self.points = {}
        _style_plot(plot, "top-1 accuracy (%)", "severity (0 = clean images)")
        d = self._selected()
        self.broken_btn.setEnabled(not d.empty)
        if d.empty:
            refill_combo(self.system, [])
            refill_combo(self.severity, [])
            self.summary.setText("Add perturbations in the Run panel (Robustness) or with --perturb: the run then "
                                 "scores every backbone, the oracle and the ensembles on perturbed copies of the images.")
            return
        systems = list(dict.fromkeys(map(str, d["backbone"])))
        refill_combo(self.system, systems)
        refill_combo(self.severity, [str(int(s)) for s in sorted(set(d["severity"])) if int(s) > 0])
        for i, name in enumerate(systems):
            s = d[d["backbone"].astype(str) == name]
            x, y = s["severity"].astype(float).to_numpy(), s["top1"].astype(float).to_numpy() * 100
            dashed = name in SYSTEM_TITLES
            pen = pg.mkPen(colour(i), width=2, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
            plot.plot(x, y, pen=pen, name=SYSTEM_TITLES.get(name, name))
            pts = pg.ScatterPlotItem(x, y, size=9, brush=pg.mkBrush(colour(i)), pen=pg.mkPen("w"), data=[name] * len(x))
            plot.addItem(pts)
            self.points[name] = pts
        plot.setXRange(-0.2, float(d["severity"].max()) + 0.2, padding=0)
        plot.getAxis("bottom").setTicks([[(int(v), str(int(v))) for v in sorted(set(d["severity"]))], []])
        worst = d[d["severity"] > 0].sort_values("drop_vs_clean", ascending=False).head(1)
        parts = []
        if len(worst):
            w = worst.iloc[0]
            parts.append(f"largest drop: {SYSTEM_TITLES.get(str(w['backbone']), w['backbone'])} at severity "
                         f"{int(w['severity'])}, {float(w['drop_vs_clean']) * 100:.1f} points (p = {float(w['p_vs_clean']):.3g})")
        self.summary.setText(f"{self.perturbation.currentText()}: " + "; ".join(parts) +
                             ". Click a point to see the images that perturbation broke.")

    def _click(self, evt) -> None:
        """A click near points: the system chosen in the selector when its point is among them (curves
        often overlap), else the nearest; its severity. Severity 0 (clean) breaks nothing."""
        pos = evt.scenePos()
        if evt.button() != Qt.MouseButton.LeftButton or not self.plot.vb.sceneBoundingRect().contains(pos):
            return
        near = []
        for name, pts in self.points.items():
            xs, ys = pts.getData()
            for x, y in zip(xs, ys):
                p = self.plot.vb.mapViewToScene(pg.Point(float(x), float(y)))
                d = ((p.x() - pos.x()) ** 2 + (p.y() - pos.y()) ** 2) ** 0.5
                if d <= CLICK_PIXELS:
                    near.append((d, name, int(round(x))))
        if not near:
            return
        near.sort(key=lambda t: t[0])
        chosen = next((t for t in near if t[1] == self.system.currentText()), near[0])
        _, name, sev = chosen
        if sev <= 0:
            return
        self.system.setCurrentText(name)
        self.severity.setCurrentText(str(sev))
        self._ask()

    def _ask(self) -> None:
        from core.results.robustness import BrokenImages

        if not (self.system.currentText() and self.severity.currentText() and self.level.currentText()):
            return
        self.images_requested.emit(BrokenImages(self.system.currentText(), self.perturbation.currentText(),
                                                int(self.severity.currentText()), int(self.level.currentText())))


def preview() -> QWidget:
    """The view with made-up numbers (``python -m semscale_gui.plots.robustness``)."""
    rows = []
    for name, base, slope in (("A", 0.8, 0.1), ("B", 0.7, 0.05), ("oracle", 0.9, 0.06)):
        rows.append({"backbone": name, "perturbation": "none", "severity": 0, "level": 1, "top1": base,
                     "drop_vs_clean": 0.0, "p_vs_clean": 1.0})
        for s in (1, 3, 5):
            rows.append({"backbone": name, "perturbation": "gaussian_noise", "severity": s, "level": 1,
                         "top1": base - slope * s, "drop_vs_clean": slope * s, "p_vs_clean": 0.01})
    r = ResultsData()
    r.add_table_rows("robustness", rows)
    w = RobustnessView()
    w.set_results(r)
    w.resize(800, 500)
    w.setWindowTitle("semscale — robustness preview")
    return w


if __name__ == "__main__":
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    w = preview()
    w.show()
    app.exec()
