"""How names are compared, shown and turned into file names, defined once.

Labels files, the synonym suggestions, external predictions and the app's labels editor
all decide "is this the same name?" with :func:`name_key` and show a bare class key with
:func:`display_name`, so a duplicate found in one place is a duplicate everywhere.
"""

from __future__ import annotations

import re
import unicodedata


def display_name(s: str) -> str:
    """Display form of a name or class key: underscores become spaces, whitespace collapsed
    (``lawn_mower`` -> ``lawn mower``)."""
    s = unicodedata.normalize("NFC", str(s)).replace("_", " ")
    return " ".join(s.split())


def _singular(word: str) -> str:
    """A deliberately simple English singular, good enough to merge 'dogs' with 'dog'."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"  # berries -> berry
    if word.endswith(("sses", "xes", "zzes", "ches", "shes")):
        return word[:-2]  # glasses -> glass, boxes -> box, churches -> church
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]  # dogs -> dog (glass, cactus, iris stay)
    return word


def name_words(s: str) -> list[str]:
    """The words of a name with case, accents, punctuation and underscores ignored."""
    s = unicodedata.normalize("NFKD", str(s))
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).casefold()
    return "".join(ch if ch.isalnum() else " " for ch in s).split()


def compact_key(s: str) -> str:
    """:func:`name_words` run together ("T-Shirt" -> "tshirt"): matching class lists to other
    lists, and keeping real names out of random control vocabularies."""
    if s.isascii():  # the common case, and the hot loop over a whole vocabulary
        low = s.lower()
        return low if low.isalnum() else "".join(ch for ch in low if ch.isalnum())
    return "".join(name_words(s))


def name_key(s: str) -> str:
    """Comparison key of a name: two names with the same key are duplicates.

    Case, accents, punctuation, underscores and whitespace are ignored, and the last
    word is reduced to a simple English singular ("Hot_Dogs!" and "hot dog" collide).
    """
    words = name_words(s)
    if words:
        words[-1] = _singular(words[-1])
    return " ".join(words)


def slug(text: str, sep: str = "_", max_len: int | None = None, fallback: str = "item") -> str:
    """A file-name-safe form of ``text``: runs of other characters become ``sep``."""
    return re.sub(r"[^A-Za-z0-9._-]+", sep, text).strip(sep)[:max_len] or fallback
