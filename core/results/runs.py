"""The run directory: the contract between engine, CLI, GUI and users.

``run.json`` (config, versions, status), ``levels.csv``, ``predictions.csv``,
``per_class.csv``, ``skipped.csv`` and ``flips.csv`` (:mod:`core.stats.flips`). CSV rows are appended and the file closed as each
level finishes, so a cancelled or killed run keeps everything already computed.
``run.json`` is replaced atomically; a run left as ``running`` by a process that no
longer exists reads back as ``interrupted``. A folder that already holds a run is never
written into unless asked to, and then every file of the old run goes first. A run claims
its folder by creating ``.semscale-run.lock`` exclusively (pid, start time, host) and
holds it until it finishes, so two runs started at the same moment never share a folder.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import pandas as pd

from core.util.errors import InputError
from core.util.events import Status
from core.util.files import atomic_write_csv, atomic_write_json
from core.util.versions import now, versions  # noqa: F401  (re-exported)

RUN_FILES = ("levels.csv", "predictions.csv", "per_class.csv", "skipped.csv")
# everything a run of this or an earlier version writes; newer runs also list their files in run.json
RUN_OUTPUTS = ("run.json", "run.json.tmp", *RUN_FILES, "levels_summary.csv", "backbones.csv", "pairs.csv",
               "ensembles.csv", "frequency.csv", "frequency_summary.csv", "logits", "threshold.csv", "controls.csv",
               "levels.csv.tmp", "flips.csv",
               "similarity.csv", "labels_used.csv",
               "robustness.csv", "robustness_predictions.csv",
               "probes.csv",
               "names.csv",
               "report.html")  # `semscale report`'s default file: a replaced run takes its old report with it

LEVEL_COLUMNS = [
    "backbone", "ordering", "level", "n_categories", "n_images", "top1", "top5", "ci_low", "ci_high",
    "n_correct", "seconds", "n_tied", "names", "p_vs_level1", "p_vs_previous", "p_vs_level1_holm", "peak_share",
]
PREDICTION_COLUMNS = ["image", "true_class", "level", "predicted_label", "predicted_class", "correct", "ordering", "backbone", "score",
                      "credit", "n_owners", "predicted_classes", "names"]
PER_CLASS_COLUMNS = ["backbone", "ordering", "level", "class", "n_images", "n_correct", "recall", "top5_recall", "n_names",
                     "names"]
SKIPPED_COLUMNS = ["path", "reason"]


def _run_outputs(d: Path) -> list[Path]:
    """The entries of ``d`` that some run wrote (known names and those its run.json lists)."""
    names = set(RUN_OUTPUTS)
    try:
        listed = json.loads((d / "run.json").read_text(encoding="utf-8")).get("files", [])
        names.update(n for n in listed if isinstance(n, str) and n and Path(n).name == n)
    except (OSError, ValueError, AttributeError):
        pass
    return [d / n for n in sorted(names) if (d / n).exists() or (d / n).is_symlink()]


def holds_run(out: str | Path) -> bool:
    """True when the folder already holds (part of) a run."""
    d = Path(out)
    return d.is_dir() and bool(_run_outputs(d))


def check_out(out: str | Path, overwrite: bool = False) -> None:
    """Refuse a run folder before any work: one that holds a run (unless ``overwrite``), or one that cannot be made."""
    d = Path(out)
    if d.exists() and not d.is_dir():
        raise InputError("the run folder is an existing file; choose a folder", file=d, field="out")
    if holds_run(d) and not overwrite:
        raise InputError("this folder already holds a run; choose a new folder, or pass --overwrite to replace that "
                         "run", file=d, field="out")
    parent = d
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot create the run folder here ({parent} is not a writable folder)", file=d, field="out")


def _remove(paths: Iterable[Path]) -> None:
    import shutil

    for p in paths:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def _pid_started(pid: int) -> Optional[float]:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:
        return None


CLAIM_FILE = ".semscale-run.lock"
_claims_held: set[str] = set()  # claim files this process holds (a leftover of this pid is stale)
_claims_lock = threading.Lock()


def _claim_owner(path: Path) -> Optional[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # being written this instant, or damaged: treated as held (a damaged one by a dead process below)


def _claim_is_stale(path: Path, owner: dict) -> bool:
    """A claim whose process is gone (same host), or a leftover of this process that no run holds."""
    pid, host = owner.get("pid"), owner.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        if not owner:  # unreadable: stale once it is older than any write of it could take
            try:
                import time

                return time.time() - path.stat().st_mtime > 10
            except OSError:
                return False
        return False
    if pid == os.getpid():
        with _claims_lock:
            return str(path) not in _claims_held
    started = owner.get("pid_started")
    return not _pid_alive(pid, started if isinstance(started, (int, float)) else None)


def claim_folder(d: Path) -> Path:
    """Claim run folder ``d`` for this run: an exclusive create of its claim file, so of two
    runs started at the same moment exactly one gets the folder. A claim left by a process
    that no longer runs is taken over; one held by a live run is an :class:`InputError`."""
    path = d / CLAIM_FILE
    info = json.dumps({"pid": os.getpid(), "pid_started": _pid_started(os.getpid()), "host": socket.gethostname(),
                       "thread": threading.get_ident(), "claimed": now()})
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            owner = _claim_owner(path)
            if owner is None:
                continue  # released meanwhile: try again
            if _claim_is_stale(path, owner):
                if _claim_owner(path) == owner:  # not taken over by another run meanwhile
                    path.unlink(missing_ok=True)
                continue
            who = f" (process {owner['pid']} on {owner.get('host', '?')})" if "pid" in owner else ""
            raise InputError(f"another run is writing into this folder{who}; wait for it to finish or choose "
                             "another folder", file=d, field="out") from None
        with _claims_lock:
            _claims_held.add(str(path))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(info)
        except OSError:
            release_folder(path)
            raise
        return path
    raise InputError("cannot claim this folder: another run keeps claiming it", file=d, field="out")


def release_folder(claim: Optional[Path]) -> None:
    if claim is None:
        return
    with _claims_lock:
        held = str(claim) in _claims_held
        _claims_held.discard(str(claim))
    if held:
        claim.unlink(missing_ok=True)


class RunWriter:
    """Creates and appends to a run directory.

    The folder is claimed first (:func:`claim_folder`) and held until :meth:`finish` or
    :meth:`close`; a folder that holds a run is refused unless ``overwrite``; then every file
    of the old run is removed first, so the folder ends up exactly as a fresh run into an
    empty one leaves it. Other files in the folder (a labels file the user keeps there) are
    left alone.
    """

    def __init__(self, out: str | Path, config: dict[str, Any], overwrite: bool = False) -> None:
        self.dir = Path(out)
        self.claim: Optional[Path] = None
        check_out(self.dir, overwrite)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create the run folder ({e.strerror or e})", file=self.dir, field="out") from None
        self.claim = claim_folder(self.dir)
        try:
            check_out(self.dir, overwrite)  # again, now that no other run can start here
            _remove(_run_outputs(self.dir))
            self._start(config)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Give the folder up (after :meth:`finish`, or when the run never started)."""
        release_folder(self.claim)
        self.claim = None

    def _start(self, config: dict[str, Any]) -> None:
        self._before = set(os.listdir(self.dir))
        self.meta: dict[str, Any] = {
            "status": Status.RUNNING,
            "started": now(),
            "finished": None,
            "pid": os.getpid(),
            "pid_started": _pid_started(os.getpid()),
            "host": socket.gethostname(),
            "files": [],
            "versions": versions(),
            "config": config,
            "summary": {},
        }
        self._write_meta()
        self._skipped: set[str] = set()
        # every file exists from the start with its header, so readers never guess
        for name, cols in (("levels.csv", LEVEL_COLUMNS), ("predictions.csv", PREDICTION_COLUMNS),
                           ("per_class.csv", PER_CLASS_COLUMNS), ("skipped.csv", SKIPPED_COLUMNS)):
            if not (self.dir / name).exists():
                pd.DataFrame(columns=cols).to_csv(self.dir / name, index=False)

    def _write_meta(self) -> None:
        # every entry this run added, so a later --overwrite removes exactly this run's files
        self.meta["files"] = sorted(set(os.listdir(self.dir)) - self._before - {"run.json", "run.json.tmp"})
        # the byte length of each CSV at this consistent point: readers cut there, so rows of a
        # level that never finished (a kill, a full disk) are never read back as results
        committed = {n: (self.dir / n).stat().st_size for n in self.meta["files"] if n.endswith(".csv")
                     and (self.dir / n).is_file()}
        meta = {**self.meta, "committed": committed}
        atomic_write_json(self.dir / "run.json", meta)
        self.meta = meta

    def commit(self) -> None:
        """Mark every CSV as it is now as whole (a level, a table): what readers will trust."""
        self._write_meta()

    def rollback(self) -> None:
        """Cut every CSV back to its last committed length (rows of an unfinished level go; on a
        full disk this also frees their space)."""
        for name, size in (self.meta.get("committed") or {}).items():
            path = self.dir / name
            try:
                if path.is_file() and path.stat().st_size > size:
                    os.truncate(path, size)
            except OSError:
                pass

    def update(self, **fields: Any) -> None:
        self.meta.update(fields)
        self._write_meta()

    def append(self, name: str, rows: Iterable[dict] | pd.DataFrame, columns: Optional[list[str]] = None) -> None:
        df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=columns)
        if df.empty:
            return
        path = self.dir / name
        header = not path.exists() or path.stat().st_size == 0
        if columns is not None:
            df = df.reindex(columns=columns)
        # pandas leaves a field with a lone carriage return unquoted, and every reader then splits the
        # row there: text that holds one (a model's raw answer) is quoted, so it reads back exactly
        text = df.select_dtypes(include=["object", "string"])
        cr = any(text[c].astype(str).str.contains("\r", regex=False).any() for c in text.columns)
        with open(path, "a", encoding="utf-8", newline="") as f:
            df.to_csv(f, index=False, header=header, quoting=csv.QUOTE_NONNUMERIC if cr else csv.QUOTE_MINIMAL)
            f.flush()

    def ensure_header(self, name: str, columns: list[str]) -> None:
        """Create ``name`` with just its header if it does not exist yet (a file whose columns
        depend on the run, e.g. flips.csv, still exists once its first level is done)."""
        path = self.dir / name
        if not path.exists() or path.stat().st_size == 0:
            pd.DataFrame(columns=columns).to_csv(path, index=False)
    def rewrite(self, name: str, rows: Iterable[dict], columns: list[str]) -> None:
        """Replace a CSV atomically (columns filled in once a whole curve is known, e.g. Holm)."""
        atomic_write_csv(self.dir / name, pd.DataFrame(list(rows), columns=columns))

    def add_skipped(self, items: Iterable[tuple[str, str]]) -> None:
        new = [(p, r) for p, r in items if p not in self._skipped]
        self._skipped.update(p for p, _ in new)
        self.append("skipped.csv", [{"path": p, "reason": r} for p, r in new], SKIPPED_COLUMNS)
        if new:
            self.commit()

    def finish(self, status: str, summary: Optional[dict] = None, error: str = "") -> None:
        if status != Status.COMPLETED:
            self.rollback()  # a stop or failure inside a level keeps the levels before it, whole
        self.meta["status"] = status
        self.meta["finished"] = now()
        if summary is not None:
            self.meta["summary"] = summary
        if error:
            self.meta["error"] = error
        try:
            self._write_meta()
        finally:
            self.close()


