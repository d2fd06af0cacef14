"""Predictions of another system (e.g. a generative VLM's answers) as a pseudo-backbone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .labels import LabelSet
from .names import name_key
from .tables import read_user_csv


@dataclass
class ExternalPredictions:
    name: str
    path: str
    pred: dict[str, int]  # image id -> class index (-1: an answer that names no class)
    unmatched_answers: dict[str, int] = field(default_factory=dict)  # answer -> count

    def for_images(self, ids: Sequence[str]) -> np.ndarray:
        """Class index per image id; -1 where the system gave no usable answer."""
        return np.array([self.pred.get(i, -1) for i in ids], dtype=np.int64)

    def coverage(self, ids: Sequence[str]) -> float:
        return float(np.mean([i in self.pred for i in ids])) if len(ids) else 0.0


def load_external_predictions(spec: str, labels: LabelSet) -> ExternalPredictions:
    """``NAME=FILE`` or ``FILE``: a CSV ``image,predicted_class``.

    Answers are matched to classes by class name or any of the class's synonyms (case and
    punctuation ignored), so a VLM answering "puppy" counts for the class whose names
    include it. Answers naming no class count as wrong and are reported.
    """
    name, _, file = spec.partition("=") if "=" in spec else (Path(spec).stem, "", spec)
    path = Path(file)
    df = read_user_csv(path, ("image", "predicted_class"), "external predictions")
    lookup: dict[str, int] = {}
    for ci, c in enumerate(labels.classes):
        lookup.setdefault(name_key(c), ci)
    for ci, c in enumerate(labels.classes):
        for n in labels.names[c]:
            lookup.setdefault(name_key(n), ci)
    pred: dict[str, int] = {}
    unmatched: dict[str, int] = {}
    for i, (img, ans) in enumerate(zip(df["image"], df["predicted_class"])):
        img = img.strip().lstrip("./") if img.strip().startswith("./") else img.strip()
        if not img:
            raise InputError("empty image path", file=path, line=i + 2, field="image")
        if img in pred:
            raise InputError(f"image '{img}' listed twice", file=path, line=i + 2, field="image")
        ci = lookup.get(name_key(ans), -1)
        if ci < 0:
            unmatched[ans] = unmatched.get(ans, 0) + 1
        pred[img] = ci
    return ExternalPredictions(name=name, path=str(path), pred=pred, unmatched_answers=unmatched)
