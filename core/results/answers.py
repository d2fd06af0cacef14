"""What generative backbones answered, and how a VLM's per-class accuracy compares with CLIP's.

Reads ``answers.csv`` (``backbone, image, level, answer, matched_names, matched_classes,
credit``; ``true_class`` when the writer recorded it) and turns it into the tables the app
and notebooks show: answers grouped by class with counts, each image's answer for the
gallery, and per-class accuracy of a VLM next to a CLIP backbone against class frequency.
Plain pandas and scipy, no Qt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from core.labels.controls import SYNONYMS
from core.util.names import name_key

ANSWERS_FILE = "answers.csv"
GENERATIVE_KINDS = ("vlm", "openai")  # run.json backbones[].kind of vision-language models
ANSWER_COLUMNS = ["backbone", "image", "level", "answer", "matched_names", "matched_classes", "credit"]
BY_CLASS_COLUMNS = ["backbone", "true_class", "answer", "count", "share", "matched_classes", "credit", "matched"]


ARTICLES = ("a", "an", "the")


def answer_key(text: str) -> str:
    """Answers that count as the same: :func:`~core.util.names.name_key` without a leading article
    ("A kitty." and "Kitties" are one answer)."""
    words = name_key(text).split()
    while len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    return " ".join(words)


def one_line(text: str, limit: Optional[int] = None) -> str:
    """An answer for display on one line: line breaks and tabs as spaces, other control characters
    as "·", cut at ``limit`` characters with "…" (the raw answer stays as it is in the data)."""
    text = " ".join(str(text).split())
    text = "".join(ch if ch.isprintable() else "·" for ch in text)
    return text if limit is None or len(text) <= limit else text[: max(limit - 1, 0)] + "…"


# ---------------------------------------------------------------- answers.csv

def read_answers(run_dir: str | Path) -> Optional[pd.DataFrame]:
    """``answers.csv`` of a run, raw answers kept exactly (an answer "None" or "NA" stays text);
    None when the run has no such file."""
    p = Path(run_dir) / ANSWERS_FILE
    if not p.is_file():
        return None
    df = pd.read_csv(p, dtype={"answer": str, "matched_names": str, "matched_classes": str, "image": str},
                     keep_default_na=False, na_values={"credit": [""], "level": [""]})
    for c in ANSWER_COLUMNS:
        if c not in df:
            df[c] = "" if c not in ("level", "credit") else np.nan
    df["credit"] = pd.to_numeric(df["credit"], errors="coerce").fillna(0.0)
    df["level"] = pd.to_numeric(df["level"], errors="coerce")
    return df


def with_true_class(answers: pd.DataFrame, predictions: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """``answers`` with a ``true_class`` column: its own when written, else each image's from predictions.csv."""
    if "true_class" in answers and answers["true_class"].astype(str).str.len().gt(0).all():
        return answers.assign(true_class=answers["true_class"].astype(str))
    truth: dict[str, str] = {}
    if predictions is not None and len(predictions) and {"image", "true_class"} <= set(predictions.columns):
        p = predictions.drop_duplicates("image")
        truth = dict(zip(p["image"].astype(str), p["true_class"].astype(str)))
    return answers.assign(true_class=[truth.get(i, "") for i in answers["image"].astype(str)])


def answers_at_level(answers: pd.DataFrame, level: Optional[int] = None) -> pd.DataFrame:
    """Rows of one level; without a level, each image's row at its backbone's highest level
    (levels are nested, so an answer unmatched there is unmatched at every level)."""
    if answers.empty:
        return answers
    if level is not None:
        return answers[answers["level"] == level]
    top = answers.groupby(["backbone", "image"])["level"].transform("max")
    return answers[answers["level"] == top]


