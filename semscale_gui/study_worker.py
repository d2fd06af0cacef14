"""Runs :func:`core.study.study.run_study` on the same worker-thread machinery as a sweep.

The study's own events (a dataset started or finished) become two extra signals; every
sweep event of the dataset being run arrives through the usual ones (progress, log,
level_finished …), and Cancel stops the current dataset after its current batch while
finished datasets stay as they are.
"""

from __future__ import annotations

import traceback
from typing import Any, Optional

from PySide6.QtCore import QObject, Signal, Slot

from core.study.study import DatasetFinished, DatasetStarted

from semscale_gui.worker import SweepController, SweepWorker


class StudyWorker(SweepWorker):
    """``config`` is a ``(core.study.study.Study, core.study.study.StudyOptions)`` pair."""

    dataset_started = Signal(object)  # core.study.study.DatasetStarted
    dataset_finished = Signal(object)  # core.study.study.DatasetFinished

    def _emit(self, ev: Any) -> None:
        if isinstance(ev, DatasetStarted):
            self.dataset_started.emit(ev)
        elif isinstance(ev, DatasetFinished):
            self.dataset_finished.emit(ev)
        else:
            super()._emit(ev)

    @Slot()
    def run(self) -> None:
        from core.util.errors import InputError, WeightsUnavailable
        from core.study.study import run_study

        study, options = self.config
        try:
            result = run_study(study, options, emit=self._emit, cancel=self.cancel_token)
        except (InputError, WeightsUnavailable) as e:
            self.failed.emit(str(e), "")
            self.finished.emit("failed", "", {})
        except Exception as e:  # anything unexpected still ends as a message, not a dead thread
            self.failed.emit(f"{type(e).__name__}: {e}", traceback.format_exc())
            self.finished.emit("failed", options.out, {})
        else:
            if result.status == "cancelled":
                self.log.emit("study cancelled; finished datasets are kept", "warning")
            self.finished.emit(result.status, result.out, {"datasets": result.datasets})
        finally:
            thread = self.thread()
            if thread is not None:
                thread.quit()


class StudyController(SweepController):
    """A :class:`SweepController` whose job is a whole study."""

    dataset_started = Signal(object)
    dataset_finished = Signal(object)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)

    def _make_worker(self, config: Any) -> SweepWorker:
        worker = StudyWorker(config)
        worker.dataset_started.connect(self.dataset_started)
        worker.dataset_finished.connect(self.dataset_finished)
        return worker
