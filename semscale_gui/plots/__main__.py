"""``python -m semscale_gui.plots``: the accuracy plot with sample numbers."""

from ..preview import run_preview
from . import preview

run_preview(preview)
