"""The app's background jobs: one thread pool, every job tracked, cancellable and joined.

Anything that may take more than a frame runs here: listing and validating a dataset,
reading a run or a predictions file, pivoting results, decoding thumbnails, WordNet
suggestions, and the engine's sweeps and studies. The GUI thread never waits on disk,
decoding, pandas or torch.

One :class:`JobRunner` per application owns one ``QThreadPool``. Jobs are sorted into
*lanes*, each with its own number of threads, so a heatmap's pivot never queues behind
the engine warm-up and scrolling thumbnails never queues behind a dataset being listed;
the pool has exactly as many threads as the lanes together, so a job a lane admits starts
at once. The runner knows every job, queued or running: closing the app drops the queued
ones, asks the running ones to stop (a job may bring a cancel callback, e.g. the engine's
:class:`~core.util.events.CancelToken`) and waits for them while the event loop keeps turning,
so no thread runs Python once the interpreter shuts down. The last reference to a job (and
so to whatever its function holds) is always dropped on the GUI thread.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import shiboken6
from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Qt, QThread, QThreadPool, QTimer, Signal

# threads per lane; the pool holds their sum
LANES: dict[str, int] = {
    "general": max(2, QThread.idealThreadCount()),  # listing, reading, checking, warm-up
    "analysis": 2,  # pivots and groupings for the Results views
    "decode": 2,  # thumbnails and previews: enough to keep up with scrolling, cheap on a laptop
    "suggest": 1,  # the WordNet reader must never be used by two threads
    "engine": 3,  # the engine warm-up, a sweep and a study may run side by side
}


class TaskSignals(QObject):
    """Lives in the GUI thread, so results arrive there as queued signals."""

    done = Signal(object)
    error = Signal(object, str)  # exception, traceback text
    dropped = Signal()  # cancelled before it ran: neither done nor error will come


@dataclass(eq=False)
class Job:
    """One piece of background work as the runner tracks it."""

    fn: Optional[Callable[[], Any]]
    lane: str
    on_cancel: Optional[Callable[[], None]] = None
    signals: Optional[TaskSignals] = None
    id: int = 0
    cancelled: bool = False
    started: bool = False
    finished: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Never start it if it is still queued; ask it to stop if it runs (any thread)."""
        self.cancelled = True
        if self.on_cancel is not None:
            self.on_cancel()

    def wait(self, timeout_s: Optional[float] = None) -> bool:
        """Block until it ran (or was dropped); True if it did within ``timeout_s``."""
        return self.finished.wait(timeout_s)


class Lane:
    """A named share of the runner's threads; looks enough like a QThreadPool for callers
    that start plain callables and drop what is still queued."""

    def __init__(self, runner: "JobRunner", name: str) -> None:
        self.runner, self.name = runner, name

    def start(self, fn: Callable[[], Any]) -> Job:
        return self.runner.submit(fn, lane=self.name)

    def clear(self) -> int:
        """Drop this lane's queued jobs (the running ones finish); how many were dropped."""
        return self.runner.drop_queued(self.name)

    def activeThreadCount(self) -> int:  # noqa: N802 - QThreadPool's name
        return self.runner.running_count(self.name)


