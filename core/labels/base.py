"""The label set: per class, an ordered list of names (the first is the canonical name).

Its own module so that the readers (:mod:`core.labels.labelset`) and the presets
(:mod:`core.labels.presets`) can both build one without importing each other.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from core.util.files import atomic_write_text
from core.util.names import name_key


@dataclass
class LabelSet:
    """Ranked names per class. ``sources`` records where each name came from."""

    names: dict[str, list[str]]
    sources: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    path: Optional[str] = None

    @property
    def classes(self) -> list[str]:
        return list(self.names)

    @property
    def max_names(self) -> int:
        return max((len(v) for v in self.names.values()), default=0)

    def all_names(self) -> list[str]:
        """Every distinct name, in first-seen order (what the text encoder must embed)."""
        seen: dict[str, None] = {}
        for names in self.names.values():
            for n in names:
                seen.setdefault(n, None)
        return list(seen)

    def ordered(self, ordering: int = 0, seed: int = 0) -> dict[str, list[str]]:
        """Names per class in the given ordering.

        Ordering 0 is the file's ranking. Orderings 1..N shuffle each class's synonyms
        with a seed derived from (seed, ordering) while keeping the canonical name first,
        so level 1 stays the canonical baseline and higher levels show spread.
        """
        if ordering == 0:
            return {c: list(v) for c, v in self.names.items()}
        out = {}
        for c, v in self.names.items():
            # one generator per class, over the names in sorted order: a shuffle never depends on
            # where the class or its names sit in the file
            rng = random.Random(f"{seed}:{ordering}:{c}")
            rest = sorted(v[1:])
            rng.shuffle(rest)
            out[c] = v[:1] + rest
        return out

    def to_frame(self):
        import pandas as pd

        rows = []
        for c, names in self.names.items():
            srcs = self.sources.get(c, [])
            for i, n in enumerate(names):
                rows.append({"class": c, "synonym": n, "source": srcs[i] if i < len(srcs) else ""})
        return pd.DataFrame(rows, columns=["class", "synonym", "source"])

    def save(self, path: str | Path) -> None:
        """Write CSV (``class,synonym,source``) or JSON depending on the suffix."""
        path = Path(path)
        if path.suffix.lower() == ".json":
            atomic_write_text(path, json.dumps(self.names, indent=2, ensure_ascii=False) + "\n")
        else:
            df = self.to_frame()
            if not any(df["source"].astype(bool)):
                df = df.drop(columns=["source"])
            atomic_write_text(path, df.to_csv(index=False))


def shared_names(names: dict[str, list[str]]) -> dict[str, list[str]]:
    """:func:`~core.util.names.name_key` -> the classes listing it, for names under more than one class."""
    owners: dict[str, list[str]] = {}
    for c, ns in names.items():
        for n in ns:
            lst = owners.setdefault(name_key(n), [])
            if c not in lst:
                lst.append(c)
    return {k: v for k, v in owners.items() if len(v) > 1}


def shared_name_warnings(names: dict[str, list[str]]) -> list[str]:
    """One warning per name that a later class shares with an earlier one."""
    shared = shared_names(names)
    return [f"name '{n}' appears under classes '{shared[name_key(n)][0]}' and '{c}'"
            for c, ns in names.items() for n in ns if shared.get(name_key(n), [c])[0] != c]
