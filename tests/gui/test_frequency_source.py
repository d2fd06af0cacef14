"""The Run panel's class-frequency choice: wordfreq instead of a file, through a real sweep to
the Frequency tab, and back from a run's config."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from wordfreq import word_frequency

from tests.conftest import CLASSES


def test_wordfreq_choice_runs_and_fills_the_frequency_tab(qtbot, loaded_window):
    w = loaded_window
    panel = w.run_panel
    assert panel.frequency_source.currentData() == "file" and panel.frequency.isEnabled()
    panel.frequency_source.setCurrentIndex(panel.frequency_source.findData("wordfreq"))
    assert not panel.frequency.isEnabled() and not panel.frequency_browse.isEnabled()
    assert panel.class_frequency() == "wordfreq"
    with qtbot.waitSignal(w.controller.finished, timeout=180000) as done:
        assert w.start_sweep()
    status, run_dir, _ = done.args
    assert status == "completed"
    run = Path(run_dir)
    assert json.loads((run / "run.json").read_text())["config"]["class_frequency"] == "wordfreq"
    table = pd.read_csv(run / "frequency.csv")
    for _, r in table.iterrows():
        assert r["frequency"] == pytest.approx(word_frequency(CLASSES[r["class"]][0], "en"), rel=1e-12, abs=0)
    res = w.results
    res.tabs.setCurrentWidget(res.frequency)
    assert res.frequency.points == len(CLASSES)
    # the points sit at log10(occurrences per 10^9 words + 1), spread out, not all at 0
    lvl = int(res.frequency.level.currentText())
    xs = sorted(table[table["level"] == lvl]["log_frequency"])
    assert xs == pytest.approx(sorted(math.log10(word_frequency(n[0], "en") * 1e9 + 1) for n in CLASSES.values()))

    # a re-run shows the same choice; a file setting shows the file
    panel.frequency_source.setCurrentIndex(0)
    panel.apply_config({"class_frequency": "wordfreq"})
    assert panel.frequency_source.currentData() == "wordfreq" and panel.frequency.text() == ""
    panel.apply_config({"class_frequency": "/data/freq.csv"})
    assert panel.frequency_source.currentData() == "file" and panel.frequency.text() == "/data/freq.csv"
    assert panel.class_frequency() == "/data/freq.csv"
