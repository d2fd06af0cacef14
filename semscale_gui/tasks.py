"""Run a plain function on the global QThreadPool and get its result as a signal.

Used for anything that may take more than a frame: listing a dataset, validating it,
reading a run or a predictions file, pivoting and grouping results. The GUI thread
never waits on disk, decoding or pandas.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Optional

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class TaskSignals(QObject):
    """Lives in the GUI thread, so results arrive there as queued signals."""

    done = Signal(object)
    error = Signal(object, str)  # exception, traceback text


class FunctionTask(QRunnable):
    """Calls ``fn()`` on a pool thread and reports through ``signals``."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = TaskSignals()
        self.setAutoDelete(True)

    def run(self) -> None:  # pool thread
        try:
            result = self.fn()
        except Exception as e:  # reported to the caller, never lost in a thread
            self._deliver(self.signals.error, e, traceback.format_exc())
            return
        self._deliver(self.signals.done, result)

    @staticmethod
    def _deliver(signal, *args: Any) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the app is shutting down and the signals object is gone: nobody to tell
            pass


_alive: set[TaskSignals] = set()


def run_task(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_error: Optional[Callable[[Exception, str], None]] = None,
    pool: Optional[QThreadPool] = None,
    context: Optional[QObject] = None,
) -> TaskSignals:
    """Start ``fn`` in the background; call ``on_done(result)`` or ``on_error(exc, tb)`` later.

    With ``context`` (usually the calling widget) the callbacks are dropped if that object
    was deleted meanwhile, e.g. a window closed while a dataset was still being listed.
    """
    task = FunctionTask(fn)
    sig = task.signals
    _alive.add(sig)  # keep the QObject alive until a result has been delivered

    def alive() -> bool:
        return context is None or shiboken6.isValid(context)

    def finish_ok(result: Any) -> None:
        _alive.discard(sig)
        if alive():
            on_done(result)

    def finish_err(exc: Exception, tb: str) -> None:
        _alive.discard(sig)
        if on_error is not None and alive():
            on_error(exc, tb)

    sig.done.connect(finish_ok)
    sig.error.connect(finish_err)
    (pool or QThreadPool.globalInstance()).start(task)
    return sig


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
        # its own threads: a tab's pivot must not queue behind the engine warm-up or a dataset
        # being listed on the global pool (that once delayed a heatmap by 12 s at start-up)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
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

        run_task(fn, done, failed, pool=self.pool, context=self)
        return False

    def clear(self) -> None:
        self._done.clear()


_shared: Optional[AnalysisCache] = None


def analysis_cache() -> AnalysisCache:
    """The application's cache (views made outside a ResultsPanel share it too)."""
    global _shared
    if _shared is None or not shiboken6.isValid(_shared):
        _shared = AnalysisCache()
    return _shared


def drain_background_work(timeout_ms: int = 30000) -> bool:
    """Drop queued background tasks and wait for the running ones; True when all finished.

    Called once the app is done, before the interpreter shuts down: a pool thread still
    running Python (a thumbnail decode, a pivot, the engine warm-up) while modules and Qt
    objects are being torn down can crash the process on its way out.
    """
    from semscale_gui.thumbnails import started_decode_pool

    pools = [QThreadPool.globalInstance()]
    if _shared is not None and shiboken6.isValid(_shared):
        pools.append(_shared.pool)
    decode = started_decode_pool()
    if decode is not None:
        pools.append(decode)
    for pool in pools:
        pool.clear()
    return all(pool.waitForDone(timeout_ms) for pool in pools)
