"""Name suggestions computed off the GUI thread: what to ask the engine, what came back.

:func:`compute_suggestions` is plain Python around :mod:`core.synonyms` (so it can be
tested without Qt); :class:`SuggestionRunner` runs it on a pool of exactly one thread,
because nltk's WordNet reader is not thread-safe and the engine caches one reader per
database: two jobs at once could read it concurrently.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QThreadPool, Signal

from semscale_gui.tasks import run_task

SOURCE_TITLES = {"wordnet": "WordNet", "neighbours": "embedding neighbours"}
STAGE_TITLES = {"encode-text": "encoding prompts", "load-model": "loading the model"}
PROGRESS_INTERVAL_S = 0.1


@dataclass
class SuggestRequest:
    """Everything one suggestion job needs; built by the options dialog."""

    classes: list[str]  # the classes to fill (one, or all)
    per_class: int  # each class is filled up to this many names, the user's included
    source: str = "wordnet"  # wordnet | neighbours
    wordnet_path: Optional[str] = None  # None: find a database automatically
    include_related: bool = False  # WordNet hypernyms and hyponyms one step away
    backbone: Optional[dict] = None  # BackboneSpec fields (neighbours); built on the worker, where torch is
    backbone_title: str = ""
    templates: Any = "plain"  # what core.labels.labelset.load_templates takes
    vocabulary_file: Optional[str] = None  # None: WordNet noun lemmas
    max_vocabulary: int = 3000
    min_similarity: Optional[float] = None
    cache_dir: Optional[str] = None  # None: the engine's default user cache folder
    use_cache: bool = True

    @property
    def scope(self) -> str:
        return f"'{self.classes[0]}'" if len(self.classes) == 1 else f"{len(self.classes)} classes"


@dataclass(frozen=True)
class SuggestedName:
    """One row of the review list."""

    cls: str
    name: str
    source: str  # what the labels file records: wordnet, wordnet-hypernym, neighbours:0.83 …
    similarity: Optional[float] = None  # cosine to the canonical name (neighbours only)


@dataclass
class SuggestOutcome:
    request: SuggestRequest
    items: list[SuggestedName] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # collision warnings from the engine
    notes: list[str] = field(default_factory=list)  # e.g. "WordNet at /usr/share/wordnet [system]"
    seconds: float = 0.0


def similarity_of(source: str) -> Optional[float]:
    """The cosine recorded in a ``neighbours:0.83`` source, else None."""
    if not source.startswith("neighbours:"):
        return None
    try:
        return float(source.split(":", 1)[1].split(";", 1)[0])
    except ValueError:
        return None


def compute_suggestions(labels: Any, req: SuggestRequest, emit: Callable[[Any], None] = lambda ev: None,
                        cancel: Any = None) -> SuggestOutcome:
    """Ask the engine for names for ``req.classes`` and return only what it would add.

    :func:`core.synonyms.suggest_for_classes` applies the collision rules against every
    class's names, so a suggestion that is already another class's name is left out.
    """
    from core import synonyms as syn
    from core.util.errors import InputError
    from core.util.events import CancelToken, Log

    t0 = time.perf_counter()
    cancel = cancel or CancelToken()
    out = SuggestOutcome(request=req)
    classes = [c for c in req.classes if c in labels.names]
    if not classes:
        return out
    reader = None
    vocabulary = None
    if req.source == "neighbours" and req.vocabulary_file:
        vocabulary = syn.load_vocabulary(req.vocabulary_file)
    if req.source == "wordnet" or vocabulary is None:
        try:
            reader = syn.open_wordnet(req.wordnet_path or None)
        except InputError as e:
            if req.source == "wordnet":
                raise
            raise syn.WordNetUnavailable("embedding neighbours need a vocabulary: choose a word-list file (one word "
                                         f"per line) or make WordNet available. {e}", field="vocabulary") from None
        out.notes.append(reader.semscale_location.describe())
    backbone = templates = cache = None
    if req.source == "neighbours":
        from core.models.openclip import BackboneSpec, load_backbone
        from core.labels.labelset import load_templates

        if req.backbone is None:
            raise InputError("embedding neighbours need a backbone: tick one in the Run panel", field="model")
        templates = load_templates(req.templates)
        if req.use_cache:
            from core.embedding.cache import EmbeddingCache

            try:
                cache = EmbeddingCache(req.cache_dir)
            except OSError as e:
                emit(Log(f"{e}; suggesting without the embedding cache", "warning"))
                out.notes.append(f"without the embedding cache ({e})")
        spec = BackboneSpec(**req.backbone) if isinstance(req.backbone, dict) else dataclasses.replace(req.backbone)
        backbone = load_backbone(spec, lazy=cache is not None)
        out.notes.append(f"{req.backbone_title or backbone.name}, {len(templates)} template(s)")
    try:
        report = syn.suggest_for_classes(
            labels, classes, req.per_class, sources=(req.source,), wordnet_reader=reader,
            include_related=req.include_related, backbone=backbone, templates=templates, vocabulary=vocabulary,
            max_vocabulary=req.max_vocabulary, min_similarity=req.min_similarity, cache=cache, emit=emit,
            cancel=cancel)
    finally:
        if cache is not None:
            cache.close()
    if report.vocabulary_size:
        out.notes.append(f"vocabulary of {report.vocabulary_size} names")
    merged = report.labels
    out.dropped = [d.message for d in report.collisions]
    for c in classes:
        n = len(labels.names[c])
        for name, source in zip(merged.names[c][n:], merged.sources[c][n:]):
            out.items.append(SuggestedName(c, name, source, similarity_of(source)))
    out.seconds = time.perf_counter() - t0
    return out


class _ProgressRelay(QObject):
    """Turns one job's engine events into status lines (worker thread; queued to the GUI thread)."""

    text = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._last = 0.0

    def report(self, ev: Any) -> None:
        from core.util.events import Log, Progress

        if isinstance(ev, Progress):
            now = time.monotonic()
            if ev.done < ev.total and ev.done and now - self._last < PROGRESS_INTERVAL_S:
                return
            self._last = now
            self.text.emit(f"{STAGE_TITLES.get(ev.stage, ev.stage)} {ev.done:,}/{ev.total:,}")
        elif isinstance(ev, Log):
            self.text.emit(ev.message)


