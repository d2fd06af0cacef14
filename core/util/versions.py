"""The semscale version, the versions of the packages a run used, and the run clock.

Read from the packages' files where possible, so a fully cached run records torch's and
open_clip's versions without importing them.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import importlib.util
import platform
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional

__version__ = "0.1.0"


def package_dir(package: str = "open_clip") -> Optional[Path]:
    """A package's folder, found without running its ``__init__``."""
    mod = sys.modules.get(package)
    spec = mod.__spec__ if mod is not None else importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=None)
def package_version(package: str) -> str:
    """``package.__version__`` where the package keeps it in ``version.py`` (open_clip, torch), read
    from that file unless the package is imported already."""
    if package in sys.modules:
        return sys.modules[package].__version__
    d = package_dir(package)
    try:
        m = re.search(r"""^__version__\s*=\s*['"]([^'"]+)['"]""", (d / "version.py").read_text(encoding="utf-8"), re.M)
    except (OSError, TypeError):
        m = None
    if m:
        return m.group(1)
    return importlib.import_module(package).__version__


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    import numpy
    import pandas as pd

    out = {"semscale": __version__, "python": sys.version.split()[0], "torch": _torch_version(),
           "numpy": numpy.__version__, "pandas": pd.__version__, "platform": platform.platform()}
    try:
        out["open_clip"] = package_version("open_clip")
    except Exception:  # pragma: no cover - open_clip is a hard dependency
        pass
    return out


def _torch_version() -> str:
    """``torch.__version__``, without importing torch when a cached run never needed it."""
    return package_version("torch")