def _pid_alive(pid: int, started: Optional[float] = None) -> bool:
    """Whether the process that wrote a run still runs (never sends it a signal: on Windows
    ``os.kill(pid, 0)`` would be a Ctrl-C). A recorded start time tells a reused pid apart."""
    import psutil

    if not psutil.pid_exists(pid):
        return False
    if started is not None:
        now_started = _pid_started(pid)
        if now_started is not None and abs(now_started - float(started)) > 1.0:
            return False
    return True


def _table(name: str) -> property:
    """``<name>.csv`` of a run as a DataFrame, or None when the run did not write it."""
    return property(lambda run: run.tables.get(name), doc=f"{name}.csv, or None when the run has none")


@dataclass
class Run:
    """A run directory read back (by the GUI, tests, or users' scripts).

    ``levels``, ``predictions``, ``per_class`` and ``skipped`` are always DataFrames (empty
    when the file is); every other CSV of the run folder is in ``tables`` by file stem and
    reachable as an attribute (``run.ensembles``, ``run.frequency``, ...: None when absent).
    ``dir`` is None for a run whose temporary folder is gone (``core.sweep(out=None)``).
    """

    dir: Optional[Path]
    meta: dict
    levels: pd.DataFrame
    predictions: pd.DataFrame
    per_class: pd.DataFrame
    skipped: pd.DataFrame
    flips: pd.DataFrame = field(default_factory=pd.DataFrame)  # flips.csv (or, for older runs, from predictions)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # rows left out of a file cut short (core.results.runs.read_csv)
    names_source: Any = field(default=None, repr=False, compare=False)  # recomputes names.csv (core.load_run sets it)

    @property
    def status(self) -> str:
        return self.meta.get("status", "unknown")

    @property
    def config(self) -> dict:
        return self.meta.get("config", {})

    @property
    def summary(self) -> dict:
        return self.meta.get("summary", {}) or {}

    @property
    def run_dir(self) -> Optional[Path]:
        return self.dir

    levels_summary = _table("levels_summary")
    backbones = _table("backbones")
    pairs = _table("pairs")
    ensembles = _table("ensembles")
    frequency = _table("frequency")
    frequency_summary = _table("frequency_summary")
    similarity = _table("similarity")
    probes = _table("probes")  # linear probes (--probe-shots), core.stats.probe

    @property
    def names(self) -> pd.DataFrame:
        """names.csv (per-name attribution); for a run made before it existed, scored again from the
        embedding cache when this run was read with ``core.load_run`` (InputError says why not)."""
        if "names" in self.tables:
            return self.tables["names"]
        if self.names_source is None:
            raise InputError("this run has no names.csv; read it with core.load_run(path) to recompute it from the "
                             "embedding cache", file=self.dir)
        self.tables["names"] = self.names_source(self)
        return self.tables["names"]

    def __getattr__(self, name: str) -> pd.DataFrame:
        """Tables that later versions add (``run.<stem>`` for ``<stem>.csv``)."""
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or table {name!r}")


