"""Class frequency: does per-class accuracy follow how often a class occurs in training data?"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .tables import read_user_csv


def load_class_frequency(path: str | Path) -> dict[str, float]:
    """CSV ``class,frequency`` (e.g. counts of the class name in a training corpus)."""
    df = read_user_csv(path, ("class", "frequency"), "class-frequency")
    out: dict[str, float] = {}
    for i, (c, f) in enumerate(zip(df["class"], df["frequency"])):
        line = i + 2
        c = c.strip()
        if not c:
            raise InputError("empty class name", file=path, line=line, field="class")
        try:
            v = float(f)
        except ValueError:
            raise InputError(f"'{f}' is not a number", file=path, line=line, field="frequency") from None
        if not math.isfinite(v) or v < 0:
            raise InputError(f"frequency must be a non-negative number, got '{f}'", file=path, line=line, field="frequency")
        if c in out:
            raise InputError(f"class '{c}' listed twice", file=path, line=line, field="class")
        out[c] = v
    if not out:
        raise InputError("no rows", file=path)
    return out


def frequency_table(per_class: pd.DataFrame, freq: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows per backbone/level/class with log-frequency, Spearman summary per backbone/level).

    ``per_class`` needs columns backbone, level, class, recall. Classes without a
    frequency or without images are left out of the correlation.
    """
    from scipy.stats import spearmanr

    df = per_class[["backbone", "level", "class", "n_images", "recall"]].copy()
    df["frequency"] = df["class"].map(freq)
    df = df.dropna(subset=["frequency", "recall"])
    df["log_frequency"] = np.log10(df["frequency"] + 1.0)
    summary = []
    for (bb, lvl), g in df.groupby(["backbone", "level"], sort=False):
        if len(g) >= 3 and g["recall"].nunique() > 1 and g["frequency"].nunique() > 1:
            rho, p = spearmanr(g["frequency"], g["recall"])
        else:
            rho, p = float("nan"), float("nan")
        summary.append({"backbone": bb, "level": lvl, "n_classes": len(g), "spearman_rho": float(rho), "p_value": float(p)})
    return df.reset_index(drop=True), pd.DataFrame(summary)
