"""Run a plain function on the global QThreadPool and get its result as a signal.

Used for anything that may take more than a frame: listing a dataset, validating it,
reading a predictions file. The GUI thread never waits on disk or decoding.
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
