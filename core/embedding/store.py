"""Embedding stores: image embeddings written once (``semscale embed``), read by sweeps.

Layout of a store folder ``STORE/`` (format ``semscale-embeddings``, version 1)::

    STORE/manifest.json               what the store holds; the list of finished shards
    STORE/problems.csv                path,reason: problems found while listing the dataset
    STORE/skipped.csv                 path,reason: problems.csv + every finished shard's skipped rows
    STORE/shards/part-00000.parquet   id (string), label (string),
                                      embedding (fixed_size_list<float32>[embed_dim])
    STORE/shards/part-00000.skipped.csv  path,reason: images of this shard that could not be used
    STORE/cache/embeddings-<key>.npy  optional consolidated float32 matrix (Store.memmap())

``manifest.json`` holds ``format``/``version``; ``backbone`` (``name``, ``spec`` — the
:class:`~core.models.openclip.BackboneSpec` —, ``identity`` and ``identity_info`` as used by the
embedding cache, ``embed_dim``, ``logit_scale``); ``dataset`` (``source``, ``kind``,
``root``, ``n_images``, ``classes``, ``fingerprint`` = SHA-256 of the listing's
(id, label) pairs, ``description``); ``shard_size`` and ``n_shards``; ``shards``: one entry
per *finished* shard (``index``, ``file``, ``skipped_file``, ``start``/``stop`` in the
listing, ``n_rows``, ``n_skipped``, ``ids_sha256``, ``sha256`` of the parquet file,
``engine``, ``seconds``, ``finished``); ``complete``; and ``versions``.

Shard *i* covers records ``[i * shard_size, (i + 1) * shard_size)`` of the dataset's
deterministic listing; its rows keep the listing order, without the skipped images.
A shard's files are written under temporary names and renamed into place, and only then
is the shard added to ``manifest.json`` (itself replaced atomically): a shard that is
not in the manifest does not exist, whatever files lie around, so a killed job never
leaves a half-written shard that counts. Re-running the same ``embed`` command resumes:
finished shards are skipped. One writer at a time (a lock file guards the folder).

Reading: :func:`open_store` returns a :class:`Store` with ``ids``, ``labels``, a lazily
read (shard by shard) ``embeddings`` matrix, ``memmap()`` for a memory-mapped copy, and
``spec`` — the backbone, whose text side a sweep builds only when prompts are not cached.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from core.util.config import BackboneSpec, file_sha256_uncached
from core.data import Dataset, ImageRecord
from core.data.base import class_counts
from core.util.errors import InputError
from core.embedding.shards import fingerprint
from core.util.files import atomic_path, atomic_write_bytes
from core.util.tables import read_user_json

FORMAT = "semscale-embeddings"
VERSION = 1
MANIFEST = "manifest.json"
DEFAULT_SHARD_SIZE = 1000
SKIPPED_HEADER = "path,reason\n"


def part_name(index: int) -> str:
    return f"part-{index:05d}"


# ---------------------------------------------------------------- small file helpers


def _skipped_csv(rows: Sequence[tuple[str, str]]) -> bytes:
    import pandas as pd

    return pd.DataFrame(list(rows), columns=["path", "reason"]).to_csv(index=False).encode("utf-8")


def _read_skipped(path: Path) -> list[tuple[str, str]]:
    import pandas as pd

    if not path.is_file() or path.stat().st_size == 0:
        return []
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return list(zip(df["path"], df["reason"])) if len(df) else []


def _ids_sha256(ids: Sequence[str]) -> str:
    h = hashlib.sha256()
    for i in ids:
        h.update(i.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def embeddings_table(ids: Sequence[str], labels: Sequence[str], matrix: np.ndarray):
    """The Arrow table of one shard: id, label, embedding (fixed-size list of float32)."""
    import pyarrow as pa

    m = np.ascontiguousarray(matrix, dtype=np.float32)
    dim = m.shape[1] if m.ndim == 2 else 0
    emb = pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1), type=pa.float32()), dim)
    return pa.table({"id": pa.array(list(ids), pa.string()), "label": pa.array(list(labels), pa.string()),
                     "embedding": emb})


def table_matrix(table, dim: int) -> np.ndarray:
    """The ``embedding`` column of a shard table as an [n, dim] float32 array."""
    col = table.column("embedding").combine_chunks()
    if len(col) == 0:
        return np.zeros((0, dim), np.float32)
    return np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(col), dim)


# ---------------------------------------------------------------- writing


class _Lock:
    """An exclusive advisory lock on ``STORE/.lock`` (POSIX); a no-op where unsupported."""

    def __init__(self, root: Path) -> None:
        self.f = open(root / ".lock", "a+")
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return
        try:
            fcntl.flock(self.f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.f.close()
            raise InputError("another 'semscale embed' is writing this store; wait for it or use another --out",
                             file=root) from None

    def release(self) -> None:
        try:
            import fcntl

            fcntl.flock(self.f.fileno(), fcntl.LOCK_UN)
        except (ImportError, OSError, ValueError):
            pass
        self.f.close()


def dataset_info(dataset: Dataset, source) -> dict:
    return {
        "source": [str(s) for s in source] if isinstance(source, (list, tuple)) else str(source),
        "kind": dataset.kind,
        "root": str(dataset.root),
        "n_images": len(dataset.records),
        "classes": list(dataset.classes),
        "fingerprint": fingerprint(dataset.records),
        "description": dataset.describe(),
        "n_problems": len(dataset.problems),
    }


class StoreWriter:
    """Creates or resumes a store; commits finished shards one at a time (single writer)."""

    def __init__(self, root: Path, manifest: dict, lock: _Lock) -> None:
        self.root = root
        self.manifest = manifest
        self._lock = lock

    # -- opening
    @classmethod
    def open(cls, root: str | Path, *, backbone: dict, dataset: dict, shard_size: Optional[int],
             problems: Sequence[tuple[str, str]] = ()) -> "StoreWriter":
        """``backbone``: name/spec/identity/identity_info/embed_dim(/logit_scale); ``dataset``: :func:`dataset_info`."""
        from core.util.versions import now, versions

        root = Path(root).expanduser()
        if root.exists() and not root.is_dir():
            raise InputError("--out must be a folder (the embedding store)", file=root)
        if root.is_dir() and any(root.iterdir()) and not (root / MANIFEST).is_file():
            raise InputError("folder exists, is not empty and is not an embedding store; choose another --out",
                             file=root)
        root.mkdir(parents=True, exist_ok=True)
        (root / "shards").mkdir(exist_ok=True)
        lock = _Lock(root)
        try:
            if (root / MANIFEST).is_file():
                manifest = cls._resume(root, backbone, dataset, shard_size)
            else:
                size = shard_size or DEFAULT_SHARD_SIZE
                if size < 1:
                    raise InputError("shard size must be at least 1", field="shard-size")
                manifest = {
                    "format": FORMAT, "version": VERSION, "created": now(), "updated": now(),
                    "backbone": backbone, "dataset": dataset, "shard_size": size,
                    "n_shards": -(-dataset["n_images"] // size), "shards": [], "complete": False,
                    "versions": versions(),
                }
            manifest["runs"] = manifest.get("runs", 0) + 1
            w = cls(root, manifest, lock)
            atomic_write_bytes(root / "problems.csv", _skipped_csv(problems))
            for stale in (root / "shards").glob(".*.tmp"):  # left by a killed writer
                stale.unlink(missing_ok=True)
            w._write_manifest()
            return w
        except BaseException:
            lock.release()
            raise

    @staticmethod
    def _resume(root: Path, backbone: dict, dataset: dict, shard_size: Optional[int]) -> dict:
        manifest = _read_manifest(root)
        old_b, old_d = manifest["backbone"], manifest["dataset"]
        if old_b.get("identity") != backbone.get("identity"):
            raise InputError(
                f"this store was embedded with another backbone ({old_b.get('name')}, identity "
                f"{str(old_b.get('identity'))[:12]}…); use a new --out for {backbone.get('name')}", file=root)
        if old_d.get("fingerprint") != dataset.get("fingerprint"):
            raise InputError(
                f"this store was written for another image listing ({old_d.get('n_images')} images from "
                f"{old_d.get('source')}); the dataset changed since, so use a new --out", file=root)
        if shard_size and shard_size != manifest["shard_size"]:
            raise InputError(f"this store uses --shard-size {manifest['shard_size']}; resume with that size "
                             "(or leave the option out)", file=root, field="shard-size")
        kept = []
        for s in manifest["shards"]:
            f = root / s["file"]
            if f.is_file() and (root / s["skipped_file"]).is_file():
                kept.append(s)  # a shard whose files vanished is simply redone
        manifest["shards"] = kept
        for k in ("embed_dim", "logit_scale"):
            if backbone.get(k) is not None:
                old_b[k] = backbone[k]
        return manifest

    # -- state
    @property
    def shard_size(self) -> int:
        return int(self.manifest["shard_size"])

    @property
    def n_shards(self) -> int:
        return int(self.manifest["n_shards"])

    def finished(self) -> set[int]:
        return {int(s["index"]) for s in self.manifest["shards"]}

    def pending(self) -> list[int]:
        done = self.finished()
        return [i for i in range(self.n_shards) if i not in done]

    def set_backbone(self, **fields: Any) -> None:
        self.manifest["backbone"].update(fields)
        self._write_manifest()

    def _write_manifest(self) -> None:
        from core.util.versions import now

        self.manifest["updated"] = now()
        self.manifest["shards"].sort(key=lambda s: s["index"])
        self.manifest["complete"] = len(self.manifest["shards"]) == self.n_shards
        atomic_write_bytes(self.root / MANIFEST, (json.dumps(self.manifest, indent=1, default=str) + "\n").encode("utf-8"))

    # -- committing one shard
    def commit(self, index: int, ids: Sequence[str], labels: Sequence[str], matrix: np.ndarray,
               skipped: Sequence[tuple[str, str]], *, record_ids: Sequence[str], engine: str,
               seconds: float = 0.0) -> dict:
        """Write shard ``index`` (files first, then the manifest entry). ``record_ids``: the
        listing's ids of the whole shard, checked against what was written so no image is
        lost or duplicated."""
        import pyarrow.parquet as pq

        from core.util.versions import now

        start = index * self.shard_size
        stop = min(start + self.shard_size, int(self.manifest["dataset"]["n_images"]))
        if len(record_ids) != stop - start:
            raise RuntimeError(f"shard {index}: expected {stop - start} records, got {len(record_ids)}")
        accounted = list(ids) + [p for p, _ in skipped]
        if sorted(accounted) != sorted(record_ids) or len(set(ids)) != len(ids):
            raise RuntimeError(f"shard {index}: rows written do not match the shard's images (lost or duplicated)")
        dim = int(self.manifest["backbone"].get("embed_dim") or (matrix.shape[1] if matrix.ndim == 2 else 0))
        if matrix.shape != (len(ids), dim):
            raise RuntimeError(f"shard {index}: embedding matrix {matrix.shape} does not match {len(ids)} x {dim}")
        name = part_name(index)
        part = self.root / "shards" / f"{name}.parquet"
        skipped_file = self.root / "shards" / f"{name}.skipped.csv"
        atomic_write_bytes(skipped_file, _skipped_csv(skipped))
        with atomic_path(part) as tmp:
            pq.write_table(embeddings_table(ids, labels, matrix), tmp, compression="zstd")
        entry = {
            "index": int(index), "file": f"shards/{name}.parquet", "skipped_file": f"shards/{name}.skipped.csv",
            "start": start, "stop": stop, "n_rows": len(ids), "n_skipped": len(skipped),
            "ids_sha256": _ids_sha256(record_ids), "sha256": file_sha256_uncached(part), "engine": engine,
            "seconds": round(float(seconds), 3), "finished": now(),
        }
        self.manifest["shards"] = [s for s in self.manifest["shards"] if s["index"] != index] + [entry]
        self._write_manifest()
        return entry

    # -- closing
    def write_skipped(self) -> None:
        rows = _read_skipped(self.root / "problems.csv")
        for s in sorted(self.manifest["shards"], key=lambda s: s["index"]):
            rows += _read_skipped(self.root / s["skipped_file"])
        atomic_write_bytes(self.root / "skipped.csv", _skipped_csv(rows))

    def close(self, **fields: Any) -> None:
        try:
            if fields:
                self.manifest.update(fields)
            self._write_manifest()
            self.write_skipped()
        finally:
            self._lock.release()


# ---------------------------------------------------------------- reading


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not path.is_file():
        raise InputError("not an embedding store (no manifest.json); write one with 'semscale embed'", file=root)
    m = read_user_json(path)
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise InputError(f"not an embedding store (format is not '{FORMAT}')", file=path)
    if int(m.get("version", 0)) > VERSION:
        raise InputError(f"store format version {m.get('version')} is newer than this semscale reads ({VERSION}); "
                         "upgrade semscale", file=path)
    for k in ("backbone", "dataset", "shard_size", "n_shards", "shards"):
        if k not in m:
            raise InputError(f"manifest has no '{k}'", file=path, field=k)
    return m


class StoreMatrix:
    """The store's embeddings, read shard by shard: ``len``, ``shape``, slicing, iteration,
    and ``np.asarray(m)`` to materialise (only then is the whole matrix in memory)."""

    def __init__(self, store: "Store") -> None:
        self._store = store
        self._counts = [int(s["n_rows"]) for s in store.shards]
        self._offsets = np.concatenate([[0], np.cumsum(self._counts)]).astype(np.int64)
        self.dtype = np.dtype(np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self._offsets[-1]), self._store.embed_dim

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def iter_shards(self) -> Iterator[np.ndarray]:
        for s in self._store.shards:
            yield self._store.read_shard(s, columns=["embedding"])[2]

    __iter__ = iter_shards

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.shape, dtype=np.float32)
        for s, a, b in zip(self._store.shards, self._offsets[:-1], self._offsets[1:]):
            out[a:b] = self._store.read_shard(s, columns=["embedding"])[2]
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            k = int(key) + (len(self) if key < 0 else 0)
            return self[k : k + 1][0]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            rows = np.arange(start, stop, step)
        else:
            rows = np.asarray(key)
            if rows.dtype == bool:
                rows = np.flatnonzero(rows)
        out = np.empty((len(rows), self.shape[1]), dtype=np.float32)
        which = np.searchsorted(self._offsets, rows, side="right") - 1
        for j in np.unique(which):
            sel = which == j
            X = self._store.read_shard(self._store.shards[j], columns=["embedding"])[2]
            out[sel] = X[rows[sel] - self._offsets[j]]
        return out


@dataclass
class Store:
    """An embedding store opened for reading (see the module docstring for the layout)."""

    root: Path
    manifest: dict
    shards: list[dict] = field(default_factory=list)  # the finished shards, in order
    _ids: Optional[list[str]] = field(default=None, repr=False)
    _labels: Optional[list[str]] = field(default=None, repr=False)

    # -- what the store describes
    @property
    def spec(self) -> BackboneSpec:
        return BackboneSpec.from_dict(self.manifest["backbone"]["spec"])

    @property
    def name(self) -> str:
        return self.manifest["backbone"].get("name") or self.spec.display

    @property
    def identity(self) -> str:
        return self.manifest["backbone"]["identity"]

    @property
    def identity_info(self) -> dict:
        return self.manifest["backbone"].get("identity_info", {})

    @property
    def embed_dim(self) -> int:
        return int(self.manifest["backbone"]["embed_dim"])

    @property
    def logit_scale(self) -> Optional[float]:
        v = self.manifest["backbone"].get("logit_scale")
        return None if v is None else float(v)

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["dataset"].get("classes", []))

    @property
    def complete(self) -> bool:
        return len(self.shards) == int(self.manifest["n_shards"])

    def describe(self) -> str:
        d = self.manifest["dataset"]
        state = "complete" if self.complete else f"{len(self.shards)} of {self.manifest['n_shards']} shards"
        return (f"embedding store at {self.root} ({state}): {len(self.embeddings)} embeddings of {d.get('kind')} "
                f"dataset {d.get('source')} by {self.name}")

    # -- rows
    def read_shard(self, entry: dict, columns=("id", "label", "embedding")):
        """(ids, labels, matrix) of one shard; absent columns come back as None."""
        import pyarrow.parquet as pq

        path = self.root / entry["file"]
        try:
            t = pq.read_table(path, columns=list(columns), memory_map=True)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read store shard ({e}); re-run 'semscale embed' to redo it", file=path) from None
        if t.num_rows != int(entry["n_rows"]):
            raise InputError(f"store shard has {t.num_rows} rows, the manifest says {entry['n_rows']}", file=path)
        ids = t.column("id").to_pylist() if "id" in columns else None
        labels = t.column("label").to_pylist() if "label" in columns else None
        X = table_matrix(t, self.embed_dim) if "embedding" in columns else None
        return ids, labels, X

    def _load_keys(self) -> None:
        ids, labels = [], []
        for s in self.shards:
            i, l, _ = self.read_shard(s, columns=["id", "label"])
            ids += i
            labels += l
        self._ids, self._labels = ids, labels

    @property
    def ids(self) -> list[str]:
        if self._ids is None:
            self._load_keys()
        return self._ids

    @property
    def labels(self) -> list[str]:
        if self._labels is None:
            self._load_keys()
        return self._labels

    @property
    def embeddings(self) -> StoreMatrix:
        return StoreMatrix(self)

    def iter_batches(self) -> Iterator[tuple[list[str], list[str], np.ndarray]]:
        """(ids, labels, embeddings) per shard: a streamed pass over the store."""
        for s in self.shards:
            yield self.read_shard(s)

    def memmap(self) -> np.ndarray:
        """The whole matrix as a read-only memory map (``STORE/cache/embeddings-<key>.npy``,
        written once per set of finished shards)."""
        key = hashlib.sha256("".join(s["sha256"] for s in self.shards).encode()).hexdigest()[:16]
        path = self.root / "cache" / f"embeddings-{key}.npy"
        if not path.is_file():
            path.parent.mkdir(exist_ok=True)
            with atomic_path(path) as tmp:
                mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=self.embeddings.shape)
                a = 0
                for X in self.embeddings.iter_shards():
                    mm[a : a + len(X)] = X
                    a += len(X)
                mm.flush()
                del mm
        return np.load(path, mmap_mode="r")

    def skipped(self) -> list[tuple[str, str]]:
        rows = _read_skipped(self.root / "problems.csv")
        for s in self.shards:
            rows += _read_skipped(self.root / s["skipped_file"])
        return rows

    def verify(self) -> list[str]:
        """Shards whose file no longer matches its recorded SHA-256 (empty when all are intact)."""
        return [s["file"] for s in self.shards if file_sha256_uncached(self.root / s["file"]) != s["sha256"]]


def open_store(path: str | Path, *, verify: bool = False) -> Store:
    """Open an embedding store written by ``semscale embed`` (or :func:`core.embedding.distributed.run_embed`)."""
    root = Path(path).expanduser()
    if root.name == MANIFEST:
        root = root.parent
    m = _read_manifest(root)
    shards = sorted(m["shards"], key=lambda s: s["index"])
    for s in shards:
        if not (root / s["file"]).is_file():
            raise InputError(f"store shard {s['file']} is missing; re-run 'semscale embed' with the same --out "
                             "to redo it", file=root)
    store = Store(root, m, shards)
    if verify:
        bad = store.verify()
        if bad:
            raise InputError(f"store shard {bad[0]} does not match its recorded checksum; delete it and re-run "
                             "'semscale embed' to redo it", file=root)
    return store


# ---------------------------------------------------------------- sweeps from stores


@dataclass
class StoreListing:
    """The images behind one or more stores: ids, labels and classes, and no image to open.

    ``records`` is the union of the stores' rows (the first store's order first); a sweep
    reads it like a dataset's listing (:class:`core.embedding.image_source.Listing`) and takes each
    backbone's embeddings from its store with :meth:`image_embeddings`
    (:class:`core.embedding.image_source.StoredImages`).
    """

    root: Path
    records: list[ImageRecord]
    classes: list[str]
    problems: list[tuple[str, str]] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)
    _row_of: dict = field(default_factory=dict, repr=False)
    kind: str = "embeddings"
    warnings: list[str] = field(default_factory=list)  # what a dataset's listing warns about (none for stores)

    def __len__(self) -> int:
        return len(self.records)

    def class_counts(self) -> dict[str, int]:
        return class_counts(self.records, self.classes)

    def describe(self) -> str:
        return "; ".join(s.describe() for s in self.stores)

    def image_embeddings(self, position: int, backbone, cache=None):
        """:class:`core.embedding.embed.ImageEmbeddings` of store ``position`` for ``backbone`` (checked to
        have the store's weights); seeds the cache with the store's logit scale so a sweep whose
        prompts are cached never builds the model."""
        from core.embedding.embed import ImageEmbeddings

        t0 = time.perf_counter()
        store = self.stores[position]
        info = getattr(backbone, "identity_info", {}) or {}
        theirs = store.identity_info
        for key in ("weights", "config"):
            if theirs and info and key in theirs and key in info and theirs[key] != info[key]:
                raise InputError(
                    f"the store was embedded with other {key} than backbone '{backbone.name}' "
                    f"({str(theirs[key])[:60]} vs {str(info[key])[:60]}); give the store's --model/--checkpoint",
                    file=store.root, field="embeddings")
        if int(backbone.embed_dim) != store.embed_dim:
            raise InputError(f"the store holds {store.embed_dim}-d embeddings but '{backbone.name}' is "
                             f"{backbone.embed_dim}-d", file=store.root, field="embeddings")
        idx = np.array([self._row_of[i] for i in store.ids], dtype=np.int64)
        X = np.asarray(store.embeddings)
        if len(idx) > 1 and not (idx[1:] > idx[:-1]).all():  # rows in listing order (usually already)
            order = np.argsort(idx, kind="stable")
            idx, X = idx[order], X[order]
        if cache is not None and store.logit_scale is not None and cache.get_meta(backbone.identity, "logit_scale") is None:
            cache.put_meta(backbone.identity, "logit_scale", repr(store.logit_scale))
        return ImageEmbeddings(idx, X, store.skipped(), 0, len(idx), time.perf_counter() - t0)


def stores_dataset(paths: Sequence[str | Path]) -> StoreListing:
    """One :class:`StoreListing` over the given stores (one per backbone)."""
    stores = [open_store(p) for p in paths]
    for s in stores:
        if not s.complete:
            raise InputError(
                f"the store is incomplete ({len(s.shards)} of {s.manifest['n_shards']} shards); finish it by "
                "re-running the same 'semscale embed' command", file=s.root, field="embeddings")
    records: list[ImageRecord] = []
    row_of: dict[str, int] = {}
    label_of: dict[str, str] = {}
    for s in stores:
        for i, lab in zip(s.ids, s.labels):
            if i in row_of:
                if label_of[i] != lab:
                    raise InputError(f"image '{i}' has label '{lab}' here but '{label_of[i]}' in {stores[0].root}",
                                     file=s.root, field="embeddings")
                continue
            row_of[i] = len(records)
            label_of[i] = lab
            records.append(ImageRecord(id=i, label=lab))
    if len(stores) > 1:
        for s in stores[1:]:
            if not set(s.ids) & set(stores[0].ids):
                raise InputError(f"this store shares no image id with {stores[0].root}; embed every backbone from the "
                                 "same dataset", file=s.root, field="embeddings")
    classes = list(dict.fromkeys(c for s in stores for c in s.classes))
    classes += sorted(set(label_of.values()) - set(classes))
    problems = list(dict.fromkeys(p for s in stores for p in _read_skipped(s.root / "problems.csv")))
    return StoreListing(root=stores[0].root, records=records, classes=classes, problems=problems, stores=stores,
                        _row_of=row_of)




def store_specs(paths: Sequence[str | Path], device: str = "auto") -> list[BackboneSpec]:
    """The backbone of each store (for the text side of a sweep), on ``device``."""
    return [replace(open_store(p).spec, device=device) for p in paths]
