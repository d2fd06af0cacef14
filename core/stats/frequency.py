"""Class frequency: does per-class accuracy follow how often a class occurs in training data?

A frequency comes from a user's CSV (e.g. counts of the class name in the model's
pretraining captions) or from a built-in source: ``wordfreq`` gives each class's web-text
word frequency (:func:`wordfreq_frequencies`). That is a proxy, not pretraining counts;
it stands in for the finding that zero-shot accuracy is log-linear in how often a concept
occurs in the pretraining data (Udandarao et al., 2024).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from core.util.errors import InputError
from core.util.tables import read_user_csv


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


WORDFREQ = "wordfreq"
FREQUENCY_SOURCES = (WORDFREQ,)  # built-in sources a class-frequency setting may name instead of a file
ALL_NAMES_COLUMN = "frequency_all_names"


@dataclass(frozen=True)
class ClassFrequency(Mapping):
    """Frequency per class (a read-only mapping) plus optional extra columns for ``frequency.csv``.

    ``source`` is the CSV path or the built-in source's name; ``extra`` maps a column name
    to values per class (``frequency_all_names`` for wordfreq). ``log_frequency`` is
    ``log10(frequency * per + 1)``: counts as given (``per`` 1), and wordfreq's shares of
    all words per 10^9 words (``per`` 1e9, wordfreq's Zipf scale), so tiny shares do not
    all collapse to 0.
    """

    by_class: dict[str, float]
    source: str
    extra: dict[str, dict[str, float]] = field(default_factory=dict)
    per: float = 1.0

    def __getitem__(self, cls: str) -> float:
        return self.by_class[cls]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_class)

    def __len__(self) -> int:
        return len(self.by_class)


def is_frequency_source(spec: str | Path) -> bool:
    """Is a class-frequency setting a built-in source rather than a CSV file?

    A file of that name wins; a missing path whose name is a source (a study file's
    ``class_frequency = "wordfreq"`` resolved against the study folder) is the source.
    """
    p = Path(str(spec)).expanduser()
    return p.name.lower() in FREQUENCY_SOURCES and not p.is_file()


def wordfreq_frequencies(names: Mapping[str, Sequence[str]], lang: str = "en") -> ClassFrequency:
    """wordfreq's web-text frequency of each class's canonical (first) name, and its sum
    over all the class's names (``frequency_all_names``; a name listed twice counts once).

    Frequencies are wordfreq's: the share of words in its mix of web, subtitle, news and
    book text (multi-word names are combined by wordfreq itself), not pretraining counts.
    """
    try:
        from wordfreq import word_frequency
    except ImportError:
        raise InputError("the wordfreq frequency source needs the wordfreq package: pip install wordfreq",
                         field="class-frequency") from None
    from core.util.names import display_name as clean_name

    canonical: dict[str, float] = {}
    total: dict[str, float] = {}
    for cls, ns in names.items():
        ns = list(dict.fromkeys(clean_name(n) for n in ns if clean_name(n))) or [clean_name(cls)]
        freqs = [float(word_frequency(n, lang)) for n in ns]
        canonical[cls] = freqs[0]
        total[cls] = float(sum(freqs))
    return ClassFrequency(canonical, WORDFREQ, {ALL_NAMES_COLUMN: total}, per=1e9)


def class_frequency(spec: str | Path, names: Mapping[str, Sequence[str]]) -> ClassFrequency:
    """The class frequencies a run's setting names: a CSV file or a built-in source."""
    if is_frequency_source(spec):
        return wordfreq_frequencies(names)
    return ClassFrequency(load_class_frequency(spec), str(spec))


def frequency_table(per_class: pd.DataFrame, freq: Mapping[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows per backbone/level/class with log-frequency, Spearman summary per backbone/level).

    ``per_class`` needs columns backbone, level, class, recall. Classes without a
    frequency or without images are left out of the correlation. A
    :class:`ClassFrequency`'s extra columns follow ``log_frequency``.
    """
    from scipy.stats import spearmanr

    df = per_class[["backbone", "level", "class", "n_images", "recall"]].copy()
    df["frequency"] = df["class"].map(dict(freq))
    df = df.dropna(subset=["frequency", "recall"])
    df["log_frequency"] = np.log10(df["frequency"] * float(getattr(freq, "per", 1.0)) + 1.0)
    for column, values in getattr(freq, "extra", {}).items():
        df[column] = df["class"].map(values)
    summary = []
    for (bb, lvl), g in df.groupby(["backbone", "level"], sort=False):
        if len(g) >= 3 and g["recall"].nunique() > 1 and g["frequency"].nunique() > 1:
            rho, p = spearmanr(g["frequency"], g["recall"])
        else:
            rho, p = float("nan"), float("nan")
        summary.append({"backbone": bb, "level": lvl, "n_classes": len(g), "spearman_rho": float(rho), "p_value": float(p)})
    return df.reset_index(drop=True), pd.DataFrame(summary)
