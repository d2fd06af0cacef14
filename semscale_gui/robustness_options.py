"""The run panel's robustness options: which perturbations, at which severities (``--perturb``).

A perturbation and its severities are picked and added to a list the user can also edit as
text (``gaussian_noise:1,3,5; jpeg:5``); the engine checks the list when the run starts.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from core.data.perturb_specs import NAMES, parse_perturbations
from core.util.errors import InputError


class PerturbOptions(QWidget):
    """Perturbation picker + the list of ``NAME:SEVERITIES`` specs the run will score."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.name = QComboBox()
        self.name.addItems(list(NAMES))
        self.name.setToolTip("ImageNet-C corruptions, rotation and crop shifts (docs/robustness.md)")
        self.severities = QLineEdit("1,3,5")
        self.severities.setMaximumWidth(70)
        self.severities.setToolTip("Severities 1 (mild) to 5 (strong), comma-separated")
        self.add_btn = QPushButton("Add")
        self.add_btn.clicked.connect(self.add_current)
        self.specs_edit = QLineEdit()
        self.specs_edit.setPlaceholderText("none (e.g. gaussian_noise:1,3,5; jpeg:5)")
        self.specs_edit.setToolTip("Perturbations to score besides the clean images, separated by ';'. Each costs one "
                                   "more image encoding per backbone and severity, no text work.")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.name, 1)
        row.addWidget(self.severities)
        row.addWidget(self.add_btn)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.specs_edit)

    def specs(self) -> list[str]:
        return [s.strip() for s in self.specs_edit.text().split(";") if s.strip()]

    def set_specs(self, specs) -> None:
        specs = [specs] if isinstance(specs, str) else list(specs or [])
        self.specs_edit.setText("; ".join(specs))

    def add_current(self) -> None:
        """Add (or replace) the picked perturbation with the severities typed; a bad severity is shown, not added."""
        spec = f"{self.name.currentText()}:{self.severities.text().replace(' ', '')}"
        try:
            parse_perturbations([spec])
        except InputError as e:
            self.severities.setStyleSheet("QLineEdit { border: 1px solid #b00020; }")
            self.severities.setToolTip(e.message)
            return
        self.severities.setStyleSheet("")
        keep = [s for s in self.specs() if s.split(":")[0].strip() != self.name.currentText()]
        self.set_specs(keep + [spec])
