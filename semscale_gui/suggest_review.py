"""Review suggested names before they join the labels: tick what to keep, then add.

Nothing is added until the user presses *Add*; then every ticked name is appended as one
undoable edit, so a whole batch of suggestions is one Ctrl+Z away.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel, QPlainTextEdit, QPushButton, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from semscale_gui.suggest_job import SOURCE_TITLES, SuggestedName, SuggestOutcome

COLUMNS = ["add", "class", "suggested name", "source", "similarity"]


class SuggestionReview(QDialog):
    """Every suggestion with a checkbox; ``accepted_items()`` are the ticked ones."""

    def __init__(self, outcome: SuggestOutcome, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("suggestReview")
        self.outcome = outcome
        req = outcome.request
        self.setWindowTitle(f"Suggested names for {req.scope}")
        n_classes = len({it.cls for it in outcome.items})
        src = SOURCE_TITLES.get(req.source, req.source)
        if outcome.items:
            head = (f"<b>{len(outcome.items)} name(s)</b> for {n_classes} class(es) from {src}. They are added after "
                    "your own names; untick the ones that are not synonyms.")
        else:
            head = (f"<b>No new names</b> from {src} for {req.scope}: every class already has {req.per_class} names, "
                    "or the source knows none that are not already used.")
        self.header = QLabel(head)
        self.header.setWordWrap(True)
        self.details = QLabel(" · ".join(outcome.notes))
        self.details.setWordWrap(True)
        self.details.setStyleSheet("color: #555;")
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.table = QTableWidget(len(outcome.items), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeaderItem(4).setToolTip("cosine similarity to the class's canonical name "
                                                      "(embedding neighbours only)")
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        for r, it in enumerate(outcome.items):
            check = QTableWidgetItem()
            check.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsSelectable)
            check.setCheckState(Qt.CheckState.Checked)
            self.table.setItem(r, 0, check)
            sim = "" if it.similarity is None else f"{it.similarity:.2f}"
            for c, text in enumerate((it.cls, it.name, it.source, sim), start=1):
                item = QTableWidgetItem(text)
                if c == 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        hh = self.table.horizontalHeader()
        for c in range(len(COLUMNS)):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnHidden(4, all(it.similarity is None for it in outcome.items))
        self.table.setCurrentItem(None)  # no focus frame on the first checkbox
        self.table.itemChanged.connect(self._update)
        self.table.cellDoubleClicked.connect(self._toggle_row)

        self.dropped = QPlainTextEdit("\n".join(outcome.dropped))
        self.dropped.setReadOnly(True)
        self.dropped.setMaximumHeight(80)
        self.dropped_title = QLabel(f"Left out, {len(outcome.dropped)}: a name of another class, or suggested "
                                    "for two classes (it would not tell them apart)")
        self.dropped_title.setWordWrap(True)
        for w in (self.dropped, self.dropped_title):
            w.setVisible(bool(outcome.dropped))

        self.accept_all_btn = QPushButton("Accept all")
        self.reject_all_btn = QPushButton("Reject all")
        self.accept_all_btn.clicked.connect(lambda: self.set_all(True))
        self.reject_all_btn.clicked.connect(lambda: self.set_all(False))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.addButton(self.accept_all_btn, QDialogButtonBox.ButtonRole.ResetRole)
        self.buttons.addButton(self.reject_all_btn, QDialogButtonBox.ButtonRole.ResetRole)
        self.add_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        if not outcome.items:
            for b in (self.accept_all_btn, self.reject_all_btn):
                b.setEnabled(False)

        lay = QVBoxLayout(self)
        lay.addWidget(self.header)
        lay.addWidget(self.details)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.dropped_title)
        lay.addWidget(self.dropped)
        lay.addWidget(self.buttons)
        self._update()
        self.resize(720, 520)

    def set_all(self, on: bool) -> None:
        state = Qt.CheckState.Checked if on else Qt.CheckState.Unchecked
        self.table.blockSignals(True)
        for r in range(self.table.rowCount()):
            self.table.item(r, 0).setCheckState(state)
        self.table.blockSignals(False)
        self._update()

    def set_checked(self, row: int, on: bool) -> None:
        self.table.item(row, 0).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _toggle_row(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        self.set_checked(row, item.checkState() != Qt.CheckState.Checked)

    def accepted_items(self) -> list[SuggestedName]:
        return [it for r, it in enumerate(self.outcome.items)
                if self.table.item(r, 0).checkState() == Qt.CheckState.Checked]

    def _update(self, *_args) -> None:
        n = len(self.accepted_items())
        self.add_button.setText(f"Add {n} name{'s' if n != 1 else ''}")
        self.add_button.setEnabled(n > 0)
