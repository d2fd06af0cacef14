"""Comparing runs of the same dataset: their curves side by side, and what differs in how they were
configured (which names, which templates, ...). Qt-free, so the app's Compare view and scripts share it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from core.results.views import ResultsData

COMPARED_KEYS = ("mode", "templates", "labels", "levels_resolved", "orderings", "dataset")


@dataclass
class ComparedRun:
    """One run folder's curves (mean over orderings) and the config they came from."""

    path: Path
    title: str
    config: dict
    status: str
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # backbone -> (levels, top1)


def read_compared_run(path: str | Path) -> ComparedRun:
    """run.json and levels.csv of a run folder (predictions are not needed to compare curves)."""
    from core.util.errors import InputError
    from core.results.runs import read_csv, run_status
    from core.util.tables import read_user_json

    d = Path(path)
    if d.name == "run.json":
        d = d.parent
    if not (d / "run.json").is_file():
        raise InputError("not a run directory (no run.json)", file=d)
    meta = read_user_json(d / "run.json")
    levels = read_csv(d / "levels.csv")  # the run reader's own CSV reading (committed rows only)
    res = ResultsData(levels=levels.to_dict("records") if len(levels) else [])
    out = ComparedRun(d, d.name, meta.get("config", {}) or {}, run_status(meta))
    for b in res.backbones():
        c = res.curve(b)
        if c is not None and len(c.levels):
            out.curves[b] = (c.levels.astype(int), c.top1)
    return out


def _describe(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) if len(value) <= 8 else f"{len(value)} items"
    if isinstance(value, str) and ("/" in value or "\\" in value):
        p = Path(value)
        return f"{p.parent.name}/{p.name}" if p.parent.name else p.name  # the run folder often tells them apart
    return str(value)


def names_differences(ref: dict, other: dict, examples: int = 3) -> str:
    """Which names differ between two runs' resolved labels (class -> ranked names), in words:
    "names of 2 classes: cat +kitty −feline; dog reordered" ("" when they are the same)."""
    out = []
    for c in sorted(set(ref) | set(other)):
        a, b = list(ref.get(c) or []), list(other.get(c) or [])
        if a == b:
            continue
        if not a or not b:
            out.append(f"{c} {'added' if b else 'removed'}")
            continue
        plus = [n for n in b if n not in a]
        minus = [n for n in a if n not in b]
        bits = [f"+{n}" for n in plus] + [f"−{n}" for n in minus]
        out.append(f"{c} " + (" ".join(bits) if bits else "reordered"))
    if not out:
        return ""
    more = f"; … {len(out) - examples} more" if len(out) > examples else ""
    return f"names of {len(out)} class{'es' if len(out) != 1 else ''}: " + "; ".join(out[:examples]) + more


def config_differences(ref: dict, other: dict) -> str:
    """What differs between two run configs, in the keys that change a curve (for the labels:
    which names, not that the file's path differs)."""
    parts = []
    for key in COMPARED_KEYS:
        a, b = ref.get(key), other.get(key)
        if key == "labels" and isinstance(ref.get("labels_resolved"), dict) \
                and isinstance(other.get("labels_resolved"), dict):
            names = names_differences(ref["labels_resolved"], other["labels_resolved"])
            if names:
                parts.append(names)
            continue
        if a != b and not (a is None and b is None):
            parts.append(f"{key.replace('_resolved', '')}: {_describe(b)}")
    return "; ".join(parts)


def comparison_table(runs: Sequence[ComparedRun]) -> pd.DataFrame:
    """One row per (run, backbone): top-1 at the first level, the peak, and the difference in
    points from the reference curve (the first run) at every level both have."""
    rows = []
    if not runs:
        return pd.DataFrame()
    ref_run = runs[0]
    all_levels = sorted({int(v) for r in runs for lv, _ in r.curves.values() for v in lv})
    for r in runs:
        diff = config_differences(ref_run.config, r.config) if r is not ref_run else "(reference)"
        for b, (lv, top1) in r.curves.items():
            ref = ref_run.curves.get(b) or next(iter(ref_run.curves.values()), None)
            j = int(np.nanargmax(top1)) if len(top1) and not np.all(np.isnan(top1)) else 0
            row = {"run": r.title, "backbone": b, "differs from the reference in": diff,
                   "top-1 at first level (%)": round(float(top1[0]) * 100, 2) if len(top1) else np.nan,
                   "peak level": int(lv[j]) if len(lv) else np.nan,
                   "peak top-1 (%)": round(float(top1[j]) * 100, 2) if len(top1) else np.nan}
            for k in all_levels:
                d = np.nan
                if ref is not None and k in set(lv.tolist()) and k in set(ref[0].tolist()):
                    d = (float(top1[list(lv).index(k)]) - float(ref[1][list(ref[0]).index(k)])) * 100
                row[f"Δ top-1 at {k} (points)"] = round(d, 2) if not math.isnan(d) else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


