"""Persistent settings (QSettings) and per-user folders (platformdirs).

Both live in the user's own folders (never next to the program, which a packaged app may
not be allowed to write). ``SEMSCALE_GUI_SETTINGS`` (an .ini path) and
``SEMSCALE_DATA_DIR`` redirect them, so tests and the self-test never touch a user's real
preferences or data.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from semscale_gui.meta import APP_NAME, ORG_NAME

MAX_RECENT = 10


_instances: dict[str, QSettings] = {}


def app_settings() -> QSettings:
    """The app's QSettings (an ini file when ``SEMSCALE_GUI_SETTINGS`` is set).

    One instance per location: Qt writes changes back from the event loop, so setting a
    value never blocks the GUI thread on disk.
    """
    override = os.environ.get("SEMSCALE_GUI_SETTINGS", "")
    s = _instances.get(override)
    if s is None:
        s = QSettings(override, QSettings.Format.IniFormat) if override else QSettings(ORG_NAME, APP_NAME)
        _instances[override] = s
    return s


def sync() -> None:
    """Write pending changes now (on quit)."""
    for s in _instances.values():
        s.sync()


def data_dir() -> Path:
    """Per-user data folder: demo dataset, runs, generated models."""
    env = os.environ.get("SEMSCALE_DATA_DIR")
    if env:
        p = Path(env).expanduser()
    else:
        from platformdirs import user_data_dir

        p = Path(user_data_dir(APP_NAME, appauthor=False))
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # reported by user_folders.data_problem() at startup, never a crash here
    return p


def runs_dir() -> Path:
    return data_dir() / "runs"


def get_str(key: str, default: str = "") -> str:
    v = app_settings().value(key, default)
    return str(v) if v is not None else default


def set_value(key: str, value: Any) -> None:
    app_settings().setValue(key, value)


def get_json(key: str, default: Any) -> Any:
    """Lists and dicts are stored as JSON text: ini files mangle nested types."""
    raw = app_settings().value(key, "")
    if not raw:
        return default
    try:
        return json.loads(str(raw))
    except (TypeError, ValueError):
        return default


def set_json(key: str, value: Any) -> None:
    set_value(key, json.dumps(value))


def recent(key: str) -> list[str]:
    return [p for p in get_json(key, []) if isinstance(p, str)]


def push_recent(key: str, path: str) -> list[str]:
    """Move ``path`` to the front of a recent list and return the list."""
    items = [path] + [p for p in recent(key) if p != path]
    items = items[:MAX_RECENT]
    set_json(key, items)
    return items
