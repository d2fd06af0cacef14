"""Robustness under perturbations: every backbone, the oracle and the fixed ensembles, scored on
perturbed copies of the images (``--perturb NAME:SEVERITIES``, :mod:`core.data.perturb`).

It runs after the clean sweep and its analysis, which it leaves untouched. Per (perturbation,
severity) each embedding backbone encodes the perturbed images once (cached under their own key,
:func:`core.embedding.embed.embed_images`); the category embeddings of the clean sweep are reused,
so a perturbation costs no text work. Each level is scored with the very level plan and tie
policy of the clean sweep (:func:`core.pipeline.scoring.score_level`), and every perturbed credit
vector is compared with the clean one on the same images (paired exact McNemar,
:func:`core.stats.significance.mcnemar_exact`).

Writes ``robustness.csv`` (one row per system x perturbation x severity x level, plus severity-0
rows of the clean images) and ``robustness_predictions.csv`` (per image: perturbed and clean credit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from core.data.perturb_specs import Perturbation, parse_perturbations
from core.labels.controls import SYNONYMS
from core.models.base import EMBEDDINGS
from core.pipeline.scoring import EmbeddingScores, LevelPlan, level_class_scores, score_level
from core.stats import ensemble as ens
from core.stats.metrics import bootstrap_ci, top_choice
from core.stats.significance import mcnemar_exact
from core.util.errors import InputError
from core.util.events import Log, TableRows

if TYPE_CHECKING:
    from core.pipeline.analysis import BackboneOutcome
    from core.pipeline.context import SweepContext
    from core.util.config import SweepConfig

ROBUSTNESS_COLUMNS = ["backbone", "perturbation", "severity", "level", "n_images", "top1", "ci_low", "ci_high",
                      "drop_vs_clean", "p_vs_clean", "kind", "n_broken", "n_fixed"]
PERTURBED_PREDICTION_COLUMNS = ["image", "true_class", "backbone", "perturbation", "severity", "level",
                                "predicted_class", "credit", "clean_credit"]
CLEAN = "none"  # the perturbation column of the clean rows (severity 0)
ENSEMBLE_METHODS = ("oracle", "mean_logits", "mean_probs", "majority_vote")


def check_perturbations(config: "SweepConfig") -> list[Perturbation]:
    """The config's perturbations, refused with a clear message before any work."""
    perts = parse_perturbations(getattr(config, "perturb", None) or [])
    if perts and config.embeddings:
        raise InputError("--perturb needs the images themselves; embedding stores (--embeddings) cannot be "
                         "perturbed", field="perturb")
    return perts


