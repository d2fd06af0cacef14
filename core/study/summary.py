"""Cross-dataset summaries of a study, built from its run folders' CSV files.

Everything here reads only what each run directory already holds (``levels.csv``,
``ensembles.csv``, ``frequency_summary.csv``, ``run.json``, and ``threshold.csv`` where
the run wrote one), so the summaries of a partial or cancelled study are as valid as
those of a finished one, and rebuilding them never touches an image or a model.

* ``summary.csv`` — one row per dataset × backbone (× names kind) × level, copied from
  ``levels.csv`` (ordering 0, the labels file's ranking) plus the change vs level 1;
* ``summary_by_level.csv`` — per backbone and level across datasets: mean top-1, mean
  change vs level 1 with a percentile-bootstrap CI over datasets, and how many datasets
  improved, were hurt or did not change significantly;
* ``thresholds.csv`` — per dataset and backbone, the peak level and the trend after it;
* ``ensembles_summary.csv`` — per dataset the best single backbone, oracle, fixed and
  adaptive ensembles with their gains, then the mean and maximum over datasets;
* ``frequency_summary.csv`` — each run's accuracy-vs-frequency correlation, and its mean;
* ``controls_summary.csv`` — where the runs have control curves (``controls.csv``), each
  run's semantic effect (synonyms minus control top-1) and its mean over datasets with a
  bootstrap CI over datasets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import pandas as pd

from core.util.files import atomic_write_csv
from core.labels.controls import SYNONYMS
from core.results.runs import read_csv

ALPHA = 0.05  # significance level of "improved" / "hurt"
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
MEAN_ROW, MAX_ROW = "(mean)", "(max)"  # not valid dataset names, so they never collide with one

SUMMARY_COLUMNS = ["dataset", "backbone", "level", "n_categories", "n_images", "top1", "top5", "ci_low", "ci_high",
                   "delta_top1_vs_level1"]
OPTIONAL_LEVEL_COLUMNS = ["p_vs_level1", "p_vs_level1_holm", "n_tied"]  # copied when the runs have them
BY_LEVEL_COLUMNS = ["backbone", "level", "n_datasets", "mean_top1", "mean_delta_top1", "delta_ci_low", "delta_ci_high",
                    "n_improved", "n_hurt", "n_no_change", "significance"]
THRESHOLD_COLUMNS = ["dataset", "backbone", "peak_level", "peak_top1", "final_top1", "drop_after_peak", "trend"]
ENSEMBLE_COLUMNS = ["dataset", "level", "method", "k", "n_splits", "n_eval", "top1", "best_single",
                    "gain_vs_best_single", "n_datasets"]
FREQUENCY_COLUMNS = ["dataset", "backbone", "level", "n_classes", "spearman_rho", "p_value", "n_datasets"]
CONTROL_COLUMNS = ["dataset", "backbone", "control", "level", "n_images", "synonyms_top1", "control_top1", "effect",
                   "ci_low", "ci_high", "p_value", "n_datasets"]
SUMMARY_FILES = ("summary.csv", "summary_by_level.csv", "thresholds.csv", "ensembles_summary.csv",
                 "frequency_summary.csv", "controls_summary.csv")


def _run_meta(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _first_ordering(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["ordering"] == 0] if "ordering" in df.columns else df


def _keys(df: pd.DataFrame) -> list[str]:
    """Curves are told apart by backbone, and by names kind where the run has controls."""
    return ["backbone", "names"] if "names" in df.columns else ["backbone"]


def summary_table(runs: Mapping[str, Path]) -> pd.DataFrame:
    """One row per dataset × backbone (× names) × level, equal to the run's levels.csv row."""
    frames = []
    for name, run_dir in runs.items():
        lv = _first_ordering(read_csv(Path(run_dir) / "levels.csv"))
        if lv.empty:
            continue
        lv = lv.copy()
        keys = _keys(lv)
        first = lv[lv["level"] == 1]
        if "names" in first.columns:  # level 1 uses canonical names only: the same for every kind
            first = first.sort_values("names", key=lambda s: s != SYNONYMS)
        base = first.groupby("backbone", sort=False)["top1"].first()
        lv["delta_top1_vs_level1"] = lv["top1"] - lv["backbone"].map(base)
        lv.insert(0, "dataset", name)
        cols = SUMMARY_COLUMNS + keys[1:] + [c for c in OPTIONAL_LEVEL_COLUMNS if c in lv]
        frames.append(lv[cols])
    if not frames:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def bootstrap_mean_ci(values: np.ndarray, confidence: float = 0.95, seed: int = BOOTSTRAP_SEED,
                      n_resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean over datasets (NaN for fewer than two)."""
    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    if np.ptp(v) == 0:
        return float(v[0]), float(v[0])
    res = bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                    rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def change_kind(row: pd.Series, base_top1: float) -> str:
    """improved / hurt / same vs level 1: the paired test where the run has one, else the run's CI."""
    if row["level"] == 1:
        return "same"
    p = row.get("p_vs_level1", np.nan)
    if p is not None and not pd.isna(p):
        if p < ALPHA:
            return "improved" if row["delta_top1_vs_level1"] > 0 else "hurt"
        return "same"
    if base_top1 < row["ci_low"]:
        return "improved"
    if base_top1 > row["ci_high"]:
        return "hurt"
    return "same"


def by_level(summary: pd.DataFrame) -> pd.DataFrame:
    """Per backbone (× names) and level across datasets: the study's headline table."""
    if summary.empty:
        return pd.DataFrame(columns=BY_LEVEL_COLUMNS)
    s = summary.copy()
    base = s["top1"] - s["delta_top1_vs_level1"]
    s["change"] = [change_kind(r, b) for (_, r), b in zip(s.iterrows(), base)]
    keys = _keys(s) + ["level"]
    rows = []
    for key, g in s.groupby(keys, sort=False):
        d = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        lo, hi = bootstrap_mean_ci(g["delta_top1_vs_level1"].to_numpy())
        has_p = "p_vs_level1" in g.columns and g["p_vs_level1"].notna().any()
        rows.append({**d, "n_datasets": int(g["dataset"].nunique()), "mean_top1": float(g["top1"].mean()),
                     "mean_delta_top1": float(g["delta_top1_vs_level1"].mean()), "delta_ci_low": lo,
                     "delta_ci_high": hi, "n_improved": int((g["change"] == "improved").sum()),
                     "n_hurt": int((g["change"] == "hurt").sum()), "n_no_change": int((g["change"] == "same").sum()),
                     "significance": "p_vs_level1" if has_p else "ci"})
    out = pd.DataFrame(rows)  # backbones in the study's order, levels ascending
    out["_order"] = out["backbone"].map({b: i for i, b in enumerate(dict.fromkeys(s["backbone"]))})
    cols = BY_LEVEL_COLUMNS[:1] + keys[1:-1] + BY_LEVEL_COLUMNS[1:]
    return out.sort_values(["_order"] + keys[1:], kind="stable")[cols].reset_index(drop=True)


def thresholds(runs: Mapping[str, Path]) -> pd.DataFrame:
    """The run's own threshold.csv where it wrote one, else the run's threshold rule on levels.csv."""
    from core.stats.metrics import threshold_analysis

    frames = []
    for name, run_dir in runs.items():
        run_dir = Path(run_dir)
        own = read_csv(run_dir / "threshold.csv")
        if not own.empty:
            own.insert(0, "dataset", name)
            frames.append(own)
            continue
        lv = read_csv(run_dir / "levels.csv")
        if lv.empty:
            continue
        tolerance = _run_meta(run_dir).get("config", {}).get("tolerance", 0.01)
        keys = _keys(lv)
        rows = []
        for key, g in lv.groupby(keys, sort=False):
            mean = g.groupby("level")["top1"].mean()  # over orderings, as the run's summary does
            t = threshold_analysis(list(mean.index), list(mean.values), tolerance)
            rows.append({"dataset": name, **dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                         **{k: t.get(k) for k in THRESHOLD_COLUMNS[2:]}})
        frames.append(pd.DataFrame(rows))
    if not frames:
        return pd.DataFrame(columns=THRESHOLD_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    return out[[c for c in THRESHOLD_COLUMNS if c in out] + [c for c in out if c not in THRESHOLD_COLUMNS]]


def ensembles_summary(runs: Mapping[str, Path]) -> pd.DataFrame:
    """Per dataset and level: every ensemble's top-1 and its gain over the best single backbone.

    Fixed ensembles (k = 0) are compared with the best single backbone on all images;
    adaptive ones at k shots with the best single backbone chosen on the same fitting
    images and scored on the same evaluation images (mean over splits). Then the mean and
    the maximum of every column over datasets.
    """
    frames = []
    for name, run_dir in runs.items():
        e = read_csv(Path(run_dir) / "ensembles.csv")
        if e.empty:
            continue
        keys = ["names", "level"] if "names" in e.columns else ["level"]
        g = e.groupby(keys + ["method", "k"], sort=False).agg(
            n_splits=("split", "nunique"), n_eval=("n_eval", "mean"), top1=("top1", "mean")).reset_index()
        best = g[g["method"] == "best_single"].set_index(keys + ["k"])["top1"]
        idx = pd.MultiIndex.from_frame(g[keys + ["k"]])
        g["best_single"] = best.reindex(idx).to_numpy()
        g["gain_vs_best_single"] = g["top1"] - g["best_single"]
        g.insert(0, "dataset", name)
        frames.append(g)
    if not frames:
        return pd.DataFrame(columns=ENSEMBLE_COLUMNS)
    per = pd.concat(frames, ignore_index=True)
    per["n_datasets"] = 1
    keys = ["names", "level"] if "names" in per.columns else ["level"]
    num = ["n_splits", "n_eval", "top1", "best_single", "gain_vs_best_single"]
    grouped = per.groupby(keys + ["method", "k"], sort=False)
    agg = []
    for label, how in ((MEAN_ROW, "mean"), (MAX_ROW, "max")):
        a = grouped[num].agg(how).reset_index()
        a["n_splits"] = grouped["n_splits"].max().to_numpy()
        a["n_datasets"] = grouped["dataset"].nunique().to_numpy()
        a.insert(0, "dataset", label)
        agg.append(a)
    out = pd.concat([per] + agg, ignore_index=True)
    cols = ["dataset"] + keys + ENSEMBLE_COLUMNS[2:]
    return out[cols]


def stacked(runs: Mapping[str, Path], file: str) -> pd.DataFrame:
    """One run table of every dataset, stacked, with ``dataset`` first and ``n_datasets`` = 1 per row."""
    frames = []
    for name, run_dir in runs.items():
        df = read_csv(Path(run_dir) / file)
        if df.empty:
            continue
        df.insert(0, "dataset", name)
        df["n_datasets"] = 1
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def frequency_summary(runs: Mapping[str, Path]) -> pd.DataFrame:
    """Each run's Spearman correlation of per-class recall with class frequency, then the mean."""
    per = stacked(runs, "frequency_summary.csv")
    if per.empty:
        return pd.DataFrame(columns=FREQUENCY_COLUMNS)
    g = per.groupby(["backbone", "level"], sort=False)
    mean = g.agg(n_classes=("n_classes", "sum"), spearman_rho=("spearman_rho", "mean")).reset_index()
    mean["p_value"] = np.nan
    mean["n_datasets"] = g["dataset"].nunique().to_numpy()
    mean.insert(0, "dataset", MEAN_ROW)
    return pd.concat([per, mean], ignore_index=True)[FREQUENCY_COLUMNS]


def controls_summary(runs: Mapping[str, Path]) -> pd.DataFrame:
    """Each run's semantic effect per control and level, then the mean over datasets (CI over datasets)."""
    per = stacked(runs, "controls.csv")
    if per.empty:
        return pd.DataFrame(columns=CONTROL_COLUMNS)
    rows = []
    for (bb, control, level), g in per.groupby(["backbone", "control", "level"], sort=False):
        lo, hi = bootstrap_mean_ci(g["effect"].to_numpy())
        rows.append({"dataset": MEAN_ROW, "backbone": bb, "control": control, "level": level,
                     "n_images": int(g["n_images"].sum()), "synonyms_top1": g["synonyms_top1"].mean(),
                     "control_top1": g["control_top1"].mean(), "effect": g["effect"].mean(), "ci_low": lo,
                     "ci_high": hi, "p_value": np.nan, "n_datasets": int(g["dataset"].nunique())})
    out = pd.concat([per, pd.DataFrame(rows)], ignore_index=True)
    return out[[c for c in CONTROL_COLUMNS if c in out.columns]]


def _write(df: pd.DataFrame, path: Path) -> Path:
    atomic_write_csv(path, df)
    return path


def write_summaries(out: str | Path, runs: Mapping[str, Path]) -> dict[str, Path]:
    """Rewrite every summary file of the study folder ``out`` from the run folders ``runs``.

    ``ensembles_summary.csv``, ``frequency_summary.csv`` and ``controls_summary.csv`` exist
    only when some run has ensembles (two or more backbones), class frequencies or controls.
    """
    out = Path(out)
    present = {n: Path(d) for n, d in runs.items() if (Path(d) / "levels.csv").exists()}
    summary = summary_table(present)
    paths = {
        "summary": _write(summary, out / "summary.csv"),
        "summary_by_level": _write(by_level(summary), out / "summary_by_level.csv"),
        "thresholds": _write(thresholds(present), out / "thresholds.csv"),
    }
    for key, df in (("ensembles_summary", ensembles_summary(present)),
                    ("frequency_summary", frequency_summary(present)),
                    ("controls_summary", controls_summary(present))):
        path = out / f"{key}.csv"
        if df.empty:
            path.unlink(missing_ok=True)  # a study without ensembles or frequencies has none (no stale copy)
        else:
            paths[key] = _write(df, path)
    return paths


def load_summaries(out: str | Path) -> dict[str, pd.DataFrame]:
    """Every summary file of a study folder that exists (for the app and users' scripts)."""
    out = Path(out)
    return {Path(n).stem: read_csv(out / n) for n in SUMMARY_FILES if (out / n).exists()}


def study_runs(out: str | Path, names: Optional[list[str]] = None) -> dict[str, Path]:
    """The run folders of a study folder, in the order of study.json (or ``names``)."""
    out = Path(out)
    if names is None:
        try:
            names = [d["name"] for d in json.loads((out / "study.json").read_text(encoding="utf-8"))["datasets"]]
        except (OSError, ValueError, KeyError, TypeError):
            names = sorted(p.name for p in (out / "runs").iterdir() if p.is_dir()) if (out / "runs").is_dir() else []
    return {n: out / "runs" / n for n in names}
