"""On exit the app drops queued background tasks and waits for the running ones."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QThreadPool


def test_drain_waits_for_running_tasks_and_drops_queued_ones(qapp):
    from semscale_gui.tasks import drain_background_work, run_task

    pool = QThreadPool.globalInstance()
    pool.waitForDone(30000)
    started, finished = [], []
    gate = threading.Event()

    def slow(i: int) -> int:
        started.append(i)
        gate.wait(5)
        time.sleep(0.2)
        finished.append(i)
        return i

    n_running = pool.maxThreadCount()
    for i in range(n_running + 5):
        run_task(lambda i=i: slow(i), lambda _r: None)
    deadline = time.monotonic() + 5
    while len(started) < n_running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(started) == n_running  # the others are queued
    gate.set()
    assert drain_background_work(timeout_ms=10000)
    assert sorted(finished) == sorted(started) == list(range(n_running))  # the queued ones never ran
    assert pool.activeThreadCount() == 0
