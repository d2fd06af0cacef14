"""levels.csv as a table."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from core.results.views import ResultsData


class LevelsTable(QTableWidget):
    """levels.csv as a table: the numbers behind the plots."""

    COLUMNS = ["backbone", "ordering", "level", "n_categories", "n_images", "top1", "top5", "ci_low", "ci_high",
               "n_correct", "seconds", "n_tied", "names", "p_vs_level1", "p_vs_previous", "p_vs_level1_holm",
               "peak_share"]
    P_COLUMNS = ("p_vs_level1", "p_vs_previous", "p_vs_level1_holm")  # tiny p-values: 3 significant digits

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
                if isinstance(v, float) and v != v:
                    text = ""
                elif isinstance(v, float) and key in self.P_COLUMNS:
                    text = f"{v:.3g}"
                else:
                    text = f"{v:.4f}" if isinstance(v, float) and key not in ("seconds",) else str(v)
                item = QTableWidgetItem(text)
                if isinstance(v, (int, float)):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(r, c, item)
