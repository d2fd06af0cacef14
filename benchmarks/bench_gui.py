"""GUI responsiveness: how long the event loop stalls while a live sweep draws its plots.

The real main window and sweep controller run off-screen on the demo dataset with the
bundled ``demo-vit`` backbone (or, when the demo backbones are not installed, the tiny
random-initialised model the self-test uses). A 5 ms QTimer on the GUI thread records
every tick from the moment the engine starts on its worker thread until the GUI hears
that it finished; the gaps between ticks are how long a user's click or repaint would
have waited. The tests only check that the loop stays alive; the numbers live here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

TIMER_MS = 5
ENV_KEYS = ("QT_QPA_PLATFORM", "SEMSCALE_GUI_SETTINGS", "SEMSCALE_DATA_DIR", "SEMSCALE_CACHE_DIR")


def event_loop_gaps(tmp: Path, n_per_class: int = 30, timeout_s: float = 900.0) -> dict:
    """Worst / p99 / median gap (ms) between 5 ms timer ticks during one live sweep."""
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    root = Path(tmp) / "gui"
    root.mkdir(parents=True, exist_ok=True)
    os.environ["SEMSCALE_CACHE_DIR"] = str(root / "cache")  # cold: images are encoded during the sweep
    try:
        return _measure(root, n_per_class, timeout_s)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _measure(root: Path, n_per_class: int, timeout_s: float) -> dict:
    from PySide6.QtCore import Qt, QTimer

    from semscale_gui.app import make_app
    from semscale_gui.selftest import Scenario, _isolate, wait_until

    make_app(["semscale-bench"])
    _isolate(root)
    sc = Scenario(root, n_per_class=n_per_class, n_backbones=1, timeout_s=timeout_s)
    w = sc.window
    if not wait_until(lambda: w.engine_info is not None, 300):
        raise RuntimeError("the engine did not finish loading")
    ticks: list[float] = []
    window: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TIMER_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def begin() -> None:
        window.append(time.perf_counter())
        timer.start()

    def end(*_args) -> None:
        window.append(time.perf_counter())
        timer.stop()

    w.controller.launched.connect(begin)
    w.controller.finished.connect(end)
    levels_drawn: list[int] = []
    w.results.refreshed.connect(lambda: levels_drawn.append(len(w.results.results.levels)))
    try:
        if not sc.run() or sc.status != "completed":
            raise RuntimeError(f"the benchmark sweep ended as {sc.status}")
        points = np.array([window[0], *ticks, window[1]])
        gaps = np.diff(points) * 1000
        from core.runs import load_run

        run = load_run(sc.run_dir)
        return {
            "worst_ms": float(gaps.max()),
            "p99_ms": float(np.percentile(gaps, 99)),
            "median_ms": float(np.median(gaps)),
            "levels": len(run.meta["config"]["levels_resolved"]),
            "n_images": len(w.browser.dataset),
            "model": sc.specs[0].get("label") or sc.specs[0]["model"],
            "model_kind": sc.model_kind,
            "sweep_s": float(window[1] - window[0]),
            "ticks": len(ticks),
            "redraws": len(levels_drawn),
        }
    finally:
        w.close()
