"""On-disk cache of a generative model's answers and per-name scores (SQLite, WAL).

Answers are keyed by (model identity, image content key, prompt) and name scores by
(model identity, image content key, prompt, name), so a re-run, a resumed run after a
failure or cancel, or a synonym edit pays only for what is new. Credentials never enter a
key: the identity is a hash of what the model kind declares as its identity.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Optional, Sequence

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (identity TEXT, image TEXT, prompt TEXT, answer TEXT,
                                    PRIMARY KEY (identity, image, prompt));
CREATE TABLE IF NOT EXISTS scores (identity TEXT, image TEXT, prompt TEXT, name TEXT, score REAL,
                                   PRIMARY KEY (identity, image, prompt, name));
"""
FILE_NAME = "answers.sqlite"
CHUNK = 400


class AnswerCache:
    """One SQLite file in ``root``; safe to share between threads (one lock) and runs (WAL)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / FILE_NAME
        self._con = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.executescript(SCHEMA)
        self._lock = threading.Lock()

    @classmethod
    def of(cls, cache) -> Optional["AnswerCache"]:
        """The answer cache that goes with ``cache``: itself, the same folder as an embedding
        cache (anything with a ``root``), a folder path, or None (no caching)."""
        if cache is None or isinstance(cache, AnswerCache):
            return cache
        if isinstance(cache, (str, os.PathLike)):
            return cls(cache)
        root = getattr(cache, "root", None)
        if root is None:
            return None
        mine = getattr(cache, "_answer_cache", None)
        if mine is None:
            mine = cls(root)
            try:
                cache._answer_cache = mine  # one connection per embedding cache object
            except AttributeError:
                pass
        return mine

    def close(self) -> None:
        with self._lock:
            self._con.close()

    # -- answers
    def get_answers(self, identity: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Cached answers of the (image key, prompt) pairs that have one."""
        out: dict[tuple[str, str], str] = {}
        by_prompt: dict[str, list[str]] = {}
        for image, prompt in dict.fromkeys(keys):
            by_prompt.setdefault(prompt, []).append(image)
        with self._lock:
            for prompt, images in by_prompt.items():
                for s in range(0, len(images), CHUNK):
                    chunk = images[s : s + CHUNK]
                    q = (f"SELECT image, answer FROM answers WHERE identity=? AND prompt=? "
                         f"AND image IN ({','.join('?' * len(chunk))})")
                    for image, answer in self._con.execute(q, (identity, prompt, *chunk)):
                        out[(image, prompt)] = answer
        return out

    def put_answers(self, identity: str, items: Iterable[tuple[str, str, str]]) -> None:
        """Store (image key, prompt, answer) rows."""
        rows = [(identity, i, p, a) for i, p, a in items]
        with self._lock, self._con:
            self._con.executemany("INSERT OR REPLACE INTO answers VALUES (?,?,?,?)", rows)

    # -- name scores
    def get_scores(self, identity: str, image: str, prompt: str, names: Sequence[str]) -> dict[str, float]:
        """Cached scores of ``names`` for one image and prompt."""
        out: dict[str, float] = {}
        uniq = list(dict.fromkeys(names))
        with self._lock:
            for s in range(0, len(uniq), CHUNK):
                chunk = uniq[s : s + CHUNK]
                q = (f"SELECT name, score FROM scores WHERE identity=? AND image=? AND prompt=? "
                     f"AND name IN ({','.join('?' * len(chunk))})")
                out.update(self._con.execute(q, (identity, image, prompt, *chunk)))
        return out

    def put_scores(self, identity: str, image: str, prompt: str, scores: Iterable[tuple[str, float]]) -> None:
        rows = [(identity, image, prompt, n, float(v)) for n, v in scores]
        with self._lock, self._con:
            self._con.executemany("INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?)", rows)


def cached_answers(cache, identity: str, dataset, indices: Sequence[int], prompts: Sequence[str],
                   keys: Optional[Sequence[str]] = None):
    """(answer store or None, content keys, the answers already cached or None, the positions still to ask):
    where every answering kind starts, so no image is asked (or paid for) twice."""
    if len(prompts) != len(indices):
        raise ValueError("one prompt per image")
    store = AnswerCache.of(cache)
    keys = list(keys) if keys is not None else [dataset.content_hash(i) for i in indices]
    known = store.get_answers(identity, list(zip(keys, prompts))) if store else {}
    out: list[Optional[str]] = [known.get((k, p)) for k, p in zip(keys, prompts)]
    return store, keys, out, [j for j, a in enumerate(out) if a is None]
