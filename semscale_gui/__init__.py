"""semscale desktop app: point-and-click semantic-scaling sweeps with live plots.

Widgets only gather settings and render engine events; every experiment runs in
:mod:`core` on a worker thread (see :mod:`semscale_gui.worker`).
"""

from semscale_gui.meta import APP_NAME, ORG_NAME, __version__

__all__ = ["APP_NAME", "ORG_NAME", "__version__"]
