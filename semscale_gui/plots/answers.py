"""What the vision-language backbones answered, by class, from the run's answers.csv.

Each class lists its answers most frequent first (answers differing only in case, punctuation
or a plural are one row); answers that matched no class are highlighted, since they are where
a label set lacks a name the model uses. The table is computed by :mod:`core.results.answers`
on a pool thread; a run without answers.csv says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pandas as pd
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QHeaderView, QLabel, QLineEdit, QStackedWidget, QTableView, QVBoxLayout, QWidget,
)

from core.results.answers import one_line
from core.results.views import ResultsData
from semscale_gui.plots.base import _controls, _labelled, refill_combo
from semscale_gui.tasks import run_task

UNMATCHED = QColor("#fde8d7")
HIGHEST = "highest"
ANSWER_CHARS = 160  # a long generated answer is cut on screen (its tooltip shows more)
NO_ANSWERS = ("This run has no answers.csv. Answers are written for vision-language backbones in the open or "
              "closed mode (add one with “VLM…” in the Run panel's backbone picker).")


class AnswersModel(QAbstractTableModel):
    """Rows of :func:`core.results.answers.answers_by_class` (one backbone), the class named once per group."""

    HEADERS = ["class", "answer", "count", "share", "matched classes", "credit"]

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows = pd.DataFrame()
        self._first: list[bool] = []

    def set_rows(self, rows: pd.DataFrame) -> None:
        self.beginResetModel()
        self.rows = rows.reset_index(drop=True)
        cls = self.rows["true_class"].astype(str).tolist() if len(self.rows) else []
        self._first = [i == 0 or cls[i] != cls[i - 1] for i in range(len(cls))]
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        row = self.rows.iloc[r]
        if role == Qt.ItemDataRole.DisplayRole:
            if c == 0:
                return str(row["true_class"]) if self._first[r] else ""
            if c == 1:
                return one_line(row["answer"], ANSWER_CHARS) if row["answer"] != "" else "(empty answer)"
            if c == 2:
                return str(int(row["count"]))
            if c == 3:
                return f"{row['share'] * 100:.0f}%"
            if c == 4:
                return str(row["matched_classes"]).replace("|", ", ") if row["matched"] else "no class"
            return f"{row['credit']:.2f}"
        if role == Qt.ItemDataRole.BackgroundRole and not row["matched"] and c > 0:
            return UNMATCHED
        if role == Qt.ItemDataRole.FontRole and c == 0 and self._first[r]:
            f = QFont()
            f.setBold(True)
            return f
        if role == Qt.ItemDataRole.ToolTipRole and c == 1:
            return one_line(row["answer"], 2000)
        if role == Qt.ItemDataRole.TextAlignmentRole and c in (2, 3, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def _read(run_dir: str, predictions_path: Optional[str]) -> Optional[pd.DataFrame]:
    """answers.csv with true classes (from predictions.csv when the file has none); pool thread."""
    from core.results.answers import read_answers, with_true_class

    df = read_answers(run_dir)
    if df is None:
        return None
    pred = None
    if "true_class" not in df and predictions_path:
        pred = pd.read_csv(predictions_path, usecols=["image", "true_class"], dtype=str, keep_default_na=False)
    return with_true_class(df, pred)


class AnswersView(QWidget):
    """Answers per class with counts, for one backbone and level (each image's highest level by default)."""

    drawn = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.backbone = QComboBox()
        self.backbone.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # "openai:model@url" in full
        self.level = QComboBox()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter classes or answers…")
        self.search.setClearButtonEnabled(True)
        self.search.setMaximumWidth(220)
        self.unmatched_only = QCheckBox("unmatched only")
        self.unmatched_only.setToolTip("Only answers that named no class: names the label set may be missing")
        for cb in (self.backbone, self.level):
            cb.currentIndexChanged.connect(self._redraw)
        self.search.textChanged.connect(self._redraw)
        self.unmatched_only.toggled.connect(self._redraw)
        self.summary = QLabel(" ")
        self.summary.setWordWrap(True)
        self.model = AnswersModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.empty = QLabel(NO_ANSWERS)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.empty.setStyleSheet("color: #555; padding: 12px;")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.table)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(_controls(_labelled("backbone:", self.backbone), _labelled("names per class:", self.level),
                                self.search, self.unmatched_only))
        lay.addWidget(self.summary)
        lay.addWidget(self.stack, 1)
        self.results = ResultsData()
        self.answers: Optional[pd.DataFrame] = None
        self.shown = pd.DataFrame()
        self._loaded_key: Any = None
        self._generation = 0

    def set_results(self, results: ResultsData) -> None:
        """Read the run's answers.csv in the background (again only when the file changed)."""
        self.results = results
        run_dir = results.run_dir
        path = Path(run_dir) / "answers.csv" if run_dir else None
        key = (run_dir, path.stat().st_mtime_ns if path is not None and path.is_file() else None)
        if key == self._loaded_key:
            self._redraw()
            return
        self._loaded_key = key
        self._generation += 1
        gen = self._generation
        if key[1] is None:
            self._set_answers(None)
            return
        self.summary.setText("reading answers.csv…")
        pred = results.predictions_path

        def done(df: Optional[pd.DataFrame]) -> None:
            if gen == self._generation:
                self._set_answers(df)

        def failed(e: Exception, _tb: str) -> None:
            if gen == self._generation:
                self._set_answers(None, f"cannot read {path}: {e}")

        run_task(lambda: _read(str(run_dir), str(pred) if pred else None), done, failed, context=self)

    def _set_answers(self, df: Optional[pd.DataFrame], problem: str = "") -> None:
        self.answers = df
        if df is None or df.empty:
            self.empty.setText(problem or (NO_ANSWERS if df is None else "answers.csv has no answers yet."))
            self.stack.setCurrentWidget(self.empty)
            refill_combo(self.backbone, [])
            refill_combo(self.level, [])
            self.shown = pd.DataFrame()
            self.model.set_rows(pd.DataFrame(columns=["true_class"]))
            self.summary.setText(" ")
            self.drawn.emit()
            return
        self.stack.setCurrentWidget(self.table)
        refill_combo(self.backbone, [str(b) for b in pd.unique(df["backbone"].astype(str))])
        levels = [str(int(v)) for v in sorted(pd.unique(df["level"].dropna()))]
        refill_combo(self.level, [HIGHEST] + levels)
        self._redraw()

    def _redraw(self, *_args: Any) -> None:
        from core.results.answers import answers_by_class

        df = self.answers
        if df is None or df.empty or not self.backbone.currentText():
            return
        level = None if self.level.currentText() in ("", HIGHEST) else int(self.level.currentText())
        rows = answers_by_class(df, self.backbone.currentText(), level, classes=self.results.classes() or None)
        n_answers = int(rows["count"].sum()) if len(rows) else 0
        n_unmatched = int(rows.loc[~rows["matched"].astype(bool), "count"].sum()) if len(rows) else 0
        text = self.search.text().strip().casefold()
        if text:
            rows = rows[rows["true_class"].str.casefold().str.contains(text, regex=False)
                        | rows["answer"].str.casefold().str.contains(text, regex=False)]
        if self.unmatched_only.isChecked():
            rows = rows[~rows["matched"].astype(bool)]
        self.shown = rows
        self.model.set_rows(rows)
        self.table.resizeColumnToContents(0)
        for c in (2, 3, 4, 5):
            self.table.resizeColumnToContents(c)
        where = "each image's highest level" if level is None else f"{level} name(s) per class"
        share = f"{n_unmatched / n_answers * 100:.1f}%" if n_answers else "–"
        self.summary.setText(f"{n_answers} answers at {where} · {n_unmatched} ({share}) matched no class "
                             f"<span style='background:{UNMATCHED.name()}'>&nbsp;highlighted&nbsp;</span>")
        self.drawn.emit()