def fixed_ensemble_credits(scores: list[np.ndarray], scales: list[float], y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image credit of the oracle and the fixed ensembles (the means are
    :func:`core.stats.ensemble.fixed_ensembles`' values), for paired tests."""
    choice = ens.choices(scores)
    mp = ens.mean_probabilities(scores, scales)
    return {
        "oracle": ens.oracle_correct(choice, y),
        "mean_logits": ens.credit(top_choice(ens.mean_logits(scores, scales)), y),
        "mean_probs": ens.credit(top_choice(mp), y),
        "majority_vote": ens.credit(ens.majority_vote(choice, tiebreak=mp), y),
    }


@dataclass
class _System:
    """One backbone's clean side: its outcome and its position in the run."""

    outcome: "BackboneOutcome"
    backbone: object
    position: int


def _row(ctx, system: str, kind: str, p: Optional[Perturbation], k: int, credit: np.ndarray,
         clean: np.ndarray) -> dict:
    config = ctx.config
    lo, hi = bootstrap_ci(credit, config.bootstrap, seed=config.seed)
    return {
        "backbone": system, "perturbation": p.name if p else CLEAN, "severity": p.severity if p else 0,
        "level": int(k), "n_images": int(len(credit)), "top1": float(credit.mean()),
        "ci_low": round(lo, 6), "ci_high": round(hi, 6),
        "drop_vs_clean": float(clean.mean() - credit.mean()),
        "p_vs_clean": mcnemar_exact(clean, credit) if p else 1.0, "kind": kind,
        "n_broken": int(np.rint(np.clip(clean - credit, 0, None).sum())),
        "n_fixed": int(np.rint(np.clip(credit - clean, 0, None).sum())),
    }


def run_robustness(ctx: "SweepContext", outcomes: list["BackboneOutcome"], perturbations: list[Perturbation]) -> None:
    """Score every perturbation and write its rows (see the module docstring)."""
    if not perturbations:
        return
    config, writer, emit, cancel = ctx.config, ctx.writer, ctx.emit, ctx.cancel
    classes = ctx.classes
    names = ctx.kinds[SYNONYMS].ordered(0, config.seed)
    plans = {k: LevelPlan.build(names, classes, k, config.mode) for k in ctx.levels}
    systems = []
    for position, (backbone, o) in enumerate(zip(ctx.backbones, outcomes)):
        if getattr(backbone, "output", None) == EMBEDDINGS and isinstance(o.scores, EmbeddingScores):
            systems.append(_System(o, backbone, position))
        else:
            emit(Log(f"{o.name}: not an embedding backbone; left out of robustness.csv", "warning"))
    if not systems:
        emit(Log("--perturb: no embedding backbone to perturb", "warning"))
        return
    record_of = {r.id: i for i, r in enumerate(ctx.dataset.records)}
    clean_credit = {(s.outcome.name, k): score_level(s.outcome.scores, s.outcome.y, plans[k], config.top_k).credit
                    for s in systems for k in ctx.levels}
    stats = {"perturbations": [str(p) for p in perturbations], "images_encoded": 0, "images_from_cache": 0}

    def write(rows: list[dict], preds: list[dict]) -> None:
        writer.append("robustness.csv", rows, ROBUSTNESS_COLUMNS)
        if config.save_predictions and preds:
            writer.append("robustness_predictions.csv", preds, PERTURBED_PREDICTION_COLUMNS)
        writer.commit()
        emit(TableRows("robustness", rows))

    # the clean rows (severity 0): each curve starts from the clean accuracy
    clean_rows = [_row(ctx, s.outcome.name, "backbone", None, k, clean_credit[(s.outcome.name, k)],
                       clean_credit[(s.outcome.name, k)]) for s in systems for k in ctx.levels]
    common = _common(systems, [s.outcome.ids for s in systems])
    if len(systems) >= 2 and len(common[0]):
        y = systems[0].outcome.y[common[0]]
        for k in ctx.levels:
            credits = fixed_ensemble_credits(
                [level_class_scores(s.outcome.scores, plans[k], rows=r) for s, r in zip(systems, common)],
                [s.outcome.scale for s in systems], y)
            clean_rows += [_row(ctx, m, _ens_kind(m), None, k, c, c) for m, c in credits.items()]
    write(clean_rows, [])

    for p in perturbations:
        cancel.raise_if_cancelled()
        emit(Log(f"perturbation {p}: encoding the perturbed images"))
        perturbed = []  # per system: (rows of the clean outcome kept, perturbed EmbeddingScores)
        for s in systems:
            o = s.outcome
            got = ctx.images.embeddings(s.backbone, s.position, cache=ctx.cache, emit=emit, cancel=cancel,
                                        perturbation=p)
            stats["images_encoded"] += got.n_encoded
            stats["images_from_cache"] += got.n_cached
            row_of = {int(i): j for j, i in enumerate(got.indices)}
            keep = [r for r, image in enumerate(o.ids) if record_of[image] in row_of]
            if len(keep) < len(o.ids):
                emit(Log(f"{o.name}, {p}: {len(o.ids) - len(keep)} images could not be perturbed and are left out",
                         "warning"))
            X = got.matrix[[row_of[record_of[o.ids[r]]] for r in keep]]
            perturbed.append((np.asarray(keep, dtype=np.int64), EmbeddingScores(X, o.scores.name_emb, o.scores.name_row)))
        rows, preds = [], []
        for s, (keep, scores) in zip(systems, perturbed):
            o = s.outcome
            y = o.y[keep]
            for k in ctx.levels:
                got = score_level(scores, y, plans[k], config.top_k)
                clean = clean_credit[(o.name, k)][keep]
                rows.append(_row(ctx, o.name, "backbone", p, k, got.credit, clean))
                preds += _prediction_rows(o.name, p, k, [o.ids[r] for r in keep], y, classes,
                                          [classes[c] for c in got.pred_class], got.credit, clean)
        if len(systems) >= 2:
            kept_ids = [[s.outcome.ids[r] for r in keep] for s, (keep, _) in zip(systems, perturbed)]
            sel = _common(systems, kept_ids)
            if len(sel[0]):
                first = perturbed[0][0][sel[0]]
                ids = [systems[0].outcome.ids[r] for r in first]
                y = systems[0].outcome.y[first]
                clean_rows_ = [keep[r] for (keep, _), r in zip(perturbed, sel)]
                for k in ctx.levels:
                    pert = fixed_ensemble_credits(
                        [level_class_scores(sc, plans[k], rows=r) for (_, sc), r in zip(perturbed, sel)],
                        [s.outcome.scale for s in systems], y)
                    clean = fixed_ensemble_credits(
                        [level_class_scores(s.outcome.scores, plans[k], rows=r) for s, r in zip(systems, clean_rows_)],
                        [s.outcome.scale for s in systems], y)
                    for m in ENSEMBLE_METHODS:
                        rows.append(_row(ctx, m, _ens_kind(m), p, k, pert[m], clean[m]))
                        preds += _prediction_rows(m, p, k, ids, y, classes, [""] * len(ids), pert[m], clean[m])
        write(rows, preds)
    ctx.summary["robustness"] = stats


def _ens_kind(method: str) -> str:
    return "oracle" if method == "oracle" else "ensemble"


def _common(systems, id_lists: list[list[str]]) -> list[np.ndarray]:
    """Per system, the positions (in its own id list) of the images every system has, in the first's order."""
    shared = set(id_lists[0])
    for ids in id_lists[1:]:
        shared &= set(ids)
    order = [i for i in id_lists[0] if i in shared]
    out = []
    for ids in id_lists:
        pos = {image: r for r, image in enumerate(ids)}
        out.append(np.array([pos[i] for i in order], dtype=np.int64))
    return out


def _prediction_rows(system: str, p: Perturbation, k: int, ids: list[str], y: np.ndarray, classes: list[str],
                     predicted: list[str], credit: np.ndarray, clean: np.ndarray) -> list[dict]:
    return [{"image": image, "true_class": classes[c], "backbone": system, "perturbation": p.name,
             "severity": p.severity, "level": int(k), "predicted_class": pc, "credit": round(float(cr), 6),
             "clean_credit": round(float(cl), 6)}
            for image, c, pc, cr, cl in zip(ids, y, predicted, credit, clean)]
