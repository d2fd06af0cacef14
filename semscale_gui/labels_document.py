"""The synonym list being edited: ranked names per class, with undo/redo.

Every edit goes through a :class:`QUndoStack` command that swaps whole snapshots of the
names (cheap even for 1,000 classes) so undo can never drift out of sync with the
table. The document also answers the questions the editor shows inline: which names are
duplicated across classes, which classes have no names, what each level contains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from core.labels.labelset import shared_names
from core.util.names import display_name, name_key

Snapshot = tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  # (class, names, sources)


@dataclass(frozen=True)
class Issue:
    """One inline warning; ``index`` is the name's rank (-1 for the whole class)."""

    kind: str  # duplicate | no-names | not-in-data | not-in-labels | blank
    cls: str
    index: int
    message: str


@dataclass(frozen=True)
class LevelInfo:
    level: int
    n_categories: int  # flat mode: one category per distinct name (a shared name counts once)
    n_classes: int  # pooled mode: one category per distinct set of names
    n_short: int  # classes with fewer than ``level`` names (they use all they have)
    origin: str = ""  # where the level comes from, in words


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class _Swap(QUndoCommand):
    def __init__(self, doc: "LabelsDocument", text: str, before: Snapshot, after: Snapshot) -> None:
        super().__init__(text)
        self.doc, self.before, self.after = doc, before, after

    def redo(self) -> None:
        self.doc._restore(self.after)

    def undo(self) -> None:
        self.doc._restore(self.before)


