"""``python -m semscale_gui.plots``: the accuracy plot with sample numbers."""

from semscale_gui.preview import run_preview
from semscale_gui.plots import preview

run_preview(preview)
