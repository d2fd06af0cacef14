"""Error and About dialogs. Errors are shown as messages a user can act on; a traceback,
when there is one, sits behind "Show Details" instead of only in a terminal."""

from __future__ import annotations

import platform
from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from semscale_gui.meta import __version__


def show_error(parent: Optional[QWidget], title: str, message: str, details: str = "") -> QMessageBox:
    """Open a non-blocking error box (window-modal) and return it.

    ``open()`` instead of ``exec()`` keeps the event loop turning: a running sweep keeps
    drawing behind the dialog, and tests can find and close it.
    """
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    box.setText(message)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setObjectName("errorDialog")
    box.open()
    return box


def show_warning(parent: Optional[QWidget], title: str, message: str) -> QMessageBox:
    """Like :func:`show_error`, for something the user should know but that stops nothing."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(message)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setObjectName("warningDialog")
    box.open()
    return box


def versions_text() -> str:
    """Versions of the app and the libraries that shape its results, for bug reports."""
    import numpy
    import pandas
    import pyqtgraph
    import PySide6
    from PySide6.QtCore import qVersion

    rows = [("semscale", __version__), ("Python", platform.python_version()), ("Qt", qVersion()),
            ("PySide6", PySide6.__version__), ("pyqtgraph", pyqtgraph.__version__),
            ("numpy", numpy.__version__), ("pandas", pandas.__version__)]
    import sys

    for mod in ("torch", "open_clip"):  # only report what is already loaded: importing is slow
        m = sys.modules.get(mod)
        if m is not None:
            rows.append((mod, getattr(m, "__version__", "?")))
    rows.append(("platform", platform.platform()))
    return "\n".join(f"{k}: {v}" for k, v in rows)


def show_about(parent: Optional[QWidget]) -> QMessageBox:
    box = QMessageBox(parent)
    box.setWindowTitle("About semscale")
    box.setIconPixmap(parent.windowIcon().pixmap(64, 64) if parent is not None else box.iconPixmap())
    box.setText(
        f"<b>semscale {__version__}</b><br>"
        "Zero-shot CLIP experiments: how does accuracy change as each class gets more "
        "synonymous names?<br><br>The same engine runs headless as <tt>semscale</tt>."
    )
    box.setInformativeText("<pre>" + versions_text() + "</pre>")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setObjectName("aboutDialog")
    box.open()
    return box