class LabelsDocument(QObject):
    """Ordered classes, each with ranked names (first = canonical) and their sources."""

    changed = Signal()

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._names: dict[str, list[str]] = {}
        self._sources: dict[str, list[str]] = {}
        self.data_classes: list[str] = []
        self.path: Optional[str] = None
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(500)

    # ---------------------------------------------------------------- reading

    @property
    def classes(self) -> list[str]:
        return list(self._names)

    def names(self, cls: str) -> list[str]:
        return list(self._names.get(cls, []))

    @property
    def max_names(self) -> int:
        return max((len(v) for v in self._names.values()), default=0)

    def as_dict(self) -> dict[str, list[str]]:
        return {c: list(v) for c, v in self._names.items()}

    # ---------------------------------------------------------------- snapshots

    def _snapshot(self) -> Snapshot:
        return tuple((c, tuple(n), tuple(self._sources.get(c, [""] * len(n)))) for c, n in self._names.items())

    def _restore(self, snap: Snapshot) -> None:
        self._names = {c: list(n) for c, n, _ in snap}
        self._sources = {c: list(s) for c, _, s in snap}
        self.changed.emit()

    def _edit(self, text: str, mutate: Callable[[dict[str, list[str]], dict[str, list[str]]], None]) -> None:
        before = self._snapshot()
        names = {c: list(v) for c, v in self._names.items()}
        sources = {c: list(self._sources.get(c, [""] * len(v))) for c, v in self._names.items()}
        mutate(names, sources)
        after = tuple((c, tuple(n), tuple(sources.get(c, [""] * len(n)))) for c, n in names.items())
        if after != before:
            self.undo_stack.push(_Swap(self, text, before, after))

    # ---------------------------------------------------------------- loading

    def load_labelset(self, labels, undoable: bool = False, text: str = "Import labels") -> None:
        """Replace everything with a :class:`core.labels.labelset.LabelSet` (undoable for imports)."""
        names = {c: list(v) for c, v in labels.names.items()}
        sources = {c: list(labels.sources.get(c, [])) + [""] * (len(v) - len(labels.sources.get(c, [])))
                   for c, v in names.items()}
        self.path = getattr(labels, "path", None)
        if undoable:
            def mutate(n: dict, s: dict) -> None:
                n.clear()
                s.clear()
                n.update(names)
                s.update(sources)

            self._edit(text, mutate)
        else:
            self.undo_stack.clear()
            self._names, self._sources = names, sources
            self.undo_stack.setClean()
            self.changed.emit()

    def to_labelset(self):
        """A :class:`core.labels.labelset.LabelSet`; a class left without names falls back to its own name."""
        from core.labels.labelset import LabelSet

        names, sources = {}, {}
        for c, ns in self._names.items():
            clean = [n.strip() for n in ns if n.strip()]
            names[c] = clean or [display_name(c)]
            # an empty source is a name the user brought (a labels file without a source column)
            src = self.sources(c)
            sources[c] = [src[i] for i, n in enumerate(ns) if n.strip()] or ["class"]
        warnings = [i.message for i in self.issues() if i.kind == "duplicate"]
        return LabelSet(names=names, sources=sources, warnings=warnings, path=self.path)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.to_labelset().save(path)
        return path

    # ---------------------------------------------------------------- edits (undoable)

    def rename(self, cls: str, i: int, name: str) -> None:
        name = name.strip()
        if not name:
            self.remove_name(cls, i)
            return

        def m(n: dict, s: dict) -> None:
            if n[cls][i] != name:
                n[cls][i] = name
                s[cls][i] = "edited"

        self._edit(f"Rename '{self._names[cls][i]}' to '{name}'", m)

    def insert_name(self, cls: str, i: int, name: str) -> None:
        name = name.strip()
        if not name:
            return

        def m(n: dict, s: dict) -> None:
            j = max(0, min(i, len(n[cls])))
            n[cls].insert(j, name)
            s[cls].insert(j, "edited")

        self._edit(f"Add '{name}' to {cls}", m)

    def add_names(self, additions: dict[str, Sequence[tuple[str, str]]], text: str = "Add suggested names") -> int:
        """Append ``(name, source)`` pairs after each class's names as one undoable edit.

        A name the class already has (same comparison key as the engine's hygiene
        rules: case, plural, punctuation) is skipped. Returns how many were added.
        """
        added = 0

        def m(n: dict, s: dict) -> None:
            nonlocal added
            for cls, pairs in additions.items():
                if cls not in n:
                    continue
                have = {name_key(x) for x in n[cls]}
                for name, source in pairs:
                    name = name.strip()
                    key = name_key(name)
                    if name and key and key not in have:
                        have.add(key)
                        n[cls].append(name)
                        s[cls].append(source)
                        added += 1

        self._edit(text, m)
        return added

    def sources(self, cls: str) -> list[str]:
        """Where each name of ``cls`` came from (``user``, ``class``, ``edited``, ``wordnet`` …)."""
        src = self._sources.get(cls, [])
        return [src[i] if i < len(src) and src[i] else "user" for i in range(len(self._names.get(cls, [])))]

    def remove_name(self, cls: str, i: int) -> None:
        if not 0 <= i < len(self._names.get(cls, [])):
            return

        def m(n: dict, s: dict) -> None:
            del n[cls][i]
            del s[cls][i]

        self._edit(f"Remove '{self._names[cls][i]}' from {cls}", m)

    def remove_names(self, removals: dict[str, Sequence[str]], text: str = "Remove names") -> int:
        """Remove the named names of each class (matched by name key) as one undoable edit; how many."""
        removed = 0

        def m(n: dict, s: dict) -> None:
            nonlocal removed
            for cls, drop in removals.items():
                keys = {name_key(x) for x in drop}
                keep = [i for i, x in enumerate(n.get(cls, [])) if name_key(x) not in keys]
                removed += len(n.get(cls, [])) - len(keep)
                if cls in n:
                    n[cls] = [n[cls][i] for i in keep]
                    s[cls] = [s[cls][i] for i in keep]

        self._edit(text, m)
        return removed

    def move_name(self, cls: str, i: int, j: int) -> None:
        """Move the name at rank ``i`` to rank ``j`` (both 0-based)."""
        n_names = len(self._names.get(cls, []))
        if not (0 <= i < n_names and 0 <= j < n_names) or i == j:
            return

        def m(n: dict, s: dict) -> None:
            n[cls].insert(j, n[cls].pop(i))
            s[cls].insert(j, s[cls].pop(i))

        self._edit(f"Move '{self._names[cls][i]}' to rank {j + 1}", m)

    def add_class(self, cls: str, names: Sequence[str] = ()) -> None:
        cls = cls.strip()
        if not cls or cls in self._names:
            return

        def m(n: dict, s: dict) -> None:
            n[cls] = list(names) or [display_name(cls)]
            s[cls] = ["class"] * len(n[cls])

        self._edit(f"Add class '{cls}'", m)

    def add_classes(self, classes: Sequence[str]) -> None:
        new = [c for c in classes if c not in self._names]
        if not new:
            return

        def m(n: dict, s: dict) -> None:
            for c in new:
                n[c] = [display_name(c)]
                s[c] = ["class"]

        self._edit(f"Add {len(new)} class(es)", m)

    def remove_class(self, cls: str) -> None:
        if cls not in self._names:
            return

        def m(n: dict, s: dict) -> None:
            n.pop(cls)
            s.pop(cls, None)

        self._edit(f"Remove class '{cls}'", m)

    # ---------------------------------------------------------------- analysis

    def duplicates(self) -> dict[str, list[str]]:
        """Name key (:func:`core.util.names.name_key`) → classes using it, for names under more than one class."""
        return shared_names(self._names)

    def issues(self) -> list[Issue]:
        out: list[Issue] = []
        dups = self.duplicates()
        for c, ns in self._names.items():
            if not ns:
                out.append(Issue("no-names", c, -1, f"class '{c}' has no names (its class name will be used)"))
            for i, n in enumerate(ns):
                others = dups.get(name_key(n))
                if others:
                    rest = [o for o in others if o != c]
                    out.append(Issue("duplicate", c, i, f"name '{n}' of '{c}' also appears under "
                                     + ", ".join(f"'{o}'" for o in rest)))
        if self.data_classes:
            data = set(self.data_classes)
            for c in self.data_classes:
                if c not in self._names:
                    out.append(Issue("not-in-labels", c, -1,
                                     f"class '{c}' is in the dataset but has no names here (its images are not scored)"))
            for c in self._names:
                if c not in data:
                    out.append(Issue("not-in-data", c, -1, f"class '{c}' has no images in the dataset"))
        return out

    def level_info(self, levels: Sequence[int], auto: bool = True) -> list[LevelInfo]:
        """Each level's categories, counted the way the sweep counts them (core.pipeline.scoring)."""
        from core.pipeline.scoring import level_category_counts

        names = {c: (v or [display_name(c)]) for c, v in self._names.items()}
        classes = list(names)
        counts = [len(v) for v in names.values()]
        flat = level_category_counts(names, classes, levels, "flat")
        pooled = level_category_counts(names, classes, levels, "pooled")
        return [LevelInfo(k, f, p, sum(1 for n in counts if n < k), self._level_origin(k, names, auto))
                for k, f, p in zip(levels, flat, pooled)]

    @staticmethod
    def _level_origin(k: int, names: dict[str, list[str]], auto: bool) -> str:
        """"doubling", or why an odd level exists: "only 'ball' has a 9th name"."""
        longest = max((len(v) for v in names.values()), default=0)
        with_k = [c for c, v in names.items() if len(v) >= k]
        if k > longest:
            return f"no class has {k} names: same as level {longest}"
        if auto and k & (k - 1) == 0 and k < longest:
            return "doubling (1, 2, 4, …)"
        if auto and k == longest:
            what = (f"only '{with_k[0]}' has" if len(with_k) == 1 else f"{len(with_k)} classes have")
            return f"the longest list: {what} a {_ordinal(k)} name"
        return "typed in the Run panel"

    def categories(self, level: int) -> dict[str, list[str]]:
        """The names each class contributes at ``level`` (flat mode categories)."""
        return {c: (v or [display_name(c)])[:level] for c, v in self._names.items()}
