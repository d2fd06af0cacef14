"""Helper behind each panel's ``python -m semscale_gui.<panel>`` preview.

``SEMSCALE_GUI_PREVIEW_MS`` closes the preview after that many milliseconds, which lets
the test suite run every preview's real ``__main__`` path (``SEMSCALE_GUI_PREVIEW_PNG``
saves what it showed).
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget


def ensure_app() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("semscale")
    return app  # type: ignore[return-value]


def run_preview(factory: Callable[[], QWidget]) -> int:
    app = ensure_app()
    w = factory()
    w.show()
    ms = os.environ.get("SEMSCALE_GUI_PREVIEW_MS")
    if ms:
        def done() -> None:
            png = os.environ.get("SEMSCALE_GUI_PREVIEW_PNG")
            if png:
                w.grab().save(png)
            print(f"preview ok: {type(w).__name__} visible={w.isVisible()}")
            app.quit()

        QTimer.singleShot(int(ms), done)
    return app.exec()
