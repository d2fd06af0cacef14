"""Small builders for the actions, buttons and timers every panel makes the same way."""

from __future__ import annotations

from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QToolBar, QToolButton

from semscale_gui.icons import icon


def make_action(parent: QObject, text: str, ico: str, slot: Callable, tip: str = "", shortcut: Any = None,
                add_to: Any = None, context: Optional[Qt.ShortcutContext] = None) -> QAction:
    """An action with a bundled icon (``""``: none), a tool tip, a shortcut and its slot, added to
    ``add_to`` (a tool bar, a menu or a widget) when given."""
    a = QAction(icon(ico), text, parent)
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
        if context is not None:
            a.setShortcutContext(context)
    if tip:
        a.setToolTip(tip)
    a.triggered.connect(slot)
    if add_to is not None:
        add_to.addAction(a)
    return a


def text_toolbar() -> QToolBar:
    """A tool bar that shows each action's text beside its icon."""
    tb = QToolBar()
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    return tb


def tool_button(ico: str, tip: str, slot: Callable, text: str = "") -> QToolButton:
    """A tool button with a bundled icon and a tool tip; with ``text``, the text beside the icon."""
    b = QToolButton()
    b.setIcon(icon(ico))
    b.setToolTip(tip)
    if text:
        b.setText(text)
        b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    b.clicked.connect(slot)
    return b


def single_shot_timer(parent: QObject, interval_ms: int, slot: Callable) -> QTimer:
    """A timer that calls ``slot`` once, ``interval_ms`` after its latest start (a debounce)."""
    t = QTimer(parent)
    t.setSingleShot(True)
    t.setInterval(interval_ms)
    t.timeout.connect(slot)
    return t
