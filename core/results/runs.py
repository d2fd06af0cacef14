"""The run directory: the contract between engine, CLI, GUI and users.

``run.json`` (config, versions, status), ``levels.csv``, ``predictions.csv``,
``per_class.csv``, ``skipped.csv`` and ``flips.csv`` (:mod:`core.stats.flips`). CSV rows are appended and the file closed as each
level finishes, so a cancelled or killed run keeps everything already computed.
``run.json`` is replaced atomically; a run left as ``running`` by a process that no
longer exists reads back as ``interrupted``. A folder that already holds a run is never
written into unless asked to, and then every file of the old run goes first.
"""

from __future__ import annotations

import csv
import json
import os
import socket
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
               "levels.csv.tmp", "flips.csv")

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


class RunWriter:
    """Creates and appends to a run directory.

    A folder that holds a run is refused unless ``overwrite``; then every file of the old run
    is removed first, so the folder ends up exactly as a fresh run into an empty one leaves it.
    Other files in the folder (a labels file the user keeps there) are left alone.
    """

    def __init__(self, out: str | Path, config: dict[str, Any], overwrite: bool = False) -> None:
        self.dir = Path(out)
        check_out(self.dir, overwrite)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create the run folder ({e.strerror or e})", file=self.dir, field="out") from None
        _remove(_run_outputs(self.dir))
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
        atomic_write_json(self.dir / "run.json", self.meta)

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

    def finish(self, status: str, summary: Optional[dict] = None, error: str = "") -> None:
        self.meta["status"] = status
        self.meta["finished"] = now()
        if summary is not None:
            self.meta["summary"] = summary
        if error:
            self.meta["error"] = error
        self._write_meta()


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


def read_csv(path: Path) -> pd.DataFrame:
    """A run CSV as the run wrote it (empty when missing; pandas reads floats back exactly, so
    summaries equal their sources)."""
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError:
        # a kill during a write can leave a partial last line: keep every complete one
        return pd.read_csv(path, keep_default_na=False, na_values=[""], on_bad_lines="skip", engine="python")


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
    predictions = read_csv(d / "predictions.csv")
    tables = {}
    for p in sorted(d.glob("*.csv")):
        if p.name not in RUN_FILES and p.name != "flips.csv":
            try:
                tables[p.stem] = read_csv(p)
            except (ValueError, OSError):  # an analysis table that cannot be read does not hide the run
                continue
    return Run(d, meta, read_csv(d / "levels.csv"), predictions, read_csv(d / "per_class.csv"),
               read_csv(d / "skipped.csv"), flips=read_flips(d, predictions), tables=tables)


def read_flips(d: Path, predictions: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """flips.csv; a run written before it existed gets its flips computed from predictions.csv."""
    from core.stats.flips import compute_flips, flip_columns

    if (d / "flips.csv").exists():
        df = read_csv(d / "flips.csv")
        return df if len(df.columns) else pd.DataFrame(columns=flip_columns(pd.DataFrame()))
    predictions = read_csv(d / "predictions.csv") if predictions is None else predictions
    return compute_flips(predictions) if len(predictions) else pd.DataFrame(columns=flip_columns(predictions))