def run_status(meta: dict) -> str:
    """Status, with ``running`` of a dead process on this host shown as ``interrupted``."""
    status = meta.get("status", "unknown")
    if status == Status.RUNNING and meta.get("host") == socket.gethostname():
        pid = meta.get("pid")
        started = meta.get("pid_started")
        if isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid, started if isinstance(started, (int, float)) else None):
            return Status.INTERRUPTED
    return status


class PartialRowsWarning(UserWarning):
    """A run file held rows past its last whole level (a kill or a full disk); they were left out."""


def committed_length(path: Path) -> Optional[int]:
    """The byte length run.json last committed for this run file (None for older runs)."""
    try:
        n = json.loads((path.parent / "run.json").read_text(encoding="utf-8")).get("committed", {}).get(path.name)
    except (OSError, ValueError, AttributeError):
        return None
    return n if isinstance(n, int) else None


def read_csv(path: Path, limit: Optional[int] = None, notes: Optional[list[str]] = None,
             usecols: Any = None) -> pd.DataFrame:
    """A run CSV as the run wrote it (empty when missing; pandas reads floats back exactly, so
    summaries equal their sources).

    Only the first ``limit`` bytes count (the length run.json committed: whole levels), and a
    last line without its newline is a row cut short; either is left out with a warning, added
    to ``notes`` too, so a partial row never reads back as a row of NaNs.
    """
    import io
    import warnings

    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    data = path.read_bytes()
    dropped = []
    if limit is not None and len(data) > limit:
        dropped.append(f"{len(data) - limit} bytes after the last whole level")
        data = data[:limit]
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        dropped.append(f"a partial last row ({len(data) - cut} bytes)")
        data = data[:cut]
    if dropped:
        msg = f"{path}: left out {' and '.join(dropped)} (the run was stopped while writing it)"
        warnings.warn(msg, PartialRowsWarning, stacklevel=2)
        if notes is not None:
            notes.append(msg)
    if not data.strip():
        return pd.DataFrame()
    try:
        return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""], usecols=usecols)
    except pd.errors.ParserError:
        # a row damaged some other way: keep every complete one
        return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""], on_bad_lines="skip",
                           engine="python", usecols=usecols)