NAMES_COMPARISON_COLUMNS = ["class", "added", "removed", "reranked", "names_before", "names_after", "level",
                            "recall_before", "recall_after", "recall_change"]


def _ranked_names(config: dict) -> dict[str, list[str]]:
    got = config.get("labels_resolved")
    return {str(c): [str(n) for n in v] for c, v in got.items()} if isinstance(got, dict) else {}


def compare_names(ref: str | Path, other: str | Path, backbone: str | None = None,
                  level: int | None = None) -> pd.DataFrame:
    """Two runs of one dataset with different label files, class by class: names ``added``,
    ``removed`` and ``reranked`` (in both lists at another rank, "name 2→3"), joined by "; ",
    and each class's recall at ``level`` in both runs (default: the highest level both scored)
    with the change (synonyms curve, ordering 0; ``backbone`` defaults to the first both ran).
    Every class of either run has a row, changed or not; recall is NaN where a run has no row."""
    from core.results.runs import read_csv
    from core.util.errors import InputError

    a, b = read_compared_run(ref), read_compared_run(other)
    na, nb = _ranked_names(a.config), _ranked_names(b.config)
    if not na or not nb:
        raise InputError("a run without resolved names in run.json cannot be compared by names",
                         file=a.path if not na else b.path)

    def recall(run: ComparedRun) -> pd.DataFrame:
        pc = read_csv(run.path / "per_class.csv")
        if not len(pc):
            return pd.DataFrame(columns=["backbone", "level", "class", "recall"])
        if "names" in pc.columns:
            pc = pc[pc["names"].fillna("synonyms") == "synonyms"]
        if "ordering" in pc.columns:
            pc = pc[pc["ordering"] == 0]
        return pc

    ra, rb = recall(a), recall(b)
    common = [x for x in dict.fromkeys(ra["backbone"]) if x in set(rb["backbone"])] if len(ra) and len(rb) else []
    if backbone is None:
        backbone = common[0] if common else None
    elif backbone not in common:
        raise InputError(f"backbone '{backbone}' is not in both runs (both have: {', '.join(common) or 'none'})",
                         field="backbone")
    if backbone is not None:
        ra, rb = ra[ra["backbone"] == backbone], rb[rb["backbone"] == backbone]
    shared_levels = sorted(set(ra["level"].astype(int)) & set(rb["level"].astype(int)))
    if level is None:
        level = shared_levels[-1] if shared_levels else None
    elif level not in shared_levels:
        raise InputError(f"level {level} is not scored in both runs (both have: "
                         f"{', '.join(map(str, shared_levels)) or 'none'})", field="level")
    ka = ra[ra["level"] == level].set_index("class")["recall"] if level is not None else pd.Series(dtype=float)
    kb = rb[rb["level"] == level].set_index("class")["recall"] if level is not None else pd.Series(dtype=float)
    rows = []
    for c in list(dict.fromkeys([*na, *nb])):
        x, y = na.get(c, []), nb.get(c, [])
        rank_x = {n: i + 1 for i, n in enumerate(x)}
        rank_y = {n: i + 1 for i, n in enumerate(y)}
        moved = [f"{n} {rank_x[n]}→{rank_y[n]}" for n in y if n in rank_x and rank_x[n] != rank_y[n]]
        before = float(ka.get(c, np.nan)) if c in ka.index else np.nan
        after = float(kb.get(c, np.nan)) if c in kb.index else np.nan
        rows.append({"class": c, "added": "; ".join(n for n in y if n not in rank_x),
                     "removed": "; ".join(n for n in x if n not in rank_y), "reranked": "; ".join(moved),
                     "names_before": len(x), "names_after": len(y), "level": level,
                     "recall_before": before, "recall_after": after, "recall_change": after - before})
    return pd.DataFrame(rows, columns=NAMES_COMPARISON_COLUMNS)


def labels_differ(ref: dict, other: dict) -> bool:
    """Whether two run configs resolved different names (what :func:`compare_names` is for)."""
    a, b = _ranked_names(ref), _ranked_names(other)
    return bool(a) and bool(b) and a != b
