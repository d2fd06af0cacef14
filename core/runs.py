"""The run directory: the contract between engine, CLI, GUI and users.

``run.json`` (config, versions, status), ``levels.csv``, ``predictions.csv``,
``per_class.csv`` and ``skipped.csv``. CSV rows are appended and the file closed as each
level finishes, so a cancelled or killed run keeps everything already computed.
``run.json`` is replaced atomically; a run left as ``running`` by a process that no
longer exists reads back as ``interrupted``.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import pandas as pd

from .events import Status
from .files import atomic_write_json

RUN_FILES = ("levels.csv", "predictions.csv", "per_class.csv", "skipped.csv")

LEVEL_COLUMNS = [
    "backbone", "ordering", "level", "n_categories", "n_images", "top1", "top5", "ci_low", "ci_high",
    "n_correct", "seconds",
]
PREDICTION_COLUMNS = ["image", "true_class", "level", "predicted_label", "predicted_class", "correct", "ordering", "backbone", "score"]
PER_CLASS_COLUMNS = ["backbone", "ordering", "level", "class", "n_images", "n_correct", "recall", "top5_recall", "n_names"]
SKIPPED_COLUMNS = ["path", "reason"]


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    import numpy
    import torch

    import core

    out = {"semscale": core.__version__, "python": sys.version.split()[0], "torch": torch.__version__,
           "numpy": numpy.__version__, "pandas": pd.__version__, "platform": platform.platform()}
    try:
        import open_clip

        out["open_clip"] = open_clip.__version__
    except Exception:  # pragma: no cover - open_clip is a hard dependency
        pass
    return out


class RunWriter:
    """Creates and appends to a run directory."""

    def __init__(self, out: str | Path, config: dict[str, Any], overwrite: bool = True) -> None:
        self.dir = Path(out)
        self.dir.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for name in RUN_FILES + ("levels_summary.csv", "backbones.csv", "ensembles.csv"):
                (self.dir / name).unlink(missing_ok=True)
        self.meta: dict[str, Any] = {
            "status": Status.RUNNING,
            "started": now(),
            "finished": None,
            "pid": os.getpid(),
            "host": socket.gethostname(),
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
        with open(path, "a", encoding="utf-8", newline="") as f:
            df.to_csv(f, index=False, header=header)
            f.flush()

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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
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
        if isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid):
            return Status.INTERRUPTED
    return status


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError:
        # a kill during a write can leave a partial last line: keep every complete one
        return pd.read_csv(path, keep_default_na=False, na_values=[""], on_bad_lines="skip", engine="python")


def load_run(path: str | Path) -> Run:
    from .errors import InputError
    from .tables import read_user_json

    d = Path(path)
    if d.name == "run.json":
        d = d.parent
    meta_path = d / "run.json"
    if not meta_path.exists():
        raise InputError("not a run directory (no run.json)", file=d)
    meta = read_user_json(meta_path)
    meta["status"] = run_status(meta)
    tables = {}
    for p in sorted(d.glob("*.csv")):
        if p.name not in RUN_FILES:
            try:
                tables[p.stem] = _read_csv(p)
            except (ValueError, OSError):  # an analysis table that cannot be read does not hide the run
                continue
    return Run(d, meta, _read_csv(d / "levels.csv"), _read_csv(d / "predictions.csv"),
               _read_csv(d / "per_class.csv"), _read_csv(d / "skipped.csv"), tables)
