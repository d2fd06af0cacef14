"""Icons come from ``resources/icons`` so the frozen app and the source tree look the same."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QIcon


@lru_cache(maxsize=None)
def icon(name: str) -> QIcon:
    """The bundled SVG icon ``name`` (without suffix); an empty icon if it is missing."""
    import resources

    try:
        return QIcon(str(resources.path(f"icons/{name}.svg")))
    except FileNotFoundError:
        return QIcon()
