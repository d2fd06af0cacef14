"""How alike two backbones see the same images: similarity.csv as a coloured backbone x backbone matrix.

Each cell is the linear CKA (or the k-NN agreement) of a pair of backbones' image
embeddings, over all images or one class's; white is 0, dark blue is 1. The diagonal is 1
by definition. Shown in the Backbones tab when the run has two or more embedding backbones.
"""

from __future__ import annotations

import math
from typing import Optional

import pandas as pd
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QComboBox, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from core.results.views import ResultsData
from semscale_gui.plots.base import _controls, _labelled, refill_combo

MEASURES = {"linear CKA": "cka", "k-NN agreement": "knn_agreement"}
ALL_IMAGES = "all images"


def cell_colour(value: float) -> QColor:
    """White (0) to dark blue (1); grey for a value that could not be computed."""
    if value is None or not math.isfinite(value):
        return QColor("#dddddd")
    v = min(1.0, max(0.0, float(value)))
    lo, hi = (255, 255, 255), (8, 48, 107)
    return QColor(*(round(a + (b - a) * v) for a, b in zip(lo, hi)))


def text_colour(value: float) -> QColor:
    return QColor("white") if value is not None and math.isfinite(value) and value > 0.55 else QColor("black")


class SimilarityMatrix(QWidget):
    """Backbone x backbone matrix of similarity.csv, by measure and by class."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.measure = QComboBox()
        self.measure.addItems(list(MEASURES))
        self.scope = QComboBox()
        self.scope.addItem(ALL_IMAGES)
        self.title = QLabel("Representation similarity")
        self.title.setStyleSheet("font-weight: bold;")
        self.note = QLabel()
        self.note.setStyleSheet("color: #666;")
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.addLayout(_controls(self.title, _labelled("measure", self.measure), _labelled("images", self.scope)))
        lay.addWidget(self.table)
        lay.addWidget(self.note)
        self.frame = pd.DataFrame()
        self.measure.currentIndexChanged.connect(self._redraw)
        self.scope.currentIndexChanged.connect(self._redraw)
        self.setVisible(False)

    def set_results(self, results: ResultsData) -> None:
        df = results.table("similarity")
        self.frame = df if isinstance(df, pd.DataFrame) else pd.DataFrame()
        has = not self.frame.empty and {"backbone_a", "backbone_b", "scope", "cka"} <= set(self.frame.columns)
        self.setVisible(has)
        if not has:
            self.table.setRowCount(0)
            self.table.setColumnCount(0)
            return
        classes = [str(c) for c in dict.fromkeys(self.frame.loc[self.frame["scope"] == "class", "class"])]
        refill_combo(self.scope, [ALL_IMAGES, *classes])
        self._redraw()

    def backbones(self) -> list[str]:
        df = self.frame
        return [str(b) for b in dict.fromkeys([*df["backbone_a"], *df["backbone_b"]])] if not df.empty else []

    def values(self) -> dict[tuple[str, str], dict]:
        """(a, b) -> the similarity.csv row shown, both orders, for the chosen scope."""
        df = self.frame
        if df.empty:
            return {}
        scope = self.scope.currentText()
        sel = df[df["scope"] == "overall"] if scope == ALL_IMAGES else \
            df[(df["scope"] == "class") & (df["class"].astype(str) == scope)]
        out = {}
        for r in sel.to_dict("records"):
            out[(str(r["backbone_a"]), str(r["backbone_b"]))] = r
            out[(str(r["backbone_b"]), str(r["backbone_a"]))] = r
        return out

    def _redraw(self) -> None:
        names = self.backbones()
        key = MEASURES[self.measure.currentText()]
        vals = self.values()
        self.table.setRowCount(len(names))
        self.table.setColumnCount(len(names))
        self.table.setHorizontalHeaderLabels(names)
        self.table.setVerticalHeaderLabels(names)
        n_images, k = None, None
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                row = vals.get((a, b))
                if a == b:
                    v, tip = 1.0, f"{a} with itself"
                elif row is None:
                    v, tip = float("nan"), f"{a} vs {b}: not computed"
                else:
                    v = float(row[key]) if row[key] is not None else float("nan")
                    n_images, k = int(row["n_images"]), int(row["knn_k"])
                    knn = f", {k}-NN agreement {float(row['knn_agreement']):.3f}" if k else ""
                    tip = f"{a} vs {b}: linear CKA {float(row['cka']):.3f}{knn} on {n_images} images"
                item = QTableWidgetItem("" if not math.isfinite(v) else f"{v:.3f}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setBackground(cell_colour(v))
                item.setForeground(text_colour(v))
                item.setToolTip(tip)
                self.table.setItem(i, j, item)
        # as tall as its rows (up to the maximum), so no empty band sits under a small matrix
        rows_h = sum(self.table.rowHeight(i) for i in range(len(names)))
        self.table.setFixedHeight(min(220, max(90, rows_h + self.table.horizontalHeader().height() + 4)))
        what = ("linear CKA of the image embeddings (1 = the same up to rotation and scale)" if key == "cka" else
                f"share of each image's {k or ''} nearest neighbours common to both backbones")
        where = "all images" if self.scope.currentText() == ALL_IMAGES else f"class {self.scope.currentText()}"
        self.note.setText(f"{what}; {where}" + (f", {n_images} images" if n_images else ""))


def preview() -> SimilarityMatrix:
    """Three made-up backbones: two alike, one unrelated."""
    import numpy as np

    from core.stats.similarity import similarity_rows

    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 16))
    feats = {"ViT-B-32": base, "ViT-B-16": base + 0.5 * rng.normal(size=base.shape), "RN50": rng.normal(size=(300, 16))}
    res = ResultsData()
    res.add_table_rows("similarity", similarity_rows(feats, np.arange(300) % 3, ["cat", "dog", "owl"], k=10))
    w = SimilarityMatrix()
    w.set_results(res)
    w.resize(560, 300)
    return w


if __name__ == "__main__":  # python -m semscale_gui.plots.similarity
    from semscale_gui.preview import run_preview

    run_preview(preview)