def answers_by_class(answers: pd.DataFrame, backbone: Optional[str] = None, level: Optional[int] = None,
                     predictions: Optional[pd.DataFrame] = None,
                     classes: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Answers per (backbone, true class), most frequent first.

    Answers that differ only in case, punctuation, a leading article or a plural are one row (shown in their most
    common form). ``count`` is how many images gave it, ``share`` its part of the class's
    answers, ``matched_classes`` what it matched (its most common matching), ``credit`` its mean
    credit, ``matched`` False for an answer that named no class. Classes follow ``classes``
    when given, else their names' order.
    """
    if answers is None or answers.empty:
        return pd.DataFrame(columns=BY_CLASS_COLUMNS)
    df = with_true_class(answers, predictions)
    if backbone is not None:
        df = df[df["backbone"].astype(str) == backbone]
    df = answers_at_level(df, level)
    if df.empty:
        return pd.DataFrame(columns=BY_CLASS_COLUMNS)
    df = df.assign(backbone=df["backbone"].astype(str), answer=df["answer"].fillna("").astype(str),
                   matched_classes=df["matched_classes"].fillna("").astype(str))
    df["key"] = df["answer"].map(answer_key)
    keys = ["backbone", "true_class", "key"]
    g = df.groupby(keys, sort=False)
    out = pd.concat([
        g["answer"].agg(lambda s: s.value_counts().index[0]).rename("answer"),
        g.size().rename("count"),
        g["matched_classes"].agg(lambda s: s.value_counts().index[0]).rename("matched_classes"),
        g["credit"].mean().rename("credit"),
    ], axis=1).reset_index()
    n_class = df.groupby(["backbone", "true_class"]).size().rename("n")
    out = out.join(n_class, on=["backbone", "true_class"])
    out["share"] = out["count"] / out["n"]
    out["matched"] = out["matched_classes"] != ""
    order = {c: i for i, c in enumerate(classes or sorted(out["true_class"].unique()))}
    out["_class"] = out["true_class"].map(order).fillna(len(order))
    out = out.sort_values(["backbone", "_class", "true_class", "count", "answer"],
                          ascending=[True, True, True, False, True], kind="stable")
    return out[BY_CLASS_COLUMNS].reset_index(drop=True)


def image_answers(answers: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Gallery rows (image, backbone, level) with each image's ``answer`` and ``answer_classes``.

    The answer at the row's level when one was recorded there, else the image's answer at any
    level (an open answer is one per image). Rows of backbones without answers get "".
    """
    out = rows.copy()
    if answers is None or answers.empty or rows.empty:
        out["answer"], out["answer_classes"] = "", ""
        return out
    a = answers.assign(image=answers["image"].astype(str), backbone=answers["backbone"].astype(str))
    exact = {(b, i, int(lv)): (ans, m) for b, i, lv, ans, m in
             zip(a["backbone"], a["image"], a["level"].fillna(-1), a["answer"], a["matched_classes"])}
    any_level = {(b, i): v for (b, i, _lv), v in exact.items()}
    got = []
    for b, i, lv in zip(out["backbone"].astype(str), out["image"].astype(str), out["level"]):
        lv = int(lv) if pd.notna(lv) else -1
        got.append(exact.get((b, i, lv)) or any_level.get((b, i)) or ("", ""))
    out["answer"] = [g[0] for g in got]
    out["answer_classes"] = [g[1] for g in got]
    return out


# ---------------------------------------------------------------- VLM next to CLIP

def backbone_kinds(meta: dict) -> dict[str, str]:
    """Backbone name -> kind, from run.json (a backbone written without a kind is open_clip)."""
    return {str(b.get("name", "")): str(b.get("kind") or "open_clip") for b in meta.get("backbones", []) or []
            if isinstance(b, dict)}


def split_kinds(meta: dict) -> tuple[list[str], list[str]]:
    """(VLM backbones, CLIP backbones) of a run, in run order."""
    kinds = backbone_kinds(meta)
    return ([b for b, k in kinds.items() if k in GENERATIVE_KINDS],
            [b for b, k in kinds.items() if k not in GENERATIVE_KINDS])


def _spearman(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    """Spearman's rho and p, NaN with fewer than 3 classes or a constant side (as frequency.csv)."""
    from scipy.stats import spearmanr

    if len(x) < 3 or x.nunique() < 2 or y.nunique() < 2:
        return float("nan"), float("nan")
    rho, p = spearmanr(x, y)
    return float(rho), float(p)


def _recalls(frequency: pd.DataFrame, per_class: pd.DataFrame, backbone: str, level: int) -> pd.Series:
    """Per-class recall of one backbone at one level: frequency.csv's, else per_class.csv's (mean
    over orderings, the labels file's names)."""
    if len(frequency) and backbone in set(frequency["backbone"].astype(str)):
        f = frequency[(frequency["backbone"].astype(str) == backbone) & (frequency["level"] == level)]
        return f.groupby(f["class"].astype(str))["recall"].mean()
    if per_class is None or per_class.empty:
        return pd.Series(dtype=float)
    p = per_class[(per_class["backbone"].astype(str) == backbone) & (per_class["level"] == level)]
    if "names" in p:
        p = p[p["names"].astype(object).fillna(SYNONYMS).astype(str) == SYNONYMS]
    return p.groupby(p["class"].astype(str))["recall"].mean()


COMPARISON_COLUMNS = ["class", "frequency", "log_frequency", "recall_vlm", "recall_clip", "difference"]


def vlm_clip_frequency(frequency: pd.DataFrame, per_class: Optional[pd.DataFrame], vlm: str, clip: str,
                       level: int) -> tuple[pd.DataFrame, dict]:
    """Per-class recall of a VLM and a CLIP backbone against class frequency, and their difference.

    ``frequency`` is frequency.csv (its ``frequency``/``log_frequency`` per class); recalls come
    from it, or from ``per_class`` for a backbone it lacks. Returns (rows with
    :data:`COMPARISON_COLUMNS`, difference = VLM − CLIP; summary ``{"vlm"|"clip"|"difference":
    (rho, p)}``, Spearman against frequency over classes both backbones scored).
    """
    empty = pd.DataFrame(columns=COMPARISON_COLUMNS)
    nan = (float("nan"), float("nan"))
    if frequency is None or frequency.empty:
        return empty, {"vlm": nan, "clip": nan, "difference": nan, "n_classes": 0}
    f = frequency.drop_duplicates("class").assign(**{"class": lambda d: d["class"].astype(str)}).set_index("class")
    table = pd.DataFrame({"recall_vlm": _recalls(frequency, per_class, vlm, level),
                          "recall_clip": _recalls(frequency, per_class, clip, level)}).dropna()
    table = table.join(f[["frequency", "log_frequency"]], how="inner").dropna(subset=["frequency"])
    if table.empty:
        return empty, {"vlm": nan, "clip": nan, "difference": nan, "n_classes": 0}
    table["difference"] = table["recall_vlm"] - table["recall_clip"]
    table = table.rename_axis("class").reset_index().sort_values("log_frequency", kind="stable")
    summary = {"vlm": _spearman(table["frequency"], table["recall_vlm"]),
               "clip": _spearman(table["frequency"], table["recall_clip"]),
               "difference": _spearman(table["frequency"], table["difference"]),
               "n_classes": len(table)}
    return table[COMPARISON_COLUMNS].reset_index(drop=True), summary