class SuggestionRunner(QObject):
    """Runs one suggestion job at a time and reports it as signals on the GUI thread."""

    started = Signal(object)  # SuggestRequest
    progress = Signal(str)  # a short status line
    finished = Signal(object)  # SuggestOutcome
    failed = Signal(object, str, str)  # the exception, message, details ("" for bad input: the message says it all)
    cancelled = Signal()
    busy_changed = Signal(bool)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # the WordNet reader must never be used by two threads
        self._token: Any = None

    @property
    def busy(self) -> bool:
        return self._token is not None

    def start(self, labels: Any, request: SuggestRequest) -> bool:
        """Start a job; False (and nothing started) while another one is running."""
        if self.busy:
            return False
        from core.util.events import CancelToken

        token = self._token = CancelToken()
        self.started.emit(request)
        self.busy_changed.emit(True)
        # The job reports through its own relay, held by the job alone: if the editor (and this
        # runner) is closed mid-job, the worker thread still emits on an object that exists.
        relay = _ProgressRelay()
        relay.text.connect(self.progress)
        run_task(lambda: compute_suggestions(labels, request, relay.report, token), self._done, self._error,
                 pool=self._pool, context=self)
        return True

    def cancel(self) -> None:
        if self._token is not None:
            self._token.cancel()
            self.progress.emit("cancelling …")

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Block until the job's thread is idle (on quit)."""
        return self._pool.waitForDone(timeout_ms)

    def _finish(self) -> None:
        self._token = None
        self.busy_changed.emit(False)

    def _done(self, outcome: SuggestOutcome) -> None:
        self._finish()
        self.finished.emit(outcome)

    def _error(self, exc: Exception, tb: str) -> None:
        from core.util.errors import InputError, WeightsUnavailable
        from core.util.events import Cancelled

        self._finish()
        if isinstance(exc, Cancelled):
            self.cancelled.emit()
        elif isinstance(exc, (InputError, WeightsUnavailable)):
            self.failed.emit(exc, str(exc), "")
        else:
            self.failed.emit(exc, f"{type(exc).__name__}: {exc}", tb)
