"""On-disk embedding cache (SQLite, one database per backbone identity).

Image embeddings are keyed by the image's content hash, text embeddings by
(template, name), both under the backbone's identity (model, weights hash,
preprocessing, precision). Every row stores its shape, dtype and a CRC so a corrupted
entry is detected, discarded and recomputed instead of silently used. SQLite's WAL
mode lets concurrent runs share one cache safely.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import zlib
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS images (key TEXT PRIMARY KEY, dim INTEGER, dtype TEXT, crc INTEGER, data BLOB);
CREATE TABLE IF NOT EXISTS texts (template TEXT, name TEXT, dim INTEGER, dtype TEXT, crc INTEGER, data BLOB,
                                  PRIMARY KEY (template, name));
"""
FILES_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (path BLOB PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT);
"""


def default_cache_dir() -> Path:
    """Per-user cache folder (platformdirs), overridable with $SEMSCALE_CACHE_DIR."""
    env = os.environ.get("SEMSCALE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("semscale", appauthor=False)) / "embeddings"


TEXT_CHUNK = 900  # names per primary-key lookup (SQLite allows 999 parameters in older builds)
TEXT_SCAN_BATCH = 50_000  # rows per fetch when scanning the whole text table
BUSY_TIMEOUT = 60.0  # seconds SQLite waits for another run's lock
# messages of a damaged file; "database is locked", "disk is full", I/O errors mean a healthy file
CORRUPT_MESSAGES = ("file is not a database", "database disk image is malformed", "file is encrypted")


class CacheUnavailable(OSError):
    """The cache cannot be used just now (locked for too long, disk full, I/O error); its file is kept."""


def is_corrupt(err: sqlite3.Error) -> bool:
    """Whether an error means the database file itself is damaged (and may be set aside)."""
    return any(m in str(err).lower() for m in CORRUPT_MESSAGES)


def _connect(path: Path, schema: str) -> sqlite3.Connection:
    def open_db() -> sqlite3.Connection:
        con = sqlite3.connect(path, timeout=BUSY_TIMEOUT)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.executescript(schema)
        except BaseException:
            con.close()
            raise
        return con

    for attempt in range(3):
        try:
            return open_db()
        except sqlite3.DatabaseError as e:
            if is_corrupt(e):
                # Not a database any more (truncated, overwritten): keep it aside and start fresh.
                bad = path.with_suffix(path.suffix + ".corrupt")
                os.replace(path, bad)
                for extra in ("-wal", "-shm"):
                    Path(str(path) + extra).unlink(missing_ok=True)
                return open_db()
            if "locked" in str(e).lower() or "busy" in str(e).lower():
                if attempt < 2:
                    time.sleep(0.2 * (attempt + 1))
                    continue
            raise CacheUnavailable(f"cannot use the embedding cache {path} ({e}); the file is kept as it is") from None
    raise AssertionError("unreachable")


def _pack(vec: np.ndarray) -> tuple[int, str, int, bytes]:
    v = np.ascontiguousarray(vec, dtype=np.float32)
    data = v.tobytes()
    return int(v.shape[-1]), "float32", zlib.crc32(data), data


def _unpack(dim, dtype, crc, data) -> Optional[np.ndarray]:
    if dtype != "float32" or data is None or len(data) != dim * 4 or zlib.crc32(data) != crc:
        return None
    v = np.frombuffer(data, dtype=np.float32)
    if not np.all(np.isfinite(v)):
        return None
    return v


def cache_has(root: str | Path | None, identity: str) -> bool:
    """Whether the cache folder ``root`` (None: the default one) holds anything for ``identity``,
    without opening or creating anything."""
    return ((Path(root) if root is not None else default_cache_dir()) / f"{identity[:24]}.sqlite").is_file()


class EmbeddingCache:
    """Cache for one directory; open one connection per thread that uses it."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(f"cannot create the cache folder {self.root}: {e.strerror or e}") from None
        self._dbs: dict[str, sqlite3.Connection] = {}
        self._files: Optional[sqlite3.Connection] = None
        self.discarded = 0  # corrupted entries found and dropped

    # -- connections
    def _db(self, identity: str, info: Optional[dict] = None) -> sqlite3.Connection:
        con = self._dbs.get(identity)
        if con is None:
            con = _connect(self.root / f"{identity[:24]}.sqlite", SCHEMA)
            if info is not None:
                with con:
                    con.execute("INSERT OR REPLACE INTO meta VALUES ('identity', ?)", (json.dumps(info, sort_keys=True),))
            self._dbs[identity] = con
        return con

    def knows(self, identity: str) -> bool:
        """Whether anything was ever cached for this identity (its database exists)."""
        return identity in self._dbs or cache_has(self.root, identity)

    def close(self) -> None:
        for con in self._dbs.values():
            con.close()
        self._dbs.clear()
        if self._files is not None:
            self._files.close()
            self._files = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- small per-backbone facts (e.g. the logit scale), so a warm run needs no model
    def get_meta(self, identity: str, key: str) -> Optional[str]:
        row = self._db(identity).execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put_meta(self, identity: str, key: str, value: str) -> None:
        con = self._db(identity)
        with con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- file hashes (so warm runs need not re-read every image)
    def known_hash(self, path: Path) -> Optional[str]:
        if self._files is None:
            self._files = _connect(self.root / "files.sqlite", FILES_SCHEMA)
        try:
            st = path.stat()
        except OSError:
            return None
        row = self._files.execute("SELECT size, mtime_ns, sha256 FROM files WHERE path=?", (os.fsencode(path),)).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return row[2]
        return None

    def remember_hashes(self, items: Iterable[tuple[Path, str]]) -> None:
        if self._files is None:
            self._files = _connect(self.root / "files.sqlite", FILES_SCHEMA)
        rows = []
        for p, h in items:
            try:
                st = p.stat()
            except OSError:
                continue
            rows.append((os.fsencode(p), st.st_size, st.st_mtime_ns, h))  # bytes: any file name works
        with self._files:
            self._files.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?)", rows)

    # -- images
    def get_images(self, identity: str, keys: Sequence[str], dim: Optional[int] = None) -> dict[str, np.ndarray]:
        con = self._db(identity)
        out: dict[str, np.ndarray] = {}
        bad: list[str] = []
        uniq = list(dict.fromkeys(keys))
        for start in range(0, len(uniq), 500):
            chunk = uniq[start : start + 500]
            q = f"SELECT key, dim, dtype, crc, data FROM images WHERE key IN ({','.join('?' * len(chunk))})"
            for key, d, dt, crc, data in con.execute(q, chunk):
                v = _unpack(d, dt, crc, data)
                if v is None or (dim is not None and v.shape[0] != dim):
                    bad.append(key)
                else:
                    out[key] = v
        if bad:
            self.discarded += len(bad)
            with con:
                con.executemany("DELETE FROM images WHERE key=?", [(k,) for k in bad])
        return out

    def put_images(self, identity: str, items: Iterable[tuple[str, np.ndarray]], info: Optional[dict] = None) -> None:
        con = self._db(identity, info)
        rows = [(k, *_pack(v)) for k, v in items]
        with con:
            con.executemany("INSERT OR REPLACE INTO images VALUES (?,?,?,?,?)", rows)

    # -- texts
    def get_texts(self, identity: str, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        con = self._db(identity)
        out: dict[tuple[str, str], np.ndarray] = {}
        bad = []
        wanted = set(pairs)
        templates = sorted({t for t, _ in pairs})
        for t in templates:
            for tmpl, name, d, dt, crc, data in con.execute(
                "SELECT template, name, dim, dtype, crc, data FROM texts WHERE template=?", (t,)
            ):
                if (tmpl, name) not in wanted:
                    continue
                v = _unpack(d, dt, crc, data)
                if v is None:
                    bad.append((tmpl, name))
                else:
                    out[(tmpl, name)] = v
        if bad:
            self.discarded += len(bad)
            with con:
                con.executemany("DELETE FROM texts WHERE template=? AND name=?", bad)
        return out

    def get_text_matrix(self, identity: str, pairs: Sequence[tuple[str, str]], dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(float32 matrix with one row per (template, name) pair, mask of the rows found).

        The batched form of :meth:`get_texts` for large label sets (an ImageNet-21k-shaped run
        looks up millions of prompts): one sequential pass over the table when most of its rows
        are wanted (a re-run), else primary-key lookups in chunks; blobs are joined into one
        array, CRCs checked per row in C and finiteness for all rows at once. Damaged rows count
        as missing and are deleted.
        """
        out = np.zeros((len(pairs), dim), dtype=np.float32)
        found = np.zeros(len(pairs), dtype=bool)
        if not pairs:
            return out, found
        con = self._db(identity)
        by_template: dict[str, dict[str, int]] = {}
        for i, (t, n) in enumerate(pairs):
            by_template.setdefault(t, {})[n] = i  # a repeated pair: its last row is filled, the rest below
        nbytes = 4 * dim
        bad: list[tuple[str, str]] = []

        def take(batch) -> None:
            got = []
            for t, name, dt, crc, data in batch:
                i = by_template.get(t, {}).get(name)
                if i is not None:
                    got.append((i, dt, crc, data))
            intact = [g for g in got if g[1] == "float32" and isinstance(g[3], bytes) and zlib.crc32(g[3]) == g[2]
                      and len(g[3]) % 4 == 0]
            if len(intact) < len(got):  # damaged: dropped (and recomputed)
                keep = {g[0] for g in intact}
                bad.extend(pairs[g[0]] for g in got if g[0] not in keep)
            ok = [g for g in intact if len(g[3]) == nbytes]  # another size: not this model's, left for put_texts
            if not ok:
                return
            block = np.frombuffer(b"".join(g[3] for g in ok), dtype=np.float32).reshape(len(ok), dim)
            finite = np.isfinite(block).all(axis=1)
            idx = np.fromiter((g[0] for g in ok), dtype=np.int64, count=len(ok))
            out[idx[finite]] = block[finite]
            found[idx[finite]] = True
            if not finite.all():
                bad.extend(pairs[i] for i in idx[~finite])

        n_wanted = sum(len(v) for v in by_template.values())
        (stored,) = con.execute("SELECT COUNT(*) FROM texts").fetchone()
        if n_wanted * 2 >= stored:  # most rows are wanted: one sequential pass over the table
            cur = con.execute("SELECT template, name, dtype, crc, data FROM texts")
            while batch := cur.fetchmany(TEXT_SCAN_BATCH):
                take(batch)
        else:  # primary-key lookups, a chunk of names at a time
            for t, rows_of in by_template.items():
                names = list(rows_of)
                for s in range(0, len(names), TEXT_CHUNK):
                    chunk = names[s : s + TEXT_CHUNK]
                    take(con.execute(f"SELECT template, name, dtype, crc, data FROM texts WHERE template=? AND "
                                     f"name IN ({','.join('?' * len(chunk))})", (t, *chunk)).fetchall())
        if sum(len(v) for v in by_template.values()) < len(pairs):  # a pair asked for twice: copy its row
            for i, (t, n) in enumerate(pairs):
                j = by_template[t][n]
                if j != i and found[j]:
                    out[i], found[i] = out[j], True
        if bad:
            self.discarded += len(bad)
            with con:
                con.executemany("DELETE FROM texts WHERE template=? AND name=?", bad)
        return out, found

    def put_texts(self, identity: str, items: Iterable[tuple[tuple[str, str], np.ndarray]], info: Optional[dict] = None) -> None:
        con = self._db(identity, info)
        rows = [(t, n, *_pack(v)) for (t, n), v in items]
        with con:
            con.executemany("INSERT OR REPLACE INTO texts VALUES (?,?,?,?,?,?)", rows)
