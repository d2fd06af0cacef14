"""GUI responsiveness: how long the event loop stalls while a live sweep draws its plots.

The real main window and sweep controller run off-screen on the demo dataset with the
bundled ``demo-vit`` backbone (or, when the demo backbones are not installed, the tiny
random-initialised model the self-test uses). A 5 ms QTimer on the GUI thread records
every tick from the moment the engine starts on its worker thread until the GUI hears
that it finished; the gaps between ticks are how long a user's click or repaint would
have waited. The tests only check that the loop stays alive; the numbers live here.

``tab_switch_gaps`` measures the other heavy moment: clicking through the Results tabs of
a 1000-class, 20k-image, two-backbone run (``python -m benchmarks.bench_gui tabs``).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

TIMER_MS = 5
ENV_KEYS = ("QT_QPA_PLATFORM", "SEMSCALE_GUI_SETTINGS", "SEMSCALE_DATA_DIR", "SEMSCALE_CACHE_DIR")


@contextmanager
def _offscreen_env():
    """Off-screen Qt unless a platform is set; the app's environment variables restored afterwards."""
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def event_loop_gaps(tmp: Path, n_per_class: int = 30, timeout_s: float = 900.0) -> dict:
    """Worst / p99 / median gap (ms) between 5 ms timer ticks during one live sweep."""
    with _offscreen_env():
        root = Path(tmp) / "gui"
        root.mkdir(parents=True, exist_ok=True)
        os.environ["SEMSCALE_CACHE_DIR"] = str(root / "cache")  # cold: images are encoded during the sweep
        return _measure(root, n_per_class, timeout_s)


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
        from core.results.runs import load_run

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


def tab_switch_gaps(tmp: Path, n_classes: int = 1000, n_images: int = 20000, backbones: int = 2,
                    rounds: int = 2) -> dict:
    """Event-loop gaps while a user opens a 1000-class run and clicks through the Results tabs.

    The run folder is written by ``benchmarks.synthetic_run`` (the run-directory contract,
    made-up predictions). The window opens it as ``semscale-gui RUN_DIR`` does; then each
    Results tab is shown in turn (``rounds`` times: the first visit computes in the
    background, later ones hit the per-run cache), then "show all" on the heatmap and the
    confusion matrix (1000 rows). Per tab: milliseconds from the switch until its data is
    drawn, and the worst event-loop gap in that time.
    """
    with _offscreen_env():
        return _measure_tabs(Path(tmp) / "gui-tabs", n_classes, n_images, backbones, rounds)


def _measure_tabs(root: Path, n_classes: int, n_images: int, backbones: int, rounds: int) -> dict:
    from PySide6.QtCore import Qt, QTimer

    from benchmarks.synthetic_run import write_synthetic_run
    from semscale_gui.app import make_app
    from semscale_gui.main_window import MainWindow
    from semscale_gui.open_paths import open_paths
    from semscale_gui.selftest import RESULT_PANELS, _isolate, _panel_ready, wait_until

    root.mkdir(parents=True, exist_ok=True)
    names = tuple(["ViT-B-32", "RN50", "ViT-L-14", "ConvNeXt"][:backbones])
    run = write_synthetic_run(root / "run", n_classes=n_classes, n_images=n_images, backbones=names)
    make_app(["semscale-bench"])
    _isolate(root)
    w = MainWindow(load_demo=False, restore_state=False)
    w.resize(1600, 1000)
    w.show()
    if not wait_until(lambda: w.engine_info is not None, 300):
        raise RuntimeError("the engine did not finish loading")
    ticks: list[tuple[float, float]] = []  # (wall clock, GUI-thread CPU time) at each tick
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TIMER_MS)
    timer.timeout.connect(lambda: ticks.append((time.perf_counter(), time.thread_time())))

    def gaps_between(t0: float, t1: float) -> tuple[float, float]:
        """Worst wall-clock gap, and the most GUI-thread CPU time spent within one gap (what
        the GUI itself did, without the time other processes took the CPU)."""
        pts = [p for p in ticks if t0 <= p[0] <= t1]
        if len(pts) < 2:
            return (t1 - t0) * 1000, 0.0
        wall = np.diff([t0] + [p[0] for p in pts] + [t1])
        cpu = np.diff([p[1] for p in pts])
        return float(wall.max() * 1000), float(cpu.max() * 1000)

    res = w.results
    timer.start()
    t0 = time.perf_counter()
    open_paths(w, [run])
    if not wait_until(lambda: res.results.run_dir == str(run) and not res.predictions.empty, 300):
        raise RuntimeError("the run did not open")
    t_open = time.perf_counter()
    open_gap, open_cpu = gaps_between(t0, t_open)
    rows: list[dict] = []
    w.tabs.setCurrentWidget(res)
    wait_until(lambda: False, 0.3)
    for r in range(rounds):
        for attr, name in RESULT_PANELS:
            view = getattr(res, attr)
            s = time.perf_counter()
            res.tabs.setCurrentWidget(view)
            wait_until(lambda: _panel_ready(res, view), 60, step_ms=1)
            e = time.perf_counter()
            wait_until(lambda: False, 0.15)  # let it paint, as a user would look at it
            gap, cpu = gaps_between(s, time.perf_counter())
            rows.append({"round": r + 1, "tab": name.replace("results-", ""), "drawn_ms": (e - s) * 1000,
                         "worst_gap_ms": gap, "worst_gap_cpu_ms": cpu})
    for attr in ("heatmap", "confusion"):
        view = getattr(res, attr)
        res.tabs.setCurrentWidget(view)
        wait_until(lambda: False, 0.2)
        s = time.perf_counter()
        view.filter.show_all.setChecked(True)
        wait_until(lambda: view.matrix.shape[0] >= n_classes, 60, step_ms=1)
        e = time.perf_counter()
        wait_until(lambda: False, 0.3)
        gap, cpu = gaps_between(s, time.perf_counter())
        rows.append({"round": "show all", "tab": attr, "drawn_ms": (e - s) * 1000, "worst_gap_ms": gap,
                     "worst_gap_cpu_ms": cpu})
    timer.stop()
    w.close()
    switching = [x["worst_gap_ms"] for x in rows]
    return {"n_classes": n_classes, "n_images": n_images, "backbones": list(names), "open_s": t_open - t0,
            "open_worst_gap_ms": open_gap, "open_worst_gap_cpu_ms": open_cpu, "rows": rows,
            "load_average": os.getloadavg()[0], "cores": os.cpu_count(),
            "worst_gap_cpu_ms": max(x["worst_gap_cpu_ms"] for x in rows), "worst_gap_ms": max(switching),
            "worst_gap_tab_switch_ms": max(x["worst_gap_ms"] for x in rows if x["round"] != "show all"),
            "slowest_first_draw_ms": max(x["drawn_ms"] for x in rows if x["round"] == 1)}


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="semscale-bench-") as d:
        out = tab_switch_gaps(Path(d)) if "tabs" in sys.argv[1:] else event_loop_gaps(Path(d))
    print(json.dumps(out, indent=1))
