"""Runs :func:`core.pipeline.runner.run_sweep` on a QThread and turns its events into Qt signals.

The engine calls ``emit(event)`` from the worker thread; each event becomes a queued
signal, so the GUI thread only ever renders. Cancelling sets the engine's
:class:`~core.util.events.CancelToken` directly (it is thread-safe); the engine stops between
batches, closes the run directory as ``cancelled`` and returns, and the worker reports
``finished("cancelled", …)``. Progress events are rate-limited here so a fast stage
cannot flood the GUI's event queue.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Optional

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from core.util.events import CancelToken, ImageSkipped, LevelFinished, Log, Progress, RunFinished

try:  # analysis tables (backbone comparison, ensembles, frequency) in newer engines
    from core.util.events import TableRows
except ImportError:  # pragma: no cover
    TableRows = None  # type: ignore[assignment,misc]

PROGRESS_INTERVAL_S = 0.1  # at most ~10 progress updates a second per stage


class SweepWorker(QObject):
    """Lives on a worker thread; ``run()`` performs one sweep."""

    progress = Signal(object)  # core.util.events.Progress
    log = Signal(str, str)  # message, level (info|warning|error)
    level_finished = Signal(object)  # core.util.events.LevelFinished
    skipped = Signal(str, str)  # image id, reason
    table_rows = Signal(str, object)  # table name, list of row dicts
    failed = Signal(str, str)  # one-line message, details (traceback or "")
    finished = Signal(str, str, object)  # status, run dir ("" if none), summary dict

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.cancel_token = CancelToken()
        self._last_progress: dict[tuple[str, str], float] = {}
        self._run_dir = ""

    def cancel(self) -> None:
        """Ask the engine to stop after the current batch (safe from any thread)."""
        self.cancel_token.cancel()

    # ---------------------------------------------------------------- engine callback

    def _emit(self, ev: Any) -> None:  # called by the engine, on the worker thread
        if isinstance(ev, Progress):
            key = (ev.backbone, ev.stage)
            now = time.monotonic()
            last = self._last_progress.get(key)
            final = ev.done >= ev.total or ev.done == 0
            if last is not None and not final and now - last < PROGRESS_INTERVAL_S:
                return
            self._last_progress[key] = now
            self.progress.emit(ev)
        elif isinstance(ev, LevelFinished):
            self.level_finished.emit(ev)
        elif isinstance(ev, Log):
            self.log.emit(ev.message, ev.level)
        elif isinstance(ev, ImageSkipped):
            self.skipped.emit(ev.path, ev.reason)
        elif TableRows is not None and isinstance(ev, TableRows):
            self.table_rows.emit(ev.table, ev.rows)
        elif isinstance(ev, RunFinished):
            self._run_dir = ev.run_dir

    # ---------------------------------------------------------------- thread entry

    @Slot()
    def run(self) -> None:
        from core.util.errors import InputError, WeightsUnavailable
        from core.pipeline.runner import run_sweep

        try:
            result = run_sweep(self.config, emit=self._emit, cancel=self.cancel_token)
        except (InputError, WeightsUnavailable) as e:
            self.failed.emit(str(e), "")
            self.finished.emit("failed", self._run_dir, {})
        except Exception as e:  # anything unexpected still ends as a message, not a dead thread
            msg = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            self.failed.emit(msg, traceback.format_exc())
            self.finished.emit("failed", self._run_dir, {})
        else:
            if result.status == "cancelled":
                self.log.emit("run cancelled; finished levels are kept", "warning")
            self.finished.emit(result.status, result.run_dir, result.summary)
        finally:
            # end the thread's event loop from inside, so SweepController.wait() can return
            # even before the GUI thread has handled ``finished``
            thread = self.thread()
            if thread is not None:
                thread.quit()


class SweepController(QObject):
    """Owns the thread and worker of the current sweep and re-emits the worker's signals.

    Widgets connect once to the controller; a new sweep gets a fresh thread and worker.
    """

    started = Signal(object)  # SweepConfig (the panels switch to "running")
    launched = Signal()  # the worker thread is now running the engine
    progress = Signal(object)
    log = Signal(str, str)
    level_finished = Signal(object)
    skipped = Signal(str, str)
    table_rows = Signal(str, object)
    failed = Signal(str, str)
    finished = Signal(str, str, object)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._thread: Optional[QThread] = None
        self._worker: Optional[SweepWorker] = None
        self._launched = True

    @property
    def running(self) -> bool:
        return self._worker is not None

    def start(self, config: Any) -> None:
        if self.running:
            raise RuntimeError("a sweep is already running")
        thread = QThread()
        thread.setObjectName("sweep-worker")
        worker = self._make_worker(config)
        worker.moveToThread(thread)
        worker.progress.connect(self.progress)
        worker.log.connect(self.log)
        worker.level_finished.connect(self.level_finished)
        worker.skipped.connect(self.skipped)
        worker.table_rows.connect(self.table_rows)
        worker.failed.connect(self.failed)
        worker.finished.connect(self._on_finished)
        thread.started.connect(worker.run)
        self._thread, self._worker = thread, worker
        self.started.emit(config)
        # Start the thread from the event loop, after the paints this start caused (the
        # results tab, the disabled buttons) are done: painting then does not have to
        # share the interpreter with the engine loading its model.
        self._launched = False
        QTimer.singleShot(0, self._launch)

    def _make_worker(self, config: Any) -> SweepWorker:
        """The worker for one job (subclasses run other engine jobs on the same machinery)."""
        return SweepWorker(config)

    def _launch(self) -> None:
        if self._launched or self._thread is None or self._worker is None:
            return
        self._launched = True
        if self._worker.cancel_token.cancelled:  # cancelled before it began: nothing to stop
            self._on_finished("cancelled", "", {})
            return
        self._thread.start()
        self.launched.emit()

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self.log.emit("cancelling: stopping after the current batch…", "warning")

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Block until the worker thread ended (used on quit); True if it did."""
        thread = self._thread
        if thread is None:
            return True
        self._launch()  # a start still queued in the event loop happens (or is dropped) now
        if self._thread is None:
            return True
        ok = thread.wait(timeout_ms)
        if ok:
            from PySide6.QtCore import QCoreApplication

            QCoreApplication.processEvents()  # deliver the queued finished signal
        return ok

    @Slot(str, str, object)
    def _on_finished(self, status: str, run_dir: str, summary: object) -> None:
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        if thread is not None:
            thread.quit()
            thread.wait(5000)
        if worker is not None:
            worker.deleteLater()
        if thread is not None:
            thread.deleteLater()
        self.finished.emit(status, run_dir, summary)
