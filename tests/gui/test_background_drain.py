"""The app's one job runner: lanes, cancelling, and waiting for jobs without blocking the GUI."""

from __future__ import annotations

import threading
import time

import pytest


@pytest.fixture
def runner(qapp):
    """A runner of its own with small lanes, closed (every job joined) at teardown."""
    from semscale_gui.tasks import JobRunner

    r = JobRunner(lanes={"general": 2, "other": 1})
    yield r
    assert r.close(30)
    r.deleteLater()


def _wait(pred, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.01)
    return pred()


def test_drain_waits_for_running_tasks_and_drops_queued_ones(qapp):
    from semscale_gui.tasks import LANES, drain_background_work, jobs, run_task

    assert jobs().wait_idle(60)  # whatever earlier tests left has ended
    started, finished = [], []
    gate = threading.Event()

    def slow(i: int) -> int:
        started.append(i)
        gate.wait(60)
        time.sleep(0.2)
        finished.append(i)
        return i

    n_running = LANES["general"]
    for i in range(n_running + 5):
        run_task(lambda i=i: slow(i), lambda _r: None)
    assert _wait(lambda: len(started) == n_running)
    time.sleep(0.1)
    assert len(started) == n_running  # the others are queued
    assert jobs().queued_count() == 5
    gate.set()
    assert drain_background_work(timeout_ms=10000)
    assert sorted(finished) == sorted(started) == list(range(n_running))  # the queued ones never ran
    assert jobs().running_count() == 0 and jobs().queued_count() == 0


def test_a_lane_runs_at_most_its_threads_and_never_holds_up_another(runner):
    from PySide6.QtCore import QCoreApplication

    lock = threading.Lock()
    now, peak = {"general": 0, "other": 0}, {"general": 0, "other": 0}
    gate = threading.Event()
    results = []

    def work(lane: str, i: int) -> int:
        with lock:
            now[lane] += 1
            peak[lane] = max(peak[lane], now[lane])
        if lane == "general":
            gate.wait(60)
        time.sleep(0.02)
        with lock:
            now[lane] -= 1
        return i

    for i in range(6):
        runner.run(lambda i=i: work("general", i), results.append)
    assert _wait(lambda: runner.running_count("general") == 2)
    other = []
    runner.run(lambda: work("other", 99), other.append, lane="other")
    deadline = time.monotonic() + 30
    while not other and time.monotonic() < deadline:  # "general" is full and blocked; "other" still runs
        QCoreApplication.processEvents()
        time.sleep(0.01)
    assert other == [99] and runner.queued_count() == 4
    gate.set()
    assert runner.wait_idle(60)
    assert sorted(results) == list(range(6))
    assert peak == {"general": 2, "other": 1}


def test_close_cancels_running_jobs_and_keeps_the_event_loop_turning(runner):
    from PySide6.QtCore import QTimer

    stop = threading.Event()
    got, dropped, started = [], [], []

    def until_cancelled() -> str:
        started.append(1)
        stop.wait(20)
        return "stopped" if stop.is_set() else "timed out"

    runner.run(until_cancelled, got.append, on_cancel=stop.set)
    runner.run(until_cancelled, got.append, on_cancel=stop.set)
    queued = runner.run(lambda: "never", got.append)
    queued.signals.dropped.connect(lambda: dropped.append(True))
    assert _wait(lambda: len(started) == 2)  # (a job cancelled before it began would never run)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(5)
    t0 = time.monotonic()
    assert runner.close(10)
    waited = time.monotonic() - t0
    timer.stop()
    assert got == ["stopped", "stopped"] and dropped == [True]  # results delivered, the queued job never ran
    assert waited < 5 and len(ticks) >= 1  # the GUI thread kept handling events while it waited
    late = []
    job = runner.submit(lambda: late.append(1))  # a closed runner takes no more work
    assert job.cancelled and job.wait(0) and late == []


def test_a_jobs_function_is_released_on_the_gui_thread(runner):
    released = []

    class Holder:
        def __del__(self) -> None:
            released.append(threading.get_ident())

    def make():
        held = Holder()
        return lambda: held and None

    results = []
    for _ in range(5):
        runner.run(make(), results.append)
    assert runner.wait_idle(10)
    from PySide6.QtCore import QCoreApplication

    QCoreApplication.processEvents()  # the runner forgets ended jobs here
    assert len(results) == 5 and len(released) == 5
    assert set(released) == {threading.get_ident()}


def test_closing_the_window_cancels_a_run_and_waits_without_blocking(qtbot, loaded_window):
    """Closing mid-sweep stops the run within the bound; the event loop turns while it waits."""
    from PySide6.QtCore import QTimer

    from semscale_gui.tasks import jobs

    w = loaded_window
    finished = []
    w.controller.finished.connect(lambda status, *_: finished.append(status))
    with qtbot.waitSignal(w.controller.launched, timeout=30000):
        assert w.start_sweep()
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    w.close()
    timer.stop()
    assert not w.isVisible() and not w.controller.running
    assert finished and finished[0] in ("cancelled", "completed")  # delivered before close returned
    assert jobs().running_count() == 0
    assert ticks  # the GUI thread was not blocked while the sweep stopped