def load_run(path: str | Path) -> Run:
    from core.util.tables import read_user_json

    d = Path(path)
    if d.name == "run.json":
        d = d.parent
    meta_path = d / "run.json"
    if not meta_path.exists():
        raise InputError("not a run directory (no run.json)", file=d)
    meta = read_user_json(meta_path)
    meta["status"] = run_status(meta)
    committed = meta.get("committed") if isinstance(meta.get("committed"), dict) else {}
    notes: list[str] = []

    def read(p: Path) -> pd.DataFrame:
        limit = committed.get(p.name)
        return read_csv(p, limit if isinstance(limit, int) else None, notes)

    predictions = read(d / "predictions.csv")
    tables = {}
    for p in sorted(d.glob("*.csv")):
        if p.name not in RUN_FILES and p.name != "flips.csv":
            try:
                tables[p.stem] = read(p)
            except (ValueError, OSError):  # an analysis table that cannot be read does not hide the run
                continue
    run = Run(d, meta, read(d / "levels.csv"), predictions, read(d / "per_class.csv"),
              read(d / "skipped.csv"), flips=read_flips(d, predictions, read), tables=tables)
    run.warnings = notes
    return run


def read_flips(d: Path, predictions: Optional[pd.DataFrame] = None, read=read_csv) -> pd.DataFrame:
    """flips.csv; a run written before it existed gets its flips computed from predictions.csv."""
    from core.stats.flips import compute_flips, flip_columns

    if (d / "flips.csv").exists():
        df = read(d / "flips.csv")
        return df if len(df.columns) else pd.DataFrame(columns=flip_columns(pd.DataFrame()))
    predictions = read_csv(d / "predictions.csv") if predictions is None else predictions
    return compute_flips(predictions) if len(predictions) else pd.DataFrame(columns=flip_columns(predictions))
