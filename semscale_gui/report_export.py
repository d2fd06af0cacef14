"""*Export report…*: the run shown, as one self-contained HTML file (core.reporting).

Drawing the figures takes seconds on a large run, so the report is written on the app's
background runner, never on the event loop; when it is saved a non-blocking box offers to
open it in the system's browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

from semscale_gui.dialogs import show_error
from semscale_gui.tasks import run_task


class ReportExport(QObject):
    """Writes a report in the background and offers to open it."""

    saved = Signal(str)  # the report's path
    failed = Signal(str)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.widget = parent
        self.busy = False
        self.offer: Optional[QMessageBox] = None  # "Report saved … Open it?", while shown

    def start(self, source: str | Path, path: str | Path) -> bool:
        """Write the report of ``source`` (a run or study folder) to ``path``; False while one is being written."""
        if self.busy:
            return False
        from core.reporting.report import write_report

        self.busy = True
        source, path = str(source), str(path)
        run_task(lambda: write_report(source, path), self._done, self._failed, context=self, lane="general")
        return True

    def _done(self, path: Path) -> None:
        self.busy = False
        box = QMessageBox(self.widget)
        box.setIcon(QMessageBox.Icon.Information)
        box.setWindowTitle("Report saved")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setText(f"The report was saved to\n{path}\n\nIt is one HTML file that opens in any browser, offline.")
        self.open_button = box.addButton("Open report", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Close)
        box.setObjectName("reportSavedDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda b, p=str(path): self._answered(b, p))
        box.destroyed.connect(lambda *_: setattr(self, "offer", None))
        self.offer = box
        box.open()
        self.saved.emit(str(path))

    def _answered(self, button, path: str) -> None:
        if button is self.open_button:
            QDesktopServices.openUrl(QUrl.fromLocalFile(path))

    def _failed(self, e: Exception, tb: str) -> None:
        from core.util.errors import InputError

        self.busy = False
        show_error(self.widget, "Cannot write the report", str(e), "" if isinstance(e, InputError) else tb)
        self.failed.emit(str(e))
