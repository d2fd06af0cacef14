"""Progress events and cancellation shared by the engine, the CLI and the GUI worker.

The engine only ever calls ``emit(event)`` with one of these dataclasses and checks a
:class:`CancelToken` between batches; front ends decide how to render them (tqdm in the
CLI, Qt signals in the app). Nothing here knows about Qt.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Optional


class _Text(str, Enum):
    """A str-valued enum: compares, hashes, formats and serialises (JSON, CSV) as its value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Stage(_Text):
    """The long stages a :class:`Progress` event reports."""

    LOAD_MODEL = "load-model"
    HASH = "hash"
    ENCODE_IMAGES = "encode-images"
    ENCODE_TEXT = "encode-text"
    SCORE = "score"
    ENSEMBLES = "ensembles"

    @property
    def title(self) -> str:
        """What a progress bar or status line calls this stage."""
        return _STAGE_TITLES[self]

    @property
    def unit(self) -> str:
        return {"encode-text": "prompt", "score": "level", "ensembles": "level"}.get(self.value, "img")


_STAGE_TITLES = {
    Stage.LOAD_MODEL: "loading model",
    Stage.HASH: "hashing images",
    Stage.ENCODE_IMAGES: "encoding images",
    Stage.ENCODE_TEXT: "encoding prompts",
    Stage.SCORE: "scoring levels",
    Stage.ENSEMBLES: "comparing backbones and ensembles",
}


class Status(_Text):
    """A run's ``status`` in run.json (``interrupted``: read back from a process that died)."""

    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


def stage_title(stage: str) -> str:
    """The title of a stage given as text (an unknown stage is shown as it is)."""
    try:
        return Stage(stage).title
    except ValueError:
        return stage


class Cancelled(Exception):
    """Raised inside the engine when the user asked to stop; finished work is kept."""


class CancelToken:
    """Thread-safe stop flag checked by the engine between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = "cancelled by user"
        self.status = "cancelled"  # the run status a stop leaves: "interrupted" when a signal asked for it

    def cancel(self, reason: str = "cancelled by user", status: str = "cancelled") -> None:
        if not self._event.is_set():
            self.reason, self.status = reason, status
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)


@dataclass
class Progress:
    """A long stage advanced: ``done`` of ``total`` units (images, prompts, levels)."""

    stage: str
    done: int
    total: int
    rate: Optional[float] = None  # units per second, when meaningful
    backbone: str = ""
    message: str = ""


@dataclass
class Log:
    """A human-readable message (``level`` is ``info``, ``warning`` or ``error``)."""

    message: str
    level: str = "info"


@dataclass
class ImageSkipped:
    """An image could not be used; it is listed in ``skipped.csv``."""

    path: str
    reason: str


@dataclass
class LevelFinished:
    """One (ordering, level) was scored; ``row`` is the line written to levels.csv."""

    level: int
    ordering: int
    row: dict[str, Any]
    per_class: list[dict[str, Any]] = field(default_factory=list)
    backbone: str = ""


@dataclass
class TableRows:
    """Rows appended to one of the analysis tables (backbones, ensembles, pairs, frequency…)."""

    table: str
    rows: list[dict[str, Any]]


@dataclass
class RunFinished:
    """The run ended; ``status`` is ``completed``, ``cancelled`` or ``failed``."""

    status: str
    run_dir: str
    summary: dict[str, Any] = field(default_factory=dict)
    error: str = ""


Event = Any  # one of the dataclasses above
EventCallback = Callable[[Event], None]


def ignore_events(event: Event) -> None:
    """Default callback: drop every event."""
