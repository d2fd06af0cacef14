"""Live what-if in the synonym editor: every edit re-scores the last run's levels at once.

Once a run of the editor's classes exists (its image embeddings in the cache), each edit is
sent to a worker thread that keeps an incremental scorer (:mod:`core.pipeline.whatif`) and
answers with top-1 per level and per-class recall, before (the run's names) and after (the
editor's). Edits are debounced by the editor; while one is scored, newer ones replace each
other and only the newest is scored next. Nothing here blocks the event loop.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Optional, Sequence

from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

MAX_CLASS_ROWS = 300  # per-class rows shown (edited and changed classes come first)


def find_runs(roots: Sequence[Path], classes: Sequence[str], labels_path: Optional[Path] = None,
              depth: int = 4) -> list[Path]:
    """Run folders under ``roots`` whose classes are ``classes``, newest first; runs of the editor's
    labels file come before runs of other files with the same classes."""
    want = set(classes)
    found: dict[Path, tuple] = {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for meta in _run_files(root, depth):
            try:
                data = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict) or data.get("status") == "failed":  # nothing to compare with
                continue
            config = data.get("config", {})
            labels = config.get("labels_resolved") or {}
            if not labels or set(labels) != want:
                continue
            same_file = bool(labels_path and config.get("labels")
                             and _same(Path(config["labels"]), Path(labels_path)))
            found[meta.parent.resolve()] = (same_file, meta.stat().st_mtime)
    return sorted(found, key=lambda p: found[p], reverse=True)


def _run_files(root: Path, depth: int):
    yield from (p for p in [root / "run.json"] if p.is_file())
    frontier = [root]
    for _ in range(depth):
        nxt = []
        for d in frontier:
            try:
                subs = [p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")]
            except OSError:
                continue
            for s in subs:
                if (s / "run.json").is_file():
                    yield s / "run.json"
                nxt.append(s)
        frontier = nxt


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


class WhatIfEngine(QObject):
    """The scorer on its own thread: ``open`` a run, ``submit`` names; results come back as signals."""

    # each carries the generation of the run it belongs to: results of a run no longer chosen are dropped
    opened = Signal(int, str, object)  # generation, run folder, the scorer's result before any edit
    ready = Signal(int, object)  # generation, core.pipeline.whatif.WhatIfResult
    failed = Signal(int, str)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._cv = threading.Condition()
        self._open: Optional[tuple[str, Optional[str]]] = None
        self._names: Optional[dict] = None
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        self.scorer = None
        self.busy = False
        self._cancel = None  # the token of the run being read
        self.generation = 0  # one more each time a run is chosen
        self._scorer_generation = -1

    def open(self, run_dir: str, backbone: Optional[str] = None) -> None:
        """Re-score this run from now on; a run still being read is abandoned."""
        with self._cv:
            self.generation += 1
            self._open = (str(run_dir), backbone, self.generation)
            if self._cancel is not None:
                self._cancel.cancel("another run was chosen")
            self._cv.notify()
        self._start()

    def submit(self, names: dict) -> None:
        """Score these names next (replacing any not yet started)."""
        with self._cv:
            self._names = {c: list(v) for c, v in names.items()}
            self._cv.notify()
        self._start()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="whatif", daemon=True)
            self._thread.start()

    def _loop(self) -> None:  # the worker thread
        from core.pipeline.whatif import open_run
        from core.util.errors import InputError
        from core.util.events import CancelToken, Cancelled

        while True:
            with self._cv:
                while not self._closed and self._open is None and (self._names is None or self.scorer is None):
                    self._cv.wait()
                if self._closed:
                    return
                job, self._open = self._open, None
                names = None
                if job is None:
                    names, self._names = self._names, None
                gen = job[2] if job is not None else self._scorer_generation
                self.busy = True
            try:
                if job is not None:
                    self.scorer = None
                    with self._cv:
                        self._cancel = CancelToken()
                    scorer = open_run(job[0], job[1], cancel=self._cancel)
                    self.scorer, self._scorer_generation = scorer, gen
                    self._send(self.opened, gen, job[0], scorer.result())
                else:
                    self._send(self.ready, gen, self.scorer.set_names(names))
            except Cancelled:
                pass  # a newer run was chosen (or the panel is closing): its request is next
            except InputError as e:
                self._send(self.failed, gen, str(e))
            except Exception as e:  # noqa: BLE001 - shown in the panel, never lost on the thread
                self._send(self.failed, gen, f"{type(e).__name__}: {e}")
            finally:
                self.busy = False

    def _send(self, signal, *args) -> None:
        """Emit from the worker thread unless the panel is gone (its window closed meanwhile)."""
        if self._closed:
            return
        try:
            signal.emit(*args)
        except RuntimeError:  # the QObject was deleted with its window
            self._closed = True

    def close(self) -> None:
        with self._cv:
            self._closed = True
            if self._cancel is not None:
                self._cancel.cancel("closing")
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)


class WhatIfPanel(QGroupBox):
    """Top-1 per level and per-class recall, the run's names vs the editor's, updated on every edit."""

    def __init__(self, editor, parent: Optional[QWidget] = None) -> None:
        super().__init__("What-if (re-scores the last run's images as you edit)", parent)
        self.editor = editor
        self.engine = WhatIfEngine(self)
        self.search_roots: list[Path] = []
        self.result = None
        self.run_dir: Optional[Path] = None
        self._searched: object = ()  # the labels file runs were last looked for beside
        self._sized = False
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.runs = QComboBox()
        self.runs.setToolTip("Runs of these classes, newest first")
        self.backbones = QComboBox()
        self.backbones.setToolTip("The backbone whose cached image embeddings are re-scored")
        self.open_button = QPushButton("Run…")
        self.open_button.setToolTip("Pick a run folder to compare the edited names against")
        self.find_button = QPushButton("Find runs")
        self.levels = QTableWidget(0, 4)
        self.levels.setHorizontalHeaderLabels(["level", "top-1 run", "top-1 edited", "change"])
        self.per_class = QTableWidget(0, 5)
        self.per_class.setHorizontalHeaderLabels(["class", "level", "recall run", "recall edited", "change"])
        for t in (self.levels, self.per_class):
            t.verticalHeader().hide()
            t.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)  # compact rows
            t.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
            t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        top = QHBoxLayout()  # the run and backbone names get the panel's width; the buttons a row of their own
        top.addWidget(self.runs, 3)
        top.addWidget(self.backbones, 2)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.find_button)
        buttons.addWidget(self.open_button)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(buttons)
        lay.addWidget(self.message)
        lay.addWidget(self.levels, 2)
        lay.addWidget(self.per_class, 3)
        self.runs.activated.connect(lambda _i: self._choose_run())
        self.backbones.activated.connect(lambda _i: self._open_current())
        self.find_button.clicked.connect(self.find_runs)
        self.open_button.clicked.connect(self._browse)
        self.engine.opened.connect(lambda g, run, res: self._current(g) and self._opened(run, res))
        self.engine.ready.connect(lambda g, res: self._current(g) and self._show(res))
        self.engine.failed.connect(lambda g, text: self._current(g) and self._failed(text))
        editor.labels_changed.connect(self.edited)
        self._say("No run yet: run a sweep of these classes first (the what-if re-scores its cached image embeddings).")

    # ---------------------------------------------------------------- runs
    def _current(self, generation: int) -> bool:
        """Whether a result belongs to the run chosen last (older ones arrive late and are dropped)."""
        return generation == self.engine.generation

    def _say(self, text: str) -> None:
        self.message.setText(text)

    def find_runs(self) -> list[Path]:
        """Look for runs of the editor's classes (beside its labels file and in the search roots)."""
        classes = self.editor.doc.classes
        src = getattr(self.editor, "source_path", None)
        roots = list(self.search_roots)
        if src is not None:  # its own folder only: a parent could be a whole home folder to walk
            roots.append(Path(src).parent)
        try:
            from semscale_gui.settings import runs_dir

            roots.append(runs_dir())
        except Exception:  # noqa: BLE001 - no settings folder: only the other roots
            pass
        runs = find_runs(roots, classes, src) if classes else []
        self.runs.clear()
        for r in runs:
            self.runs.addItem(r.name, str(r))
            self.runs.setItemData(self.runs.count() - 1, str(r), Qt.ItemDataRole.ToolTipRole)
        if runs:
            self._choose_run()
        else:
            self._say("No run of these classes found: run a sweep first (the what-if re-scores a run's cached "
                      "image embeddings), or pick a run folder with Run….")
        return runs

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Run folder")
        if d:
            self.set_run(d)

    def set_run(self, run_dir: str | Path, backbone: Optional[str] = None) -> None:
        """Compare against this run (and backbone; default its first)."""
        i = self.runs.findData(str(Path(run_dir).resolve()))
        if i < 0:
            self.runs.insertItem(0, Path(run_dir).name, str(Path(run_dir).resolve()))
            i = 0
        self.runs.setCurrentIndex(i)
        self._choose_run(backbone)

    def _choose_run(self, backbone: Optional[str] = None) -> None:
        from core.pipeline.whatif import run_backbones
        from core.util.errors import InputError

        run = self.runs.currentData()
        if not run:
            return
        try:
            names = run_backbones(run)
        except InputError as e:
            self._failed(str(e))
            return
        self.backbones.clear()
        self.backbones.addItems(names)
        if backbone in names:
            self.backbones.setCurrentIndex(names.index(backbone))
        self._open_current()

    def _open_current(self) -> None:
        run = self.runs.currentData()
        if not run:
            return
        self.run_dir = Path(run)
        self.result = None
        self._say(f"Reading the cached embeddings of {self.run_dir.name} ({self.backbones.currentText()})…")
        self.engine.open(run, self.backbones.currentText() or None)

    # ---------------------------------------------------------------- edits and results
    def edited(self) -> None:
        """The editor's names changed: score them (on the worker thread); the first time, find a run."""
        src = getattr(self.editor, "source_path", None)
        if self.run_dir is None and src != self._searched:
            self._searched = src
            self.find_runs()
            return
        if self.engine.scorer is not None or self.run_dir is not None:
            self.engine.submit(self.editor.doc.to_labelset().names)

    def _opened(self, run_dir: str, result) -> None:
        self._say(f"Comparing with {Path(run_dir).name} ({self.backbones.currentText()}): "
                  f"{len(self.engine.scorer.y):,} images, levels {', '.join(map(str, self.engine.scorer.levels))}.")
        self._show(result)
        self.edited()  # the editor's names may already differ from the run's

    def _failed(self, text: str) -> None:
        self.result = None
        self.levels.setRowCount(0)
        self.per_class.setRowCount(0)
        self._say(f"No what-if: {text}")

    def _show(self, result) -> None:
        self.result = result
        lv = result.levels
        self.levels.setRowCount(len(lv))
        rows = min(len(lv), 8)  # the level table shows every level (up to 8) without scrolling
        self.levels.setFixedHeight(self.levels.horizontalHeader().height() + rows * self.levels.verticalHeader()
                                   .defaultSectionSize() + 2 * self.levels.frameWidth() + 2)
        for r, row in enumerate(lv.itertuples()):
            cells = [str(row.level), f"{row.top1_before:.2%}", f"{row.top1_after:.2%}", f"{row.change:+.2%}"]
            for c, text in enumerate(cells):
                self.levels.setItem(r, c, QTableWidgetItem(text))
        pc = result.per_class
        moved = pc["class"].map(pc["change"].abs().groupby(pc["class"]).max()) > 0
        shown = (pc[pc["edited"] | moved] if len(result.edited) else pc.iloc[0:0]).head(MAX_CLASS_ROWS)
        self.per_class.setRowCount(len(shown))
        for r, row in enumerate(shown.itertuples()):
            cells = [shown["class"].iloc[r], str(row.level),
                     f"{row.recall_before:.2%}", f"{row.recall_after:.2%}", f"{row.change:+.2%}"]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                if c == 0 and bool(row.edited):
                    f = item.font()
                    f.setBold(True)
                    item.setFont(f)
                self.per_class.setItem(r, c, item)
        if result.edited:
            self._say(f"Edited: {', '.join(result.edited[:6])}{' …' if len(result.edited) > 6 else ''} "
                      f"(re-scored in {result.seconds:.2f} s)")

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """The first time it shows in a splitter left without room for it, take 40% of the height;
        without a run yet, look again (a sweep may have finished since)."""
        super().showEvent(event)
        if self.run_dir is None and self.editor.doc.classes:
            self.find_runs()
        from PySide6.QtWidgets import QSplitter

        split = self.parentWidget()
        if not self._sized and isinstance(split, QSplitter):
            self._sized = True
            sizes = split.sizes()
            if sizes and sizes[-1] < 120 and sum(sizes) > 300:
                total = sum(sizes)
                mine = total * 2 // 5
                rest = [max(1, round(v * (total - mine) / max(sum(sizes[:-1]), 1))) for v in sizes[:-1]]
                split.setSizes(rest + [mine])

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """Squeezable to nothing in the editor's splitter: the window's minimum height stays that of the
        editor without it (the user drags the panel open)."""
        return QSize(super().minimumSizeHint().width(), 0)

    def close_engine(self) -> None:
        self.engine.close()
