"""Reading names.csv: the most harmful names, a sentence for each, and the images behind a name.

Shared by the app's Names view, the report and scripts (Qt-free). names.csv itself is
written by the sweep (:mod:`core.stats.names` has the definitions).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from core.labels.controls import SYNONYMS
from core.util.errors import InputError

NAME_KEY = ["backbone", "names", "ordering", "class", "name"]


def _winners(predictions: pd.DataFrame) -> pd.DataFrame:
    """predictions.csv with one row per (image, owning class) of its winning name, and that class's share."""
    if not len(predictions):
        return pd.DataFrame(columns=[*predictions.columns, "class", "share"])
    p = predictions.copy()
    if "names" not in p.columns:
        p["names"] = SYNONYMS
    owners = p["predicted_classes"] if "predicted_classes" in p.columns else p["predicted_class"]
    p["class"] = owners.fillna(p["predicted_class"]).astype(str).str.split("|")
    p = p.explode("class")
    n = p["n_owners"] if "n_owners" in p.columns else 1
    p["share"] = 1.0 / np.maximum(pd.to_numeric(n, errors="coerce").fillna(1), 1)
    return p.rename(columns={"predicted_label": "name"})


def victim_classes(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per (backbone, names, ordering, level, class, name): how many other classes its won images belong to
    (flat mode, from predictions.csv)."""
    w = _winners(predictions)
    w = w[w["class"] != w["true_class"]]
    keys = ["backbone", "names", "ordering", "level", "class", "name"]
    if not len(w):
        return pd.DataFrame(columns=[*keys, "n_other_classes"])
    return w.groupby(keys)["true_class"].nunique().rename("n_other_classes").reset_index()


def harmful_names(df: pd.DataFrame, top: Optional[int] = 20, backbone: Optional[str] = None,
                  level: Optional[int] = None, names: str = SYNONYMS, ordering: int = 0,
                  predictions: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """The most harmful names of a run, worst first: each (backbone, class, name) at its worst level.

    Harm is the credit the name costs the run (most negative ``credit_change``), then the images it
    takes from other classes (``won_from_other_classes``). Names that cost nothing and take nothing
    are left out. With ``predictions`` (predictions.csv) a column ``n_other_classes`` says from how
    many classes the images were taken (flat mode).
    """
    d = df[(df["names"] == names) & (df["ordering"] == ordering)]
    if backbone is not None:
        d = d[d["backbone"] == backbone]
    if level is not None:
        d = d[d["level"] == level]
    d = d[(d["credit_change"] < 0) | (d["won_from_other_classes"] > 0)]
    d = d.sort_values(["credit_change", "won_from_other_classes", "level"], ascending=[True, False, True],
                      kind="stable")
    d = d.drop_duplicates(NAME_KEY, keep="first")
    if predictions is not None:
        d = d.merge(victim_classes(predictions), on=["backbone", "names", "ordering", "level", "class", "name"],
                    how="left")
        d["n_other_classes"] = d["n_other_classes"].fillna(0).astype(int)
    d = d.reset_index(drop=True)
    return d.head(top) if top is not None else d


def _count(v: float) -> str:
    v = float(v)
    return f"{int(round(v))}" if abs(v - round(v)) < 1e-6 else f"{v:.1f}"


def name_sentence(row, n_other_classes: Optional[int] = None) -> str:
    """"*figure* (circle) takes 41 images from 3 other classes at level 8" for a names.csv row
    (a dict or Series; ``n_other_classes`` defaults to the row's own column when it has one)."""
    row = dict(row)
    if n_other_classes is None and "n_other_classes" in row and pd.notna(row["n_other_classes"]):
        n_other_classes = int(row["n_other_classes"])
    taken = float(row.get("won_from_other_classes") or 0)
    change = row.get("credit_change")
    head = f"*{row['name']}* ({row['class']})"
    if taken > 0:
        images = f"{_count(taken)} image{'s' if _count(taken) != '1' else ''}"
        where = ("other classes" if n_other_classes is None
                 else f"{n_other_classes} other class{'es' if n_other_classes != 1 else ''}")
        text = f"{head} takes {images} from {where} at level {int(row['level'])}"
    else:
        text = f"{head} at level {int(row['level'])}"
    if change is not None and pd.notna(change) and float(change) != 0:
        verb = "costs" if float(change) < 0 else "adds"
        text += f"{',' if taken > 0 else ''} {verb} {_count(abs(float(change)))} correct"
    return text


def name_images(run, backbone: str, level: int, cls: str, name: str, ordering: int = 0,
                names: str = SYNONYMS) -> pd.DataFrame:
    """The images a name won at a level, for the gallery: ``image, true_class, share, taken`` (``taken``:
    the image belongs to another class; ``share`` is 1/m under an m-way tie).

    Flat mode reads predictions.csv (the winning name of each image). Pooled mode has no winning
    name: it lists the images the class wins at this level and did not win at the level before
    (what the names entering at this level brought, together).
    """
    pred = run.predictions
    if not len(pred):
        raise InputError("this run has no predictions.csv rows (--no-predictions?)", file=run.dir)
    w = _winners(pred)
    w = w[(w["backbone"] == backbone) & (w["ordering"] == ordering) & (w["names"] == names) & (w["class"] == cls)]
    here = w[w["level"] == level]
    if (run.config or {}).get("mode", "flat") == "pooled":
        levels = sorted(int(v) for v in w["level"].unique())
        before = [k for k in levels if k < level]
        if before:
            had = set(w.loc[w["level"] == before[-1], "image"])
            here = here[~here["image"].isin(had)]
    else:
        here = here[here["name"] == name]
    out = here[["image", "true_class", "share"]].copy()
    out["taken"] = out["true_class"] != cls
    return out.reset_index(drop=True)


def taken_by_class(images: pd.DataFrame) -> pd.DataFrame:
    """From :func:`name_images`: how many images (credit shares) the name took from each true class, most first."""
    t = images[images["taken"]]
    return (t.groupby("true_class")["share"].agg(["sum", "count"]).rename(columns={"sum": "images", "count": "n"})
            .sort_values("images", ascending=False).reset_index())
