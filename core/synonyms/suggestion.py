"""A suggested name and where it came from (the ``source`` column of a labels file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from core.util.names import name_key as normalise_name


SUGGESTION_SOURCES = ("wordnet", "neighbours")


@dataclass(frozen=True)
class Suggestion:
    """One candidate name for a class.

    ``source`` is what the labels file records in its ``source`` column (``wordnet``,
    ``wordnet-hypernym``, ``wordnet-hyponym``, ``neighbours:0.83``); ``score`` ranks
    candidates of one source (cosine similarity for neighbours; for WordNet 1/sense rank,
    halved for related synsets); ``note`` says where exactly it came from (synset, count).
    """

    name: str
    source: str
    score: float = 1.0
    note: str = ""


def dedupe_suggestions(items: Iterable[Suggestion]) -> list[Suggestion]:
    """Keep the first of each group of suggestions whose names normalise alike."""
    seen: set[str] = set()
    out = []
    for s in items:
        k = normalise_name(s.name)
        if k and k not in seen:
            seen.add(k)
            out.append(s)
    return out
