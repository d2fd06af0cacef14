"""From a number to the images behind it.

Every plot of a run summarises per-image predictions; a *selection* names the images
behind one of its numbers (a confusion cell, a per-class recall cell, a frequency point,
the flips between two levels, the images only one backbone gets right, or those the oracle
gets and an ensemble does not). ``selection.rows(run_images)`` returns them as a frame with
:data:`GALLERY_COLUMNS`, so the app's gallery, scripts and tests share one definition.

Per-image ensemble predictions are not part of the run directory; they are recomputed
here from ``logits/<backbone>/level_<k>.npy`` (the class scores the sweep saves for
ordering 0) and each backbone's logit scale in ``run.json``, with the same functions the
sweep uses (:mod:`core.stats.ensemble`). The top-5 of an image comes from the same files; a
class's score there is its best category's score (flat mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from core.labels.controls import SYNONYMS
from core.util.errors import InputError
from core.stats.flips import compute_flips, credit_column, gained

GALLERY_COLUMNS = ["image", "true_class", "predicted_label", "predicted_class", "score", "correct", "level",
                   "backbone", "group", "detail", "owners"]  # owners: every class of the winning name ("ball|moon")
ENSEMBLES = {"mean_logits": "mean of logits", "mean_probs": "mean of probabilities", "majority_vote": "majority vote"}
FULL_CREDIT = 1 - 1e-9


@dataclass
class RunImages:
    """What a run directory says about each image: its predictions, and logits when saved."""

    dir: Path
    predictions: pd.DataFrame
    classes: list[str]
    scales: dict[str, float] = field(default_factory=dict)  # backbone -> logit scale
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_run(cls, run) -> "RunImages":
        """From :class:`core.results.runs.Run` (or anything with dir, meta and predictions)."""
        meta = run.meta
        classes = list(meta.get("config", {}).get("labels_resolved") or [])
        if not classes and len(run.predictions):
            classes = sorted(set(map(str, run.predictions["true_class"])))
        return cls(Path(run.dir), run.predictions, classes, cls.scales_of(meta), meta)

    @staticmethod
    def scales_of(meta: dict) -> dict[str, float]:
        """Each backbone's logit scale, as run.json's summary records it."""
        return {name: float(s["logit_scale"]) for name, s in (meta.get("summary", {}) or {}).get("backbones", {}).items()
                if isinstance(s, dict) and s.get("logit_scale")}

    @classmethod
    def from_dir(cls, path: str | Path) -> "RunImages":
        from core.results.runs import load_run

        return cls.from_run(load_run(path))

    @property
    def dataset_path(self) -> Optional[str]:
        """The run's dataset as found now: run.json keeps the path as given, which may be relative
        to where the run was started (tried: as is, then beside the run folder and one above)."""
        given = self.meta.get("config", {}).get("dataset")
        if not given or Path(given).is_absolute():
            return given
        for base in (Path.cwd(), self.dir.parent, self.dir.parent.parent):
            if (base / given).exists():
                return str(base / given)
        return given

    def backbones(self) -> list[str]:
        p = self.predictions
        return list(dict.fromkeys(map(str, p["backbone"]))) if len(p) else []

    def at_level(self, level: int, backbone: Optional[str] = None, ordering: int = 0) -> pd.DataFrame:
        p = self.predictions
        if p.empty:
            return p
        mask = p["level"] == level
        if backbone is not None:
            mask &= p["backbone"].astype(str) == backbone
        if "ordering" in p:
            mask &= p["ordering"] == ordering
        if "names" in p:  # control curves: the synonym curve is the one the plots show
            mask &= p["names"].astype(str) == SYNONYMS
        return p[mask]

    def logits(self, backbone: str, level: int) -> Optional[tuple[list[str], np.ndarray]]:
        """(image ids, [N, C] class scores) saved for this backbone and level, or None."""
        from core.util.names import slug  # the sweep names each backbone's logits folder

        d = self.dir / "logits" / slug(backbone)
        f = d / f"level_{level}.npy"
        if not f.is_file() or not (d / "images.csv").is_file():
            return None
        ids = pd.read_csv(d / "images.csv", keep_default_na=False)["image"].astype(str).tolist()
        scores = np.load(f, mmap_mode="r")
        if scores.shape[0] != len(ids):
            raise InputError(f"{len(ids)} images listed but {scores.shape[0]} rows of scores", file=f)
        return ids, scores

    def top_classes(self, backbone: str, level: int, image: str, k: int = 5) -> list[tuple[str, float]]:
        """The k best classes of one image at one level with their scores ([] without logits)."""
        got = self.logits(backbone, level)
        if got is None:
            return []
        ids, scores = got
        try:
            row = np.asarray(scores[ids.index(image)], dtype=np.float32)
        except ValueError:
            return []
        best = np.argsort(-row, kind="stable")[:k]
        return [(self.classes[i] if i < len(self.classes) else str(i), float(row[i])) for i in best]


def _gallery(df: pd.DataFrame, group, detail="") -> pd.DataFrame:
    out = pd.DataFrame({c: df[c] for c in ("image", "true_class", "predicted_label", "predicted_class", "level",
                                           "backbone") if c in df})
    out["correct"] = df[credit_column(df)] if len(df.columns) else []
    out["score"] = df["score"] if "score" in df else np.nan
    out["group"] = group
    out["detail"] = detail
    out["owners"] = owners_of(df)
    return out.reindex(columns=GALLERY_COLUMNS).reset_index(drop=True)


def owners_of(df: pd.DataFrame) -> pd.Series:
    """The classes owning each winning name (predictions.csv's ``predicted_classes``), else the predicted class."""
    if "predicted_classes" in df and len(df):
        return df["predicted_classes"].where(df["predicted_classes"].notna() & (df["predicted_classes"] != ""),
                                             df["predicted_class"]).astype(str)
    return df["predicted_class"].astype(str) if "predicted_class" in df else pd.Series(dtype=str)


def correctness(credit: pd.Series) -> pd.Series:
    """'correct', 'wrong', or 'tied' for a fractional credit (a tie shared with other classes)."""
    c = credit.astype(float)
    return pd.Series(np.where(c >= FULL_CREDIT, "correct", np.where(c <= 1e-9, "wrong", "tied")), index=credit.index)


@dataclass(frozen=True)
class _AtLevel:
    """One backbone's images at one level that :meth:`keep` selects, each marked correct, wrong or tied."""

    backbone: str
    level: int
    ordering: int = field(default=0, kw_only=True)

    @property
    def where(self) -> str:
        return f"{self.backbone}, {self.level} name(s) per class"

    def keep(self, d: pd.DataFrame) -> pd.Series:
        raise NotImplementedError

    def rows(self, run: RunImages) -> pd.DataFrame:
        d = run.at_level(self.level, self.backbone, self.ordering)
        d = d[self.keep(d)]
        return _gallery(d, correctness(d[credit_column(d)]))


@dataclass(frozen=True)
class ConfusionCell(_AtLevel):
    """Images of ``true_class`` predicted as ``predicted_class`` (a confusion-matrix cell)."""

    true_class: str
    predicted_class: str

    @property
    def title(self) -> str:
        return f"true '{self.true_class}' predicted as '{self.predicted_class}' · {self.where}"

    def keep(self, d: pd.DataFrame) -> pd.Series:
        # a tied prediction belongs to every class owning the winning name, as in the confusion matrix
        owned = owners_of(d).str.split("|").map(lambda o: self.predicted_class in o) if len(d) else []
        return (d["true_class"].astype(str) == self.true_class) & np.asarray(owned, dtype=bool)


@dataclass(frozen=True)
class ClassAtLevel(_AtLevel):
    """Every image of one class at one level, correct and wrong (a recall cell, a frequency point)."""

    cls: str

    @property
    def title(self) -> str:
        return f"class '{self.cls}' · {self.where}"

    def keep(self, d: pd.DataFrame) -> pd.Series:
        return d["true_class"].astype(str) == self.cls


@dataclass(frozen=True)
class LevelFlips:
    """Images whose correctness changes from ``from_level`` to ``to_level`` (gained and lost)."""

    backbone: str
    from_level: int
    to_level: int
    ordering: int = 0

    @property
    def title(self) -> str:
        return f"flips from {self.from_level} to {self.to_level} name(s) per class · {self.backbone}"

    def rows(self, run: RunImages) -> pd.DataFrame:
        p = run.predictions
        if "names" in p:
            p = p[p["names"].astype(str) == SYNONYMS]
        f = compute_flips(p, self.backbone, self.from_level, self.to_level, ordering=self.ordering)
        to = run.at_level(self.to_level, self.backbone, self.ordering).set_index("image")
        fr = run.at_level(self.from_level, self.backbone, self.ordering).set_index("image")
        own_to = owners_of(to.reset_index()).set_axis(to.index).reindex(f["image"]).to_numpy()
        own_from = owners_of(fr.reset_index()).set_axis(fr.index).reindex(f["image"]).to_numpy()

        def side(label, owners, credit, level) -> str:
            tie = f", credit {float(credit):.2g}" if 0 < float(credit) < 1 else ""
            return f"{label} ({owners}{tie}) at {level}"

        out = pd.DataFrame({
            "image": f["image"], "true_class": f["true_class"], "predicted_label": f["label_to"],
            "predicted_class": f["class_to"], "correct": f["correct_to"], "level": f["to_level"],
            "backbone": f["backbone"],
            "score": to["score"].reindex(f["image"]).to_numpy() if "score" in to else np.nan,
            "group": np.where(gained(f), "gained", "lost"),
            "detail": [side(a, oa, xa, lf) + " → " + side(b, ob, xb, lt) for a, oa, xa, lf, b, ob, xb, lt in
                       zip(f["label_from"], own_from, f["correct_from"], f["from_level"], f["label_to"], own_to,
                           f["correct_to"], f["to_level"])],
            "owners": own_to,
        })
        return out.reindex(columns=GALLERY_COLUMNS).reset_index(drop=True)


@dataclass(frozen=True)
class SynergyImages:
    """At one level: images exactly one backbone gets right (``kind='only_one'``), or images
    some backbone gets right and ``ensemble`` does not (``kind='oracle_not_ensemble'``)."""

    level: int
    kind: str = "only_one"
    ensemble: str = "mean_logits"

    @property
    def title(self) -> str:
        if self.kind == "only_one":
            return f"images only one backbone gets right · {self.level} name(s) per class"
        return (f"images the oracle gets right and the {ENSEMBLES.get(self.ensemble, self.ensemble)} ensemble does not · "
                f"{self.level} name(s) per class")

    def _correct_table(self, run: RunImages) -> tuple[pd.DataFrame, list[str]]:
        d = run.at_level(self.level)
        names = list(dict.fromkeys(map(str, d["backbone"])))
        wide = d.pivot_table(index="image", columns="backbone", values=credit_column(d), aggfunc="first")
        wide = wide.dropna()  # images every backbone scored
        return wide, names

    def rows(self, run: RunImages) -> pd.DataFrame:
        if self.kind not in ("only_one", "oracle_not_ensemble"):
            raise InputError(f"unknown synergy selection '{self.kind}'", field="kind")
        d = run.at_level(self.level)
        wide, names = self._correct_table(run)
        if len(names) < 2:
            return pd.DataFrame(columns=GALLERY_COLUMNS)
        right = wide[names].astype(float) >= FULL_CREDIT
        if self.kind == "only_one":
            one = right[right.sum(axis=1) == 1]
            winner = one.idxmax(axis=1)
            order = {im: i for i, im in enumerate(dict.fromkeys(d["image"]))}
            keep = d.set_index(["image", "backbone"]).loc[list(zip(winner.index, winner.values))].reset_index()
            keep = keep.iloc[np.argsort([order[i] for i in keep["image"]], kind="stable")]
            others = {im: ", ".join(n for n in names if n != w) for im, w in winner.items()}
            return _gallery(keep, [f"only {b} right" for b in keep["backbone"]],
                            [f"wrong: {others[im]}" for im in keep["image"]])
        ens_pred, images = self.ensemble_predictions(run, names)
        index = {c: i for i, c in enumerate(run.classes)}
        first = d[d["backbone"].astype(str) == names[0]].set_index("image").loc[images]
        y = first["true_class"].astype(str).map(index).to_numpy()
        oracle = right.reindex(images).fillna(False).any(axis=1).to_numpy()
        miss = oracle & (ens_pred != y)
        sel = first[miss]
        preds = ens_pred[miss]
        out = pd.DataFrame({
            "image": sel.index, "true_class": sel["true_class"].to_numpy(), "predicted_label": "",
            "predicted_class": [run.classes[c] for c in preds], "score": np.nan, "correct": 0, "level": self.level,
            "backbone": f"ensemble ({ENSEMBLES.get(self.ensemble, self.ensemble)})",
            "group": "oracle right, ensemble wrong",
            "detail": ["right: " + ", ".join(n for n in names if bool(right.at[im, n])) for im in sel.index],
        })
        return out.reindex(columns=GALLERY_COLUMNS).reset_index(drop=True)

    def ensemble_predictions(self, run: RunImages, names: list[str]) -> tuple[np.ndarray, list[str]]:
        """The ensemble's class per image (images every backbone has logits for, first backbone's order)."""
        from core.stats import ensemble as ens  # torch: only when an ensemble is asked for

        got = [run.logits(n, self.level) for n in names]
        if any(g is None for g in got):
            missing = [n for n, g in zip(names, got) if g is None]
            raise InputError(f"no saved class scores for {', '.join(missing)} at level {self.level} (the run was made "
                             "without logits), so the ensemble cannot be recomputed", file=run.dir / "logits")
        common = set(got[0][0])
        for ids, _ in got[1:]:
            common &= set(ids)
        images = [i for i in got[0][0] if i in common]
        scores = []
        for ids, s in got:
            row = {im: r for r, im in enumerate(ids)}
            scores.append(np.asarray(s[[row[i] for i in images]], dtype=np.float32))
        scales = [run.scales.get(n, 100.0) for n in names]
        if self.ensemble == "mean_logits":
            pred = ens.mean_logits(scores, scales).argmax(axis=1)
        elif self.ensemble == "mean_probs":
            pred = ens.mean_probabilities(scores, scales).argmax(axis=1)
        elif self.ensemble == "majority_vote":
            pred = ens.majority_vote(ens.predictions(scores), scores[0].shape[1],
                                     tiebreak=ens.mean_probabilities(scores, scales))
        else:
            raise InputError(f"unknown ensemble '{self.ensemble}' (choose {', '.join(ENSEMBLES)})", field="ensemble")
        return pred, images


Selection = ConfusionCell | ClassAtLevel | LevelFlips | SynergyImages
