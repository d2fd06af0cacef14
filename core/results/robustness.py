"""Reading a run's robustness results: the images a perturbation broke.

``robustness_predictions.csv`` (written by :mod:`core.pipeline.robustness`) holds, per image and
system, the perturbed and the clean credit; a *broken* image is one the system got right on the
clean image (credit 1) and wrong on the perturbed one (credit 0; a tie is neither).
:class:`BrokenImages` is a drill-down selection like those of :mod:`core.results.drilldown`, so
the app's gallery shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from core.results.drilldown import FULL_CREDIT, GALLERY_COLUMNS

ROBUSTNESS_FILE = "robustness.csv"
PREDICTIONS_FILE = "robustness_predictions.csv"


def read_robustness(run_dir: str | Path) -> pd.DataFrame:
    """robustness.csv of a run (empty when the run has none)."""
    p = Path(run_dir) / ROBUSTNESS_FILE
    if not p.is_file() or not p.stat().st_size:
        return pd.DataFrame()
    return pd.read_csv(p, keep_default_na=False, na_values=[""])


def broken(predictions: pd.DataFrame) -> pd.Series:
    """Rows whose clean image was right and whose perturbed copy is wrong."""
    return (predictions["clean_credit"].astype(float) >= FULL_CREDIT) & (predictions["credit"].astype(float) <= 1e-9)


@dataclass(frozen=True)
class BrokenImages:
    """The images ``backbone`` (a backbone, ``oracle`` or a fixed ensemble) got right clean and wrong
    under ``perturbation`` at ``severity``, at ``level`` names per class."""

    backbone: str
    perturbation: str
    severity: int
    level: int

    @property
    def title(self) -> str:
        return (f"images {self.perturbation} (severity {self.severity}) broke · {self.backbone}, "
                f"{self.level} name(s) per class")

    def rows(self, run) -> pd.DataFrame:
        """Gallery rows (:data:`core.results.drilldown.GALLERY_COLUMNS`); ``run`` has a ``dir``."""
        d = _read_predictions(Path(run.dir))
        if d is None:
            return pd.DataFrame(columns=GALLERY_COLUMNS)
        d = d[(d["backbone"].astype(str) == self.backbone) & (d["perturbation"].astype(str) == self.perturbation)
              & (d["severity"].astype(int) == int(self.severity)) & (d["level"].astype(int) == int(self.level))]
        d = d[broken(d)]
        pred = d["predicted_class"].fillna("").astype(str)
        out = pd.DataFrame({
            "image": d["image"].to_numpy(), "true_class": d["true_class"].to_numpy(), "predicted_label": "",
            "predicted_class": pred.to_numpy(), "score": np.nan, "correct": 0, "level": self.level,
            "backbone": self.backbone, "group": f"broken by {self.perturbation} {self.severity}",
            "detail": [f"right on the clean image; {('predicted ' + p) if p else 'wrong'} when perturbed"
                       for p in pred],
            "owners": pred.to_numpy(),
        })
        return out.reindex(columns=GALLERY_COLUMNS).reset_index(drop=True)


def _read_predictions(run_dir: Path) -> Optional[pd.DataFrame]:
    p = run_dir / PREDICTIONS_FILE
    if not p.is_file() or not p.stat().st_size:
        return None
    return pd.read_csv(p, keep_default_na=False, na_values=[""])
