"""Matching a model's free-text answer to the classes of a level, and the credit it earns.

Names and answers are compared word by word through the project's one name normaliser
(:func:`core.util.names.name_key`: case, accents, punctuation and simple plurals ignored), and a
name matches only as whole words: "no" is not found in "notice", "cat" not in "category",
and "A. Tabby cats." contains "tabby cat". The published rule (Zhang et al. 2024,
``label.lower() in answer.lower()``) is available as ``rule="substring"``.

Credit follows the tie policy: an answer that matches the true class only earns 1, one that
matches m classes including the true one 1/m, any other 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from core.util.names import display_name, name_key

MATCH_RULES = ("word", "substring")


def words(text: str) -> tuple[str, ...]:
    """Normalised words of a name or an answer (each word keyed alone, so every plural is reduced)."""
    return tuple(w for part in name_key(text).split() for w in name_key(part).split())


@dataclass
class Match:
    """What one answer matched at one level."""

    names: list[str] = field(default_factory=list)  # matched names (as written in the label set)
    classes: list[str] = field(default_factory=list)  # their classes, each once, in the level's order
    credit: float = 0.0


class AnswerMatcher:
    """The names of one level (``{class: [names…]}``) indexed for matching many answers."""

    def __init__(self, names_by_class: Mapping[str, Sequence[str]], rule: str = "word") -> None:
        if rule not in MATCH_RULES:
            raise ValueError(f"unknown match rule '{rule}' (choose from {', '.join(MATCH_RULES)})")
        self.rule = rule
        self.class_order = {c: i for i, c in enumerate(names_by_class)}
        self._by_words: dict[tuple[str, ...], list[tuple[str, str]]] = {}  # word tuple -> [(name, class)]
        self._lower: list[tuple[str, str, str]] = []  # (lower display name, name, class) for the substring rule
        for cls, names in names_by_class.items():
            for n in names:
                w = words(n)
                if w:
                    self._by_words.setdefault(w, []).append((n, cls))
                low = display_name(n).lower()
                if low:
                    self._lower.append((low, n, cls))
        self._longest = max((len(w) for w in self._by_words), default=0)

    def match(self, answer: str | None, true_class: str | None = None) -> Match:
        """Names and classes found in ``answer`` and the credit for ``true_class``."""
        if not answer:
            return Match()
        found: list[tuple[str, str]] = []
        if self.rule == "substring":
            text = answer.lower()
            found = [(n, c) for low, n, c in self._lower if low in text]
        else:
            aw = words(answer)
            for i in range(len(aw)):
                for k in range(1, min(self._longest, len(aw) - i) + 1):
                    found.extend(self._by_words.get(aw[i : i + k], ()))
        names = list(dict.fromkeys(n for n, _ in found))
        classes = sorted({c for _, c in found}, key=self.class_order.__getitem__)
        return Match(names, classes, credit(classes, true_class))


def credit(matched_classes: Sequence[str], true_class: str | None) -> float:
    """1 for the true class alone, 1/m for m classes including it, else 0."""
    if true_class is None or true_class not in matched_classes:
        return 0.0
    return 1.0 / len(set(matched_classes))


def match_answers(answers: Iterable[str | None], true_classes: Iterable[str | None],
                  names_by_class: Mapping[str, Sequence[str]], rule: str = "word") -> list[Match]:
    """:meth:`AnswerMatcher.match` for many answers against one level's names."""
    m = AnswerMatcher(names_by_class, rule)
    return [m.match(a, t) for a, t in zip(answers, true_classes)]


# ---------------------------------------------------------------- answers.csv

ANSWER_COLUMNS = ["backbone", "image", "level", "answer", "matched_names", "matched_classes", "credit", "true_class"]


def answer_rows(backbone: str, images: Sequence[str], true_classes: Sequence[str], answers: Sequence[str | None],
                level: int, names_by_class: Mapping[str, Sequence[str]], rule: str = "word") -> list[dict]:
    """``answers.csv`` rows of one backbone at one level (an image without an answer gets none).

    The raw answer is kept exactly; matched names and classes are joined by ``|``.
    """
    matcher = AnswerMatcher(names_by_class, rule)
    rows = []
    for img, true, ans in zip(images, true_classes, answers):
        if ans is None:
            continue
        m = matcher.match(ans, true)
        rows.append({"backbone": backbone, "image": img, "level": level, "answer": ans,
                     "matched_names": "|".join(m.names), "matched_classes": "|".join(m.classes),
                     "credit": m.credit, "true_class": true})
    return rows


def unmatched_share(rows: Sequence[Mapping]) -> float | None:
    """Share of answers that matched no class (None without answers)."""
    if not rows:
        return None
    return sum(1 for r in rows if not r["matched_classes"]) / len(rows)


def frequent_unmatched(answers, top: int = 5):
    """The most frequent answers that matched no class, per backbone and true class.

    ``answers`` is ``answers.csv`` as a DataFrame. Each image counts once per backbone, at its
    highest level (levels are nested, so an answer unmatched there is unmatched at every
    level); answers are grouped by their normalised words and shown in their most common form.
    Columns: ``backbone, true_class, answer, count, share`` (share of the class's answers).
    """
    import pandas as pd

    cols = ["backbone", "true_class", "answer", "count", "share"]
    if answers is None or answers.empty:
        return pd.DataFrame(columns=cols)
    df = answers.copy()
    df["matched_classes"] = df["matched_classes"].fillna("").astype(str)
    df["answer"] = df["answer"].fillna("").astype(str)
    top_level = df.groupby(["backbone", "image"])["level"].transform("max")
    df = df[df["level"] == top_level]
    per_class = df.groupby(["backbone", "true_class"]).size().rename("n_answers")
    un = df[df["matched_classes"] == ""].copy()
    if un.empty:
        return pd.DataFrame(columns=cols)
    un["key"] = [" ".join(words(a)) for a in un["answer"]]
    shown = (un.groupby(["backbone", "true_class", "key"])["answer"]
             .agg(lambda s: s.value_counts().index[0]).rename("answer"))
    counts = un.groupby(["backbone", "true_class", "key"]).size().rename("count")
    out = pd.concat([shown, counts], axis=1).reset_index().join(per_class, on=["backbone", "true_class"])
    out["share"] = out["count"] / out["n_answers"]
    out = out.sort_values(["backbone", "true_class", "count", "answer"], ascending=[True, True, False, True])
    return out.groupby(["backbone", "true_class"], sort=False).head(top)[cols].reset_index(drop=True)
