"""pyqtgraph views of a run: accuracy vs names per class, per-class recall, confusion,
backbone comparison, ensembles, class frequency and the raw level table.

Each view is a small QWidget with ``set_results(ResultsData)``; it redraws from the data
object and never computes anything the engine already computed. Callers throttle how
often ``set_results`` runs during a live sweep (see ``ResultsPanel``). One module per
view; shared helpers live in :mod:`.base`.
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from .accuracy import AccuracyPlot
# the private helpers are re-exported for code written against the former single module
from .base import (PALETTE, _categorical_ticks, _controls, _labelled, _style_plot, colour, export_graphics,
                   refill_combo, tick_font)
from .class_filter import ClassFilter
from .compare import RunComparison
from .comparison import BackboneComparison
from .confusion import ConfusionPlot
from .ensemble import ADAPTIVE_TITLES, FIXED_METHODS, EnsemblePlot
from .frequency import FrequencyPlot
from .heatmap import _Heatmap
from .levels_table import LevelsTable
from .recall import RecallHeatmap
from .sample import sample_results

__all__ = ["ADAPTIVE_TITLES", "FIXED_METHODS", "PALETTE", "AccuracyPlot", "BackboneComparison", "ClassFilter", "ConfusionPlot",
           "EnsemblePlot", "FrequencyPlot", "LevelsTable", "RecallHeatmap", "RunComparison", "colour", "export_graphics", "preview",
           "refill_combo", "sample_results", "tick_font"]


def preview() -> QWidget:
    """The accuracy plot with sample numbers."""
    w = AccuracyPlot()
    w.set_results(sample_results())
    w.resize(800, 500)
    w.setWindowTitle("semscale — accuracy plot preview")
    return w
