"""Flips: images whose correctness changes between two levels of one backbone.

A curve that rises and falls says *that* adding names changed something; the flips say
*which* images a new name won or lost, and which category won at each level ("puppy" is
right at level 2, then "orb" wins at level 8). One function computes them from prediction
frames (``predictions.csv`` rows), so the sweep (``flips.csv``, consecutive levels as they
finish), ``semscale flips`` (any pair of levels) and the app share one definition.

A flip is a change of the image's correctness *credit* (``predictions.csv``'s ``credit``:
1 right, 0 wrong, 1/m when its best category is a name shared by m classes including its
own; ``correct`` for runs without it); any change counts (``gained`` when it rises), and
``correct_from`` / ``correct_to`` hold the credit at each level.
Flips are compared within one backbone, one ordering and, when the run has control curves,
one ``names`` kind.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from core.labels.controls import SYNONYMS
from core.util.errors import InputError

FLIP_COLUMNS = ["image", "backbone", "from_level", "to_level", "correct_from", "correct_to", "label_from", "label_to"]
# also written: the image's true class, the class each winning category belongs to, the ordering
EXTRA_COLUMNS = ["true_class", "class_from", "class_to", "ordering"]
GROUP_KEYS = ("backbone", "ordering", "names")  # a curve; flips never cross curves
CREDIT_TOLERANCE = 1e-9


def flip_columns(predictions: pd.DataFrame) -> list[str]:
    """flips.csv columns for these predictions (``names`` only when the run has control curves)."""
    return FLIP_COLUMNS + (["names"] if "names" in predictions.columns else []) + EXTRA_COLUMNS


def credit_column(predictions: pd.DataFrame) -> str:
    """``credit`` (1, 0, or 1/m under an m-way tie) when the predictions have it, else ``correct``."""
    return "credit" if "credit" in predictions.columns else "correct"


def _keys(df: pd.DataFrame) -> list[str]:
    return [k for k in GROUP_KEYS if k in df.columns]


def flips_between(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Flips from the level in ``before`` to the level in ``after`` (each one level's rows).

    Rows are matched on image (and backbone, ordering, names); images present at only one
    of the two levels are not flips. The order of ``after`` is kept.
    """
    if before.empty or after.empty:
        return pd.DataFrame(columns=flip_columns(after if not after.empty else before))
    keys = ["image"] + _keys(after)
    col = credit_column(after)
    a = before[keys + ["level", col, "predicted_label", "predicted_class"]].rename(columns={col: "correct"})
    b = after[keys + ["level", col, "predicted_label", "predicted_class", "true_class"]].rename(columns={col: "correct"})
    m = b.merge(a, on=keys, how="inner", suffixes=("_to", "_from"))
    cf = m["correct_from"].astype(float).to_numpy()
    ct = m["correct_to"].astype(float).to_numpy()
    m = m[np.abs(ct - cf) > CREDIT_TOLERANCE]
    out = pd.DataFrame({
        "image": m["image"], "backbone": m["backbone"] if "backbone" in m else "",
        "from_level": m["level_from"].astype(int), "to_level": m["level_to"].astype(int),
        "correct_from": m["correct_from"], "correct_to": m["correct_to"],
        "label_from": m["predicted_label_from"], "label_to": m["predicted_label_to"],
        "true_class": m["true_class"], "class_from": m["predicted_class_from"], "class_to": m["predicted_class_to"],
        "ordering": m["ordering"] if "ordering" in m else 0,
    })
    if "names" in m:
        out["names"] = m["names"]
    return out.reindex(columns=flip_columns(after)).reset_index(drop=True)


def compute_flips(
    predictions: pd.DataFrame,
    backbone: Optional[str] = None,
    from_level: Optional[int] = None,
    to_level: Optional[int] = None,
    true_class: Optional[str] = None,
    ordering: Optional[int] = None,
    names: Optional[str] = None,
) -> pd.DataFrame:
    """Flips in a predictions frame: between consecutive levels of every curve, or between
    ``from_level`` and ``to_level`` (any two levels) when both are given.

    Filters name what the frame does not hold with an :class:`InputError` naming the field.
    """
    df = predictions
    if (from_level is None) != (to_level is None):
        raise InputError("give both levels (--from K --to L) or neither", field="from" if from_level is None else "to")
    if df.empty:
        return pd.DataFrame(columns=flip_columns(df))
    if backbone is not None:
        known = sorted(map(str, df["backbone"].unique()))
        if backbone not in known:
            raise InputError(f"no backbone '{backbone}' in this run (it has {', '.join(known)})", field="backbone")
        df = df[df["backbone"].astype(str) == backbone]
    if ordering is not None and "ordering" in df.columns:
        df = df[df["ordering"] == ordering]
    if names is not None:
        kinds = sorted(map(str, df["names"].unique())) if "names" in df.columns else [SYNONYMS]
        if names not in kinds:
            raise InputError(f"no '{names}' curve in this run (it has {', '.join(kinds)})", field="names")
        if "names" in df.columns:
            df = df[df["names"].astype(str) == names]
    levels = sorted(int(v) for v in df["level"].unique())
    for name, lv in (("from", from_level), ("to", to_level)):
        if lv is not None and lv not in levels:
            raise InputError(f"level {lv} is not in this run (levels {', '.join(map(str, levels))})", field=name)
    if true_class is not None:
        classes = set(map(str, df["true_class"].unique()))
        if true_class not in classes:
            raise InputError(f"no images of class '{true_class}' in this run", field="class")
        df = df[df["true_class"].astype(str) == true_class]
    pairs: Sequence[tuple[int, int]]
    pairs = [(from_level, to_level)] if from_level is not None else list(zip(levels, levels[1:]))
    keys = _keys(df)
    parts = []
    groups = df.groupby(keys, sort=False, dropna=False) if keys else [((), df)]
    for _, g in groups:
        by_level = {int(k): v for k, v in g.groupby("level", sort=True)}
        for lo, hi in pairs:
            if lo in by_level and hi in by_level:
                parts.append(flips_between(by_level[lo], by_level[hi]))
    if not parts:
        return pd.DataFrame(columns=flip_columns(df))
    return pd.concat(parts, ignore_index=True)


def gained(flips: pd.DataFrame) -> pd.Series:
    """True where the image's credit rose (lost otherwise)."""
    return flips["correct_to"].astype(float) > flips["correct_from"].astype(float)
