"""The GUI thread keeps turning while a sweep runs on the worker thread.

This is a liveness check, not a speed measurement (that is ``benchmarks/bench_gui.py``):
each level is made to take a fixed time on the worker, and the event loop must keep
ticking all through the sweep. A GUI thread blocked by the sweep would tick (almost)
never during it and show one gap as long as the whole sweep, so the thresholds below sit
far from anything a slow or loaded machine produces while the loop is alive.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer

LEVEL_SECONDS = 0.6  # 4 levels: a sweep blocking the GUI thread would leave one gap of > 2.4 s
MIN_TICKS = 10  # a blocked GUI thread ticks at most once or twice during the sweep
MAX_GAP_S = 2.0  # a live one stays far below this even on a loaded 2-core machine


def test_event_loop_keeps_ticking_during_a_run(qtbot, loaded_window, monkeypatch):
    import core.pipeline.runner

    original = core.pipeline.runner.score_level

    def slow_score_level(*a, **kw):  # the worker is busy (and releases the interpreter) for a known time
        time.sleep(LEVEL_SECONDS)
        return original(*a, **kw)

    monkeypatch.setattr(core.pipeline.runner, "score_level", slow_score_level)
    w = loaded_window
    qtbot.waitUntil(lambda: w.engine_info is not None, timeout=60000)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    window: list[float] = []

    def begin() -> None:  # from the moment the engine runs on its thread …
        window.append(time.perf_counter())
        timer.start()

    def end(*_args) -> None:  # … until the GUI thread hears that it finished
        window.append(time.perf_counter())
        timer.stop()

    w.controller.launched.connect(begin)
    w.controller.finished.connect(end)
    w.run_panel.levels.setText("1,2,3,4")
    with qtbot.waitSignal(w.controller.finished, timeout=180000) as done:
        assert w.start_sweep()
    assert done.args[0] == "completed"
    start, stop = window
    points = [start, *ticks, stop]
    gaps = [b - a for a, b in zip(points, points[1:])]
    worst = max(gaps)
    print(f"\nevent loop: {len(ticks)} ticks in {stop - start:.2f} s, worst gap {worst * 1000:.0f} ms, "
          f"median {sorted(gaps)[len(gaps) // 2] * 1000:.1f} ms")
    assert stop - start > 4 * LEVEL_SECONDS  # the sweep really took that long …
    assert len(ticks) >= MIN_TICKS, f"the event loop ticked only {len(ticks)} times during the sweep"
    assert worst < MAX_GAP_S, f"the GUI thread stalled for {worst:.1f} s during the sweep"