class JobRunner(QObject):
    """The application's one background runner (see the module docstring)."""

    _ended = Signal()  # a job finished on a pool thread: reap it on the GUI thread

    def __init__(self, parent: Optional[QObject] = None, lanes: Optional[dict[str, int]] = None) -> None:
        super().__init__(parent)
        self.limits = dict(lanes or LANES)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(sum(self.limits.values()))
        self.pool.setObjectName("semscale-jobs")
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._jobs: dict[int, Job] = {}  # every job not yet reaped, queued or running or ended
        self._queues: dict[str, deque[Job]] = {name: deque() for name in self.limits}
        self._running: dict[str, int] = {name: 0 for name in self.limits}
        self._ended_ids: list[int] = []
        self._undelivered: set[TaskSignals] = set()  # result relays kept until they delivered
        self.closing = False
        self._ended.connect(self._reap, Qt.ConnectionType.QueuedConnection)  # never inside the lock

    # ---------------------------------------------------------------- submitting

    def lane(self, name: str) -> Lane:
        if name not in self.limits:
            raise KeyError(f"no lane {name!r} (lanes: {', '.join(self.limits)})")
        return Lane(self, name)

    def submit(self, fn: Callable[[], Any], lane: str = "general", on_cancel: Optional[Callable[[], None]] = None,
               signals: Optional[TaskSignals] = None) -> Job:
        """Run ``fn()`` on a pool thread as soon as ``lane`` has a free thread (GUI thread).

        ``fn`` should not raise (an exception is printed and otherwise lost); :meth:`run`
        wraps a function whose result or error the caller wants. Once the app is closing,
        new jobs are dropped at once.
        """
        if lane not in self.limits:
            raise KeyError(f"no lane {lane!r} (lanes: {', '.join(self.limits)})")
        job = Job(fn, lane, on_cancel, signals, next(self._ids))
        with self._lock:
            self._jobs[job.id] = job
            if self.closing:
                job.cancelled = True
                self._drop(job)
            elif self._running[lane] < self.limits[lane]:
                self._dispatch(job)
            else:
                self._queues[lane].append(job)
        return job

    def run(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
            on_error: Optional[Callable[[Exception, str], None]] = None, context: Optional[QObject] = None,
            lane: str = "general", on_cancel: Optional[Callable[[], None]] = None) -> Job:
        """Start ``fn`` in the background; call ``on_done(result)`` or ``on_error(exc, tb)`` later,
        on the GUI thread. With ``context`` the callbacks are dropped if that object was deleted
        meanwhile; a job cancelled before it started calls neither. Returns the job."""
        sig = TaskSignals()
        self._undelivered.add(sig)  # keep the QObject alive until it delivered

        def alive() -> bool:
            return context is None or shiboken6.isValid(context)

        def finish_ok(result: Any) -> None:
            self._undelivered.discard(sig)
            if alive():
                on_done(result)

        def finish_err(exc: Exception, tb: str) -> None:
            self._undelivered.discard(sig)
            if on_error is not None and alive():
                on_error(exc, tb)

        sig.done.connect(finish_ok)
        sig.error.connect(finish_err)
        sig.dropped.connect(lambda: self._undelivered.discard(sig))

        def call() -> None:  # pool thread
            try:
                result = fn()
            except Exception as e:  # reported to the caller, never lost in a thread
                sig.error.emit(e, traceback.format_exc())
            else:
                sig.done.emit(result)

        return self.submit(call, lane=lane, on_cancel=on_cancel, signals=sig)

    # ---------------------------------------------------------------- bookkeeping (lock held)

    def _dispatch(self, job: Job) -> None:
        self._running[job.lane] += 1
        job.started = True
        jid = job.id
        self.pool.start(lambda: self._execute(jid))  # the pool thread holds the id, never the job

    def _drop(self, job: Job) -> None:
        job.finished.set()
        if job.signals is not None:
            job.signals.dropped.emit()
        self._ended_ids.append(job.id)
        self._ended.emit()

    # ---------------------------------------------------------------- pool thread

    def _execute(self, jid: int) -> None:
        with self._lock:
            job = self._jobs[jid]
            fn = job.fn if not job.cancelled else None
            signals = job.signals
        try:
            if fn is not None:
                fn()
            elif signals is not None:
                signals.dropped.emit()
        except BaseException:  # a bare submit()'s function: printed, the pool thread lives on
            traceback.print_exc()
        finally:
            fn = signals = None
            with self._lock:
                self._running[job.lane] -= 1
                queue = self._queues[job.lane]
                if queue and not self.closing:
                    self._dispatch(queue.popleft())
                self._ended_ids.append(jid)
                job.finished.set()
                job = None
            self._ended.emit()

    # ---------------------------------------------------------------- GUI thread

    def _reap(self) -> None:
        """Forget ended jobs: their functions (and what those hold) are released here."""
        with self._lock:
            ids, self._ended_ids = self._ended_ids, []
            jobs = [self._jobs.pop(i, None) for i in ids]
        del jobs

    def drop_queued(self, lane: Optional[str] = None) -> int:
        """Drop the queued jobs of ``lane`` (all lanes with None); how many were dropped."""
        with self._lock:
            queues = [self._queues[lane]] if lane is not None else list(self._queues.values())
            dropped = [job for q in queues for job in q]
            for q in queues:
                q.clear()
            for job in dropped:
                job.cancelled = True
                self._drop(job)
        return len(dropped)

    def cancel_all(self) -> None:
        """Drop every queued job and ask every running one to stop."""
        self.drop_queued()
        with self._lock:
            running = [j for j in self._jobs.values() if j.started and not j.finished.is_set()]
        for job in running:
            job.cancel()

    def running_count(self, lane: Optional[str] = None) -> int:
        with self._lock:
            return self._running[lane] if lane is not None else sum(self._running.values())

    def queued_count(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._queues.values())

    @property
    def idle(self) -> bool:
        return self.running_count() == 0 and self.queued_count() == 0

    def wait_idle(self, timeout_s: float, step_ms: int = 20) -> bool:
        """Let the event loop turn until no job is queued or running; True if that happened in time.

        Results that arrive meanwhile are delivered as usual, and the windows keep painting; every
        result of a job that has ended is delivered before it returns.
        """
        deadline = time.monotonic() + timeout_s
        while not self.idle:
            if time.monotonic() > deadline:
                return False
            t0 = time.monotonic()
            loop = QEventLoop()
            QTimer.singleShot(step_ms, loop.quit)
            loop.exec()
            if time.monotonic() - t0 < step_ms / 2000:  # no loop runs while the app quits: poll instead
                QCoreApplication.processEvents()
                time.sleep(step_ms / 1000)
        # a job posts its result before it stops counting as running: deliver what is still queued
        QCoreApplication.sendPostedEvents()
        QCoreApplication.processEvents()
        return True

    def join(self, timeout_ms: int = -1) -> bool:
        """Block until every pool thread is idle (once the event loop is done); True if they were."""
        return self.pool.waitForDone(timeout_ms)

    def close(self, timeout_s: float = 30.0) -> bool:
        """Stop taking jobs, cancel the queued and running ones and wait for them (event loop turning).

        Afterwards no pool thread runs Python and every delivered result has been handled.
        True if all finished within ``timeout_s``.
        """
        self.closing = True
        self.cancel_all()
        ok = self.wait_idle(timeout_s) if QCoreApplication.instance() is not None else True
        ok = self.join(max(0, int(1000 * timeout_s)) if ok else 0) and ok
        if ok:
            QCoreApplication.sendPostedEvents()  # results already emitted, and the reaping
            self._reap()
        return ok


