"""The run log: engine messages, skipped images and one line per finished level."""

from __future__ import annotations

import html
import time
from typing import Any, Optional

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QPlainTextEdit, QWidget

COLOURS = {"info": "#222222", "warning": "#9a6700", "error": "#b00020", "level": "#0b5394", "muted": "#777777"}


class LogView(QPlainTextEdit):
    """Read-only, bounded (old lines drop off), colour-coded by level."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        f = QFont("DejaVu Sans Mono")
        f.setStyleHint(QFont.StyleHint.Monospace)
        f.setPointSize(9)
        self.setFont(f)
        self.setPlaceholderText("Messages from the engine appear here during a run.")

    def append_message(self, message: str, level: str = "info") -> None:
        stamp = time.strftime("%H:%M:%S")
        col = COLOURS.get(level, COLOURS["info"])
        tag = "" if level in ("info", "level") else f"[{level}] "
        self.appendHtml(f"<span style='color:{COLOURS['muted']}'>{stamp}</span> "
                        f"<span style='color:{col}'>{html.escape(tag + message)}</span>")

    def append_level(self, ev: Any) -> None:
        r = ev.row
        order = f" ordering {ev.ordering}" if ev.ordering else ""
        self.append_message(
            f"{ev.backbone}{order} · {ev.level} name(s)/class · {r['n_categories']} categories · "
            f"top-1 {r['top1'] * 100:.1f}% [{r['ci_low'] * 100:.1f}–{r['ci_high'] * 100:.1f}] · "
            f"top-5 {r['top5'] * 100:.1f}%", "level")

    def append_skipped(self, path: str, reason: str) -> None:
        self.append_message(f"skipped {path}: {reason}", "warning")


def preview() -> QWidget:
    w = LogView()
    w.append_message("imagefolder dataset at demo/images: 300 images in 10 classes")
    w.append_message("out of memory at batch size 64; continuing with 32", "warning")
    w.append_skipped("ball/017.png", "truncated or corrupt image data")
    w.append_message("could not load weights", "error")
    w.resize(700, 240)
    w.setWindowTitle("semscale — log preview")
    return w


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
