"""Predictions of another system (e.g. a generative VLM's answers) as a pseudo-backbone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from core.util.errors import InputError
from core.labels.labelset import LabelSet
from core.util.names import name_key
from core.util.tables import read_user_csv


@dataclass
class ExternalPredictions:
    name: str
    path: str
    pred: dict[str, int]  # image id -> class index (-1: an answer that names no class, or a shared name)
    unmatched_answers: dict[str, int] = field(default_factory=dict)  # answer -> count
    shared: dict[str, tuple[int, ...]] = field(default_factory=dict)  # image id -> classes an answer's name is listed under

    def for_images(self, ids: Sequence[str]) -> np.ndarray:
        """Class index per image id; -1 where the system gave no usable answer (or named a shared name)."""
        return np.array([self.pred.get(i, -1) for i in ids], dtype=np.int64)

    def choices(self, ids: Sequence[str], n_classes: int) -> np.ndarray:
        """[N, C] choice per image under the tie policy: an answer that is a name listed under
        m classes (and is no class's own name) is worth 1/m to each; no answer is a zero row."""
        out = np.zeros((len(ids), n_classes), dtype=np.float32)
        for r, i in enumerate(ids):
            if self.pred.get(i, -1) >= 0:
                out[r, self.pred[i]] = 1.0
            elif i in self.shared:
                out[r, list(self.shared[i])] = 1.0 / len(self.shared[i])
        return out

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
    # a class's own name names that class; any other name names every class that lists it
    by_class = {name_key(c): (ci,) for ci, c in enumerate(labels.classes)}
    by_name: dict[str, set[int]] = {}
    for ci, c in enumerate(labels.classes):
        for n in labels.names[c]:
            by_name.setdefault(name_key(n), set()).add(ci)
    lookup = {**{k: tuple(sorted(v)) for k, v in by_name.items()}, **by_class}
    pred: dict[str, int] = {}
    shared: dict[str, tuple[int, ...]] = {}
    unmatched: dict[str, int] = {}
    for i, (img, ans) in enumerate(zip(df["image"], df["predicted_class"])):
        img = img.strip()
        while img.startswith("./"):  # the prefix, not the characters: "./.hidden/a.png" keeps ".hidden"
            img = img[2:]
        if not img:
            raise InputError("empty image path", file=path, line=i + 2, field="image")
        if img in pred:
            raise InputError(f"image '{img}' listed twice", file=path, line=i + 2, field="image")
        owners = lookup.get(name_key(ans), ())
        if not owners:
            unmatched[ans] = unmatched.get(ans, 0) + 1
        if len(owners) > 1:
            shared[img] = owners
        pred[img] = owners[0] if len(owners) == 1 else -1
    return ExternalPredictions(name=name, path=str(path), pred=pred, unmatched_answers=unmatched, shared=shared)
