"""The row of controls that picks which classes a per-class view shows."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QSpinBox, QWidget

from core.results.class_order import DEFAULT_TOP_N, FREQUENCY_SORTS, SORTS, ClassSelection
from semscale_gui.widgets import single_shot_timer


class ClassFilter(QWidget):
    """Search, sort and "top N / show all"; ``changed`` fires once per edit (typing is debounced)."""

    changed = Signal()

    def __init__(self, default_sort: str = "label", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Find class…")
        self.search.setClearButtonEnabled(True)
        self.search.setMaximumWidth(180)
        self.sort = QComboBox()
        for key, title in SORTS.items():
            self.sort.addItem(title, key)
        self.sort.setCurrentIndex(max(0, self.sort.findData(default_sort)))
        self.sort.setToolTip("Change = recall at the level shown minus recall with 1 name per class")
        self.top_n = QSpinBox()
        self.top_n.setRange(1, 100000)
        self.top_n.setValue(DEFAULT_TOP_N)
        self.top_n.setPrefix("top ")
        self.top_n.setToolTip("How many classes to show, in the order chosen")
        self.show_all = QCheckBox("show all")
        self.show_all.toggled.connect(self.top_n.setDisabled)
        self.count = QLabel()
        self.count.setStyleSheet("color: #666;")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.search)
        lay.addWidget(QLabel("sort:"))
        lay.addWidget(self.sort)
        lay.addWidget(self.top_n)
        lay.addWidget(self.show_all)
        lay.addWidget(self.count)
        self._debounce = single_shot_timer(self, 200, self.changed)
        # bound methods, not lambdas: a lambda holding self on a line edit's signal crashed PySide at exit
        self.search.textChanged.connect(self._later)
        self.sort.currentIndexChanged.connect(self._now)
        self.top_n.valueChanged.connect(self._later)
        self.show_all.toggled.connect(self._now)

    def _later(self, *_args) -> None:
        self._debounce.start()

    def _now(self, *_args) -> None:
        self.changed.emit()

    def selection(self) -> ClassSelection:
        return ClassSelection(self.search.text(), str(self.sort.currentData()),
                              0 if self.show_all.isChecked() else int(self.top_n.value()))

    def set_frequency_available(self, available: bool) -> None:
        """The frequency sorts only make sense when the run has a class-frequency table."""
        model = self.sort.model()
        for key in FREQUENCY_SORTS:
            item = model.item(self.sort.findData(key))
            if item is not None:
                item.setEnabled(available)
        if not available and self.sort.currentData() in FREQUENCY_SORTS:
            self.sort.setCurrentIndex(0)

    def set_count(self, shown: int, matching: int, total: int) -> None:
        text = f"{shown} of {total} classes"
        if matching != total:
            text += f" ({matching} match)"
        self.count.setText(text)