_runner: Optional[JobRunner] = None


def jobs() -> JobRunner:
    """The application's job runner (made on first use, owned by the QApplication)."""
    global _runner
    if _runner is None or not shiboken6.isValid(_runner):
        _runner = JobRunner(QCoreApplication.instance())
    return _runner


def run_task(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_error: Optional[Callable[[Exception, str], None]] = None,
    pool: Optional[Lane] = None,
    context: Optional[QObject] = None,
    lane: str = "general",
) -> TaskSignals:
    """Start ``fn`` in the background on the app's runner, in ``pool``'s lane if given, else
    ``lane``; see :meth:`JobRunner.run`."""
    job = jobs().run(fn, on_done, on_error, context=context, lane=pool.name if pool is not None else lane)
    assert job.signals is not None
    return job.signals


class AnalysisCache(QObject):
    """Results of background computations (pivots, confusion counts), keyed and kept.

    A view asks for ``key``: a result already computed is handed over at once, one being
    computed gains another callback, anything else starts a task. Keys name the run and
    how much of it there is (rows only ever grow), so a live run recomputes as levels
    arrive and switching back to a tab costs nothing. The oldest entries are dropped past
    ``max_entries``.
    """

    def __init__(self, parent: Optional[QObject] = None, max_entries: int = 256) -> None:
        super().__init__(parent)
        self.max_entries = max_entries
        # its own lane: a tab's pivot must not queue behind the engine warm-up or a dataset
        # being listed (that once delayed a heatmap by 12 s at start-up)
        self.pool = jobs().lane("analysis")
        self._done: dict[Any, Any] = {}
        self._waiting: dict[Any, list[Callable[[Any], None]]] = {}
        self.n_computed = 0

    def get(self, key: Any, default: Any = None) -> Any:
        return self._done.get(key, default)

    def request(self, key: Any, fn: Callable[[], Any], on_done: Callable[[Any], None],
                on_error: Optional[Callable[[Exception, str], None]] = None,
                context: Optional[QObject] = None) -> bool:
        """Deliver ``fn()``'s value for ``key`` to ``on_done``; True when it was already known.

        With ``context`` the callbacks are dropped if that object was deleted meanwhile.
        """
        if key in self._done:
            on_done(self._done[key])
            return True
        entry = (on_done, on_error, context)
        waiting = self._waiting.get(key)
        if waiting is not None:
            waiting.append(entry)
            return False
        self._waiting[key] = [entry]

        def live(ctx: Optional[QObject]) -> bool:
            return ctx is None or shiboken6.isValid(ctx)

        def done(value: Any) -> None:
            self.n_computed += 1
            self._done[key] = value
            while len(self._done) > self.max_entries:
                self._done.pop(next(iter(self._done)))
            for cb, _err, ctx in self._waiting.pop(key, []):
                if live(ctx):
                    cb(value)

        def failed(exc: Exception, tb: str) -> None:
            for _cb, err, ctx in self._waiting.pop(key, []):
                if err is not None and live(ctx):
                    err(exc, tb)

        sig = run_task(fn, done, failed, pool=self.pool, context=self)
        sig.dropped.connect(lambda: self._waiting.pop(key, None))  # cancelled: a later request starts afresh
        return False

    def clear(self) -> None:
        self._done.clear()


_shared: Optional[AnalysisCache] = None


def analysis_cache() -> AnalysisCache:
    """The application's cache (views made outside a ResultsPanel share it too)."""
    global _shared
    if _shared is None or not shiboken6.isValid(_shared):
        _shared = AnalysisCache(QCoreApplication.instance())
    return _shared


def drain_background_work(timeout_ms: int = 30000) -> bool:
    """Drop every queued background job and block until the running ones ended; True when they did.

    For callers outside the event loop; the app itself closes its runner with
    :meth:`JobRunner.close`, which keeps the event loop turning while it waits.
    """
    runner = jobs()
    runner.drop_queued()
    return runner.join(timeout_ms)
