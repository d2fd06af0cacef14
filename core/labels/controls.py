"""Control curves: the same name counts per class, without the meaning.

Extra names can help (or hurt) through ensembling or extra targets alone. A control keeps
every class's canonical name and replaces each further name with a meaningless one, so at
every level each class has exactly as many names as on the real curve:

* ``random-words``: real words drawn (seeded) from a vocabulary that excludes every name
  of every class, without repeats across classes;
* ``random-chars``: random letter strings as long as the names they replace (WaffleCLIP).

No control name equals or contains a real name, or equals a word of one (compared after
:func:`normalise`: case, accents, spaces and punctuation ignored).
"""

from __future__ import annotations

import random
import re
import string
from pathlib import Path
from typing import Iterable, Optional, Sequence

from core.util.names import compact_key
from core.util.errors import InputError
from core.labels.labelset import LabelSet
from core.util.tables import read_user_text

SYNONYMS = "synonyms"
CONTROLS = ("random-words", "random-chars")
FALLBACK_VOCABULARY = 50_000  # wordfreq's most frequent English words considered


normalise = compact_key  # lower case, no accents, letters and digits only ("T-Shirt" -> "tshirt")


def parse_controls(spec: str | Sequence[str] | None) -> list[str]:
    """Control names from ``"random-words,random-chars"`` or a list; unknown ones are an error."""
    if spec is None:
        return []
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s and s.strip()]
    out: list[str] = []
    for c in items:
        if c not in CONTROLS:
            raise InputError(f"unknown control '{c}' (choose from {', '.join(CONTROLS)})", field="controls")
        if c not in out:
            out.append(c)
    return out


class RealNames:
    """Every real name of every class, for the "no control name contains a real name" rule."""

    def __init__(self, labels: LabelSet) -> None:
        names = {normalise(n) for ns in labels.names.values() for n in ns} | {normalise(c) for c in labels.names}
        self.whole = sorted(n for n in names if n)
        self.words = {normalise(w) for ns in labels.names.values() for n in ns for w in re.split(r"[\s_\-/]+", n)}
        self.words.discard("")

    def clashes(self, candidate: str) -> bool:
        key = normalise(candidate)
        return not key or key in self.words or any(real in key for real in self.whole)


def load_vocabulary(path: Optional[str | Path] = None) -> list[str]:
    """Candidate words: a file (one per line, ``#`` comments) or the bundled noun lexicon.

    Without a file: the single-word, purely alphabetic lemmas of the bundled WordNet noun
    lexicon (:func:`core.labels.lexicon.noun_vocabulary`), or, should that be missing from an
    installation, the most frequent English words of ``wordfreq`` filtered the same way.
    """
    if path is not None:
        words = []
        for line in read_user_text(path).splitlines():
            w = line.strip()
            if w and not w.startswith("#"):
                words.append(w)
        if not words:
            raise InputError("the vocabulary file has no words", file=path, field="vocabulary")
        return list(dict.fromkeys(words))
    try:
        from core.labels.lexicon import noun_vocabulary

        words = noun_vocabulary()
    except (ImportError, OSError, KeyError):
        import wordfreq

        words = wordfreq.top_n_list("en", FALLBACK_VOCABULARY)
    return list(dict.fromkeys(w.lower() for w in words if w.isalpha() and len(w) >= 3))


def _extras_needed(labels: LabelSet) -> dict[str, int]:
    return {c: max(0, len(ns) - 1) for c, ns in labels.names.items()}


def random_words(labels: LabelSet, vocabulary: Iterable[str], seed: int = 0) -> LabelSet:
    """Canonical name + random vocabulary words (no repeats across classes, none clashing).

    The vocabulary is shuffled with the seed and walked until enough words pass the
    real-name check, so a large vocabulary costs little more than the words drawn.
    """
    real = RealNames(labels)
    first: dict[str, str] = {}
    for w in vocabulary:
        first.setdefault(normalise(w), w)
    first.pop("", None)
    unique = list(first.values())
    need = _extras_needed(labels)
    total = sum(need.values())
    rng = random.Random(f"{seed}:random-words")
    rng.shuffle(unique)
    drawn = []
    for w in unique:
        if len(drawn) == total:
            break
        if not real.clashes(w):
            drawn.append(w)
    if len(drawn) < total:
        raise InputError(f"the vocabulary has {len(drawn)} usable words (after removing every real name) but the "
                         f"random-words control needs {total}; give a larger --vocabulary", field="vocabulary")
    names, i = {}, 0
    for c, ns in labels.names.items():
        names[c] = ns[:1] + drawn[i : i + need[c]]
        i += need[c]
    return LabelSet(names=names, sources={c: ["canonical"] + ["random-words"] * need[c] for c in names})


def random_chars(labels: LabelSet, seed: int = 0) -> LabelSet:
    """Canonical name + random lower-case letter strings as long as the names they replace."""
    real = RealNames(labels)
    rng = random.Random(f"{seed}:random-chars")
    used: set[str] = set()
    names = {}
    for c, ns in labels.names.items():
        out = ns[:1]
        for n in ns[1:]:
            length = max(1, len(n))
            for _ in range(10_000):
                s = "".join(rng.choice(string.ascii_lowercase) for _ in range(length))
                if s not in used and not real.clashes(s):
                    break
            else:  # pragma: no cover - needs a labels file whose names cover every short string
                raise InputError(f"cannot draw a random string of length {length} clashing with no real name",
                                 field="controls")
            used.add(s)
            out.append(s)
        names[c] = out
    return LabelSet(names=names, sources={c: ["canonical"] + ["random-chars"] * (len(v) - 1) for c, v in names.items()})


def names_kinds(labels: LabelSet, controls: Sequence[str], seed: int = 0,
                vocabulary: Optional[str | Path] = None) -> dict[str, LabelSet]:
    """The label sets a sweep scores: ``synonyms`` (the labels file) then each control."""
    kinds = {SYNONYMS: labels}
    for c in parse_controls(controls):
        if c == "random-words":
            kinds[c] = random_words(labels, load_vocabulary(vocabulary), seed)
        else:
            kinds[c] = random_chars(labels, seed)
    return kinds
