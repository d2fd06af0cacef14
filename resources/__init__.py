"""Bundled resources (icons, templates, demo backbones).

``path("icons/run.svg")`` resolves the same way from a source checkout, a pip install
and a frozen PyInstaller app (where this package's files are collected next to it).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def path(relative: str = "") -> Path:
    """Absolute path of a bundled resource; raises FileNotFoundError naming it if absent."""
    p = ROOT / relative
    if relative and not p.exists():
        raise FileNotFoundError(f"bundled resource missing: {relative} (looked in {ROOT})")
    return p
