"""pyqtgraph views of a run: accuracy vs names per class, per-class recall, confusion,
backbone comparison, ensembles, class frequency and the raw level table.

Each view is a small QWidget with ``set_results(ResultsData)``; it redraws from the data
object and never computes anything the engine already computed. Callers throttle how
often ``set_results`` runs during a live sweep (see ``ResultsPanel``). One module per
view; shared helpers live in :mod:`.base`.
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from semscale_gui.plots.accuracy import AccuracyPlot
# the private helpers are re-exported for code written against the former single module
from semscale_gui.plots.base import (PALETTE, _categorical_ticks, _controls, _labelled, _style_plot, colour, export_graphics,
                   refill_combo, tick_font)
from semscale_gui.plots.class_filter import ClassFilter
from semscale_gui.plots.compare import RunComparison
from semscale_gui.plots.comparison import BackboneComparison
from semscale_gui.plots.confusion import ConfusionPlot
from semscale_gui.plots.ensemble import ADAPTIVE_TITLES, FIXED_METHODS, EnsemblePlot
from semscale_gui.plots.frequency import FrequencyPlot
from semscale_gui.plots.heatmap import _Heatmap
from semscale_gui.plots.levels_table import LevelsTable
from semscale_gui.plots.recall import RecallHeatmap
from semscale_gui.plots.sample import sample_results

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
