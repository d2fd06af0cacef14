"""Results of one run, accumulated live from events or read back from a run directory.

Plain Python + pandas (no Qt): the plots ask it for curves, peaks and matrices, so the
same numbers are drawn during a run and when a finished run is reopened.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from core.stats.metrics import confusion_matrix, peak_so_far

ANALYSIS_TABLES = ("backbones", "pairs", "ensembles", "frequency", "frequency_summary", "threshold", "controls",
                   "robustness", "similarity",
                   "probes")
from core.labels.controls import SYNONYMS  # noqa: E402  (the names kind of the labels file's names)
CONTROL_LABELS = {"random-words": "random words", "random-chars": "random letters"}
_tokens = itertools.count(1)


def names_of(row: dict) -> str:
    """The names kind of a level or per-class row (runs written before controls have none: synonyms)."""
    v = row.get("names")
    return str(v) if isinstance(v, str) and v else SYNONYMS


@dataclass
class Curve:
    """Accuracy per level of one backbone and names kind (mean over orderings)."""

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
    names: str = SYNONYMS
    p_vs_level1_holm: np.ndarray = field(default_factory=lambda: np.zeros(0))  # first ordering; NaN until known
    peak_share: np.ndarray = field(default_factory=lambda: np.zeros(0))


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
    _frames: dict[str, tuple] = field(default_factory=dict, repr=False, compare=False)
    # names this object in cache keys (an id() can be reused once an object is gone)
    token: int = field(default_factory=lambda: next(_tokens), repr=False, compare=False)

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
        """An analysis table as a DataFrame, built once per number of rows (rows are only appended)."""
        rows = self.tables.get(name, [])
        hit = self._frames.get(name)
        if hit is not None and hit[0] == len(rows):
            return hit[1]
        df = pd.DataFrame(rows)
        self._frames[name] = (len(rows), df)
        return df

    @classmethod
    def from_run(cls, run: Any) -> "ResultsData":
        """From :class:`core.results.runs.Run` (finished, cancelled or still being written)."""
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
            p = Path(run.dir) / f"{name}.csv"
            if p.is_file() and p.stat().st_size:
                try:
                    out.tables[name] = pd.read_csv(p, keep_default_na=False, na_values=[""]).to_dict("records")
                except (pd.errors.ParserError, ValueError, OSError):
                    pass
            out.table(name)  # built here, off the GUI thread, rather than on the first view of it
        return out

    # ---------------------------------------------------------------- queries

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.levels)

    def backbones(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.levels:
            seen.setdefault(str(r.get("backbone", "")), None)
        return list(seen)

    def names_kinds(self) -> list[str]:
        """Names kinds in the run: synonyms first, then the controls in the order they were scored."""
        kinds = list(dict.fromkeys(names_of(r) for r in self.levels))
        return sorted(kinds, key=lambda k: k != SYNONYMS)

    def curve(self, backbone: str, names: str = SYNONYMS) -> Optional[Curve]:
        """Mean over orderings per level (plain Python: this runs on the GUI thread for every
        live redraw, and pandas' many small GIL-holding steps made that wait on the worker).

        Cached per backbone until more level rows arrive (rows are only ever appended).
        """
        key = (backbone, names, len(self.levels), id(self.summary))
        hit = self._curves.get((backbone, names))
        if hit is not None and hit[0] == key:
            return hit[1]
        rows = [r for r in self.levels if str(r.get("backbone", "")) == backbone and names_of(r) == names]
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
            names=names,
            p_vs_level1_holm=col("p_vs_level1_holm", mean, only_first=True),
            peak_share=col("peak_share", mean, only_first=True),
        )
        headline = self.verdict(backbone, names).get("p_vs_level1_holm") or {}
        if headline:  # the engine's tests on the headline curve (mean credit over orderings)
            c.p_vs_level1_holm = np.array([headline.get(str(int(lv)), headline.get(int(lv), np.nan)) for lv in levels],
                                          dtype=float)
            share = self.verdict(backbone, names).get("peak_share") or {}
            c.peak_share = np.array([share.get(str(int(lv)), share.get(int(lv), np.nan)) for lv in levels], dtype=float)
        self._curves[(backbone, names)] = (key, c)
        return c

    def verdict(self, backbone: str, names: str = SYNONYMS) -> dict:
        """The engine's threshold verdict of a backbone x names kind ({} until the backbone finished)."""
        b = self.summary.get("backbones", {}).get(backbone, {}) or {}
        return (b.get("threshold") if names == SYNONYMS else (b.get("controls") or {}).get(names)) or {}

    def threshold(self, backbone: str) -> dict:
        """The engine's threshold analysis when the run has one, else computed from the rows so far."""
        t = (self.summary.get("backbones", {}).get(backbone, {}) or {}).get("threshold")
        if t:
            return t
        c = self.curve(backbone)
        if c is None:
            return {}
        return peak_so_far(list(c.levels.astype(int)), list(c.top1))

    def recall_matrix(self, backbone: str, top5: bool = False) -> tuple[list[str], list[int], np.ndarray]:
        """(classes, levels, matrix[class, level]) of per-class recall, mean over orderings."""
        return recall_matrix(self.per_class, backbone, top5)

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


def recall_matrix(per_class: list[dict], backbone: str, top5: bool = False) -> tuple[list[str], list[int], np.ndarray]:
    """(classes, levels, matrix[class, level]) of per-class recall rows, mean over orderings.

    A pandas pivot: views call it from a background task (see ``tasks.AnalysisCache``).
    """
    if not per_class:
        return [], [], np.zeros((0, 0))
    df = pd.DataFrame(per_class)
    df = df[df["backbone"].astype(str) == backbone]
    if "names" in df:  # the labels file's names, not a control curve's
        df = df[df["names"].astype(object).fillna(SYNONYMS).astype(str) == SYNONYMS]
    col = "top5_recall" if top5 else "recall"
    if df.empty or col not in df:
        return [], [], np.zeros((0, 0))
    classes = list(dict.fromkeys(df["class"].astype(str)))
    df = df.assign(**{"class": df["class"].astype(str), col: pd.to_numeric(df[col], errors="coerce")})
    pv = df.pivot_table(index="class", columns="level", values=col, aggfunc="mean", dropna=False)
    pv = pv.reindex(classes)
    levels = [int(x) for x in pv.columns]
    return classes, levels, pv.to_numpy(dtype=float)


def confusion(predictions: pd.DataFrame, classes: list[str], level: int, backbone: str,
              ordering: int = 0, names: str = SYNONYMS) -> np.ndarray:
    """Counts[true, predicted] at one level from predictions.csv rows (of one names kind).

    A tied prediction (``predicted_classes`` lists several owners) counts 1/m for each of
    its m classes, as in every accuracy (README, "Ties"); without ties the counts are whole.
    """
    df = predictions
    if df.empty:
        return np.zeros((len(classes), len(classes)), dtype=np.int64)
    mask = (df["level"] == level) & (df["backbone"].astype(str) == backbone)
    if "ordering" in df:
        mask &= df["ordering"] == ordering
    if "names" in df:
        mask &= df["names"].astype(object).fillna(SYNONYMS).astype(str) == names
    df = df[mask]
    index = {c: i for i, c in enumerate(classes)}
    tied = "predicted_classes" in df and (pd.to_numeric(df.get("n_owners", 1), errors="coerce").fillna(1) > 1).any()
    if tied:
        owners = df["predicted_classes"].astype(str).str.split("|")
        df = df.assign(predicted_class=owners, weight=1.0 / owners.map(len)).explode("predicted_class")
    t = df["true_class"].astype(str).map(index)
    p = df["predicted_class"].astype(str).map(index)
    ok = t.notna() & p.notna()
    return confusion_matrix(t[ok].astype(int).to_numpy(), p[ok].astype(int).to_numpy(), len(classes),
                            df["weight"][ok].to_numpy(dtype=float) if tied else None)


def kshot_table(results: ResultsData, level: int) -> pd.DataFrame:
    """mean / sd / min / max / n over splits of every (method, k) at one level."""
    df = results.table("ensembles")
    if df.empty or not {"level", "method", "k", "top1"} <= set(df.columns):
        return pd.DataFrame(columns=["method", "k", "mean", "sd", "min", "max", "n", "n_eval"])
    d = df[(df["k"].astype(int) > 0) & (df["level"].astype(int) == level)]
    if d.empty:
        return pd.DataFrame(columns=["method", "k", "mean", "sd", "min", "max", "n", "n_eval"])
    g = d.groupby(["method", "k"])
    out = g["top1"].agg(mean="mean", sd="std", min="min", max="max", n="count").reset_index()
    out["sd"] = out["sd"].fillna(0.0)
    out["n_eval"] = g["n_eval"].mean().to_numpy() if "n_eval" in d else np.nan
    return out
