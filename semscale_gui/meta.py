"""Names and version shown by the app (a module of its own, so entry points work even where
an old editable install sees ``semscale_gui`` as a namespace package)."""

from core import __version__

APP_NAME = "semscale"
ORG_NAME = "semscale"
