"""Results of one run, accumulated live from events or read back from a run directory.

Plain Python + pandas (no Qt): the plots ask it for curves, peaks and matrices, so the
same numbers are drawn during a run and when a finished run is reopened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from core.metrics import confusion_matrix, threshold_analysis

ANALYSIS_TABLES = ("backbones", "pairs", "ensembles", "frequency", "frequency_summary")


@dataclass
class Curve:
    """Accuracy per level of one backbone (mean over orderings)."""

    backbone: str
    levels: np.ndarray
    n_categories: np.ndarray
    top1: np.ndarray
    top5: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    spread_low: np.ndarray  # min over orderings (equals top1 with one ordering)
    spread_high: np.ndarray
    n_orderings: int


@dataclass
class ResultsData:
    """Level rows and per-class rows of one run, plus what run.json says about it."""

    levels: list[dict] = field(default_factory=list)
    per_class: list[dict] = field(default_factory=list)
    run_dir: Optional[str] = None
    status: str = ""
    summary: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    planned_levels: list[int] = field(default_factory=list)
    planned_backbones: list[str] = field(default_factory=list)
    tables: dict[str, list[dict]] = field(default_factory=dict)  # backbones, ensembles, frequency, …
    _curves: dict[str, tuple] = field(default_factory=dict, repr=False, compare=False)

    # ---------------------------------------------------------------- building

    def add_level(self, row: dict, per_class: Optional[list[dict]] = None, backbone: str = "") -> None:
        row = dict(row)
        if backbone and not row.get("backbone"):
            row["backbone"] = backbone
        self.levels.append(row)
        self.per_class.extend(per_class or [])

    def add_table_rows(self, table: str, rows: list[dict]) -> None:
        self.tables.setdefault(table, []).extend(dict(r) for r in rows)

    def table(self, name: str) -> pd.DataFrame:
        return pd.DataFrame(self.tables.get(name, []))

    @classmethod
    def from_run(cls, run: Any) -> "ResultsData":
        """From :class:`core.runs.Run` (finished, cancelled or still being written)."""
        cfg = run.meta.get("config", {})
        out = cls(
            levels=run.levels.to_dict("records") if len(run.levels) else [],
            per_class=run.per_class.to_dict("records") if len(run.per_class) else [],
            run_dir=str(run.dir),
            status=run.status,
            summary=run.meta.get("summary", {}) or {},
            meta=run.meta,
            planned_levels=list(cfg.get("levels_resolved") or []),
            planned_backbones=[b.get("name", "") for b in run.meta.get("backbones", [])],
        )
        for name in ANALYSIS_TABLES:
            df = run.tables.get(name)
            if df is not None and len(df):
                out.tables[name] = df.to_dict("records")
        return out

    # ---------------------------------------------------------------- queries

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.levels)

    def backbones(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.levels:
            seen.setdefault(str(r.get("backbone", "")), None)
        return list(seen)

    def curve(self, backbone: str) -> Optional[Curve]:
        """Mean over orderings per level (plain Python: this runs on the GUI thread for every
        live redraw, and pandas' many small GIL-holding steps made that wait on the worker).

        Cached per backbone until more level rows arrive (rows are only ever appended).
        """
        key = (backbone, len(self.levels))
        hit = self._curves.get(backbone)
        if hit is not None and hit[0] == key:
            return hit[1]
        rows = [r for r in self.levels if str(r.get("backbone", "")) == backbone]
        if not rows:
            return None
        first_ordering = min(int(r.get("ordering", 0) or 0) for r in rows)
        by_level: dict[int, list[dict]] = {}
        for r in rows:
            by_level.setdefault(int(r["level"]), []).append(r)
        levels = sorted(by_level)

        def col(name: str, agg, only_first: bool = False) -> np.ndarray:
            out = []
            for lv in levels:
                rs = by_level[lv]
                if only_first:
                    rs = [r for r in rs if int(r.get("ordering", 0) or 0) == first_ordering]
                vals = [float(r[name]) for r in rs if r.get(name) is not None and r.get(name) == r.get(name)]
                out.append(agg(vals) if vals else np.nan)
            return np.asarray(out, dtype=float)

        mean = lambda v: sum(v) / len(v)  # noqa: E731
        c = Curve(
            backbone=backbone,
            levels=np.asarray(levels, dtype=float),
            n_categories=col("n_categories", max),
            top1=col("top1", mean),
            top5=col("top5", mean),
            ci_low=col("ci_low", mean, only_first=True),
            ci_high=col("ci_high", mean, only_first=True),
            spread_low=col("top1", min),
            spread_high=col("top1", max),
            n_orderings=len({int(r.get("ordering", 0) or 0) for r in rows}),
        )
        self._curves[backbone] = (key, c)
        return c

    def threshold(self, backbone: str) -> dict:
        """The engine's threshold analysis when the run has one, else computed from the rows so far."""
        t = (self.summary.get("backbones", {}).get(backbone, {}) or {}).get("threshold")
        if t:
            return t
        c = self.curve(backbone)
        if c is None:
            return {}
        return threshold_analysis(list(c.levels.astype(int)), list(c.top1))

    def recall_matrix(self, backbone: str, top5: bool = False) -> tuple[list[str], list[int], np.ndarray]:
        """(classes, levels, matrix[class, level]) of per-class recall, mean over orderings."""
        if not self.per_class:
            return [], [], np.zeros((0, 0))
        df = pd.DataFrame(self.per_class)
        df = df[df["backbone"].astype(str) == backbone]
        if df.empty:
            return [], [], np.zeros((0, 0))
        col = "top5_recall" if top5 else "recall"
        classes = list(dict.fromkeys(df["class"].astype(str)))
        pv = df.pivot_table(index="class", columns="level", values=col, aggfunc="mean", dropna=False)
        pv = pv.reindex(classes)
        levels = [int(x) for x in pv.columns]
        return classes, levels, pv.to_numpy(dtype=float)

    def classes(self) -> list[str]:
        cfg = self.meta.get("config", {})
        if cfg.get("labels_resolved"):
            return list(cfg["labels_resolved"])
        return list(dict.fromkeys(str(r["class"]) for r in self.per_class))

    @property
    def predictions_path(self) -> Optional[Path]:
        if not self.run_dir:
            return None
        p = Path(self.run_dir) / "predictions.csv"
        return p if p.exists() else None


def confusion(predictions: pd.DataFrame, classes: list[str], level: int, backbone: str,
              ordering: int = 0) -> np.ndarray:
    """Counts[true, predicted] at one level from predictions.csv rows."""
    df = predictions
    if df.empty:
        return np.zeros((len(classes), len(classes)), dtype=np.int64)
    mask = (df["level"] == level) & (df["backbone"].astype(str) == backbone)
    if "ordering" in df:
        mask &= df["ordering"] == ordering
    df = df[mask]
    index = {c: i for i, c in enumerate(classes)}
    t = df["true_class"].astype(str).map(index)
    p = df["predicted_class"].astype(str).map(index)
    ok = t.notna() & p.notna()
    return confusion_matrix(t[ok].astype(int).to_numpy(), p[ok].astype(int).to_numpy(), len(classes))
