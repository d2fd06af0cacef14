"""semscale desktop app: point-and-click semantic-scaling sweeps with live plots.

Widgets only gather settings and render engine events; every experiment runs in
:mod:`core` on a worker thread (see :mod:`semscale_gui.worker`).
"""

from core import __version__

APP_NAME = "semscale"
ORG_NAME = "semscale"

__all__ = ["APP_NAME", "ORG_NAME", "__version__"]
