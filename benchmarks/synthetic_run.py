"""A run directory at ImageNet scale without encoding a single image.

``write_synthetic_run`` writes the files of the run-directory contract (run.json,
levels.csv, predictions.csv, per_class.csv, skipped.csv and the analysis tables) for
made-up predictions: each class has a difficulty and a response to more names (some
gain, some lose), wrong answers mostly go to a few look-alike classes, and everything
else (per-class recall, level accuracy, intervals, the oracle, the frequency table) is
computed from those predictions the way the engine computes it. The GUI benchmark and
the GUI tests open it as any run; ``python -m benchmarks.synthetic_run OUT`` writes one.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

ADJECTIVES = ["great", "grey", "red", "little", "common", "spotted", "giant", "golden", "black", "white", "striped",
              "crested", "northern", "southern", "american", "european", "long-tailed", "short-eared", "horned",
              "banded", "ring-necked", "tufted", "snowy", "desert", "mountain", "water", "sea", "marsh", "royal",
              "lesser", "pygmy", "blue", "green", "yellow", "brown", "silver", "dusky", "painted", "bearded", "wild"]
NOUNS = ["owl", "heron", "frog", "lizard", "beetle", "moth", "shark", "turtle", "hawk", "finch", "sparrow", "snake",
         "spider", "crab", "lobster", "salamander", "toad", "weasel", "fox", "terrier", "spaniel", "retriever",
         "mushroom", "orchid", "teapot", "guitar", "kettle", "lantern", "bicycle", "tractor", "sailboat", "bridge",
         "castle", "fountain", "umbrella", "violin", "trumpet", "helmet", "basket", "barometer"]


def class_names(n: int, seed: int = 0) -> list[str]:
    """n distinct, plausible class names (a few of them long, as ImageNet's are)."""
    rng = np.random.default_rng(seed)
    pairs = [f"{a} {b}" for a in ADJECTIVES for b in NOUNS]
    rng.shuffle(pairs)
    out = pairs[:n]
    while len(out) < n:
        out.append(f"{ADJECTIVES[len(out) % len(ADJECTIVES)]} {NOUNS[len(out) % len(NOUNS)]} {len(out)}")
    for i in range(0, n, 97):  # some long names, to see how the views cope
        out[i] = f"{out[i]}, also called the {ADJECTIVES[i % len(ADJECTIVES)]} one"
    return out


def _wilson(k: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    p = k / np.maximum(n, 1)
    d = 1 + z ** 2 / n
    c = (p + z ** 2 / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2)) / d
    return c - h, c + h


def write_synthetic_run(out: str | Path, n_classes: int = 1000, n_images: int = 20000,
                        backbones: Sequence[str] = ("ViT-B-32", "RN50"), levels: Sequence[int] = (1, 2, 4, 8, 16),
                        names_per_class: int = 16, mode: str = "flat", seed: int = 0, frequency: bool = True,
                        kshot: bool = True, base_accuracy: float = 0.6) -> Path:
    """Write a completed run directory at ``out`` and return it."""
    from core.stats.frequency import frequency_table
    from core.stats.significance import threshold_verdict
    from core.results.runs import LEVEL_COLUMNS, PER_CLASS_COLUMNS, PREDICTION_COLUMNS, SKIPPED_COLUMNS

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    classes = class_names(n_classes, seed)
    y = np.arange(n_images) % n_classes
    rng.shuffle(y)
    images = [f"{classes[c].split(',')[0].replace(' ', '_')}/{i:06d}.jpg" for i, c in enumerate(y)]
    difficulty = rng.normal(0, 1.0, n_classes)
    response = rng.normal(0, 0.6, n_classes)  # how each class reacts to more names
    neighbours = rng.integers(0, n_classes, (n_classes, 3))
    logit0 = math.log(base_accuracy / (1 - base_accuracy))
    names = {c: [c] + [f"{c} ({j + 1})" for j in range(names_per_class - 1)] for c in classes}

    pred_frames, per_class_rows, level_rows, correct_of = [], [], [], {}
    for bi, b in enumerate(backbones):
        skill = logit0 - 0.4 * bi
        for k in levels:
            lk = math.log2(k)
            shape = 0.35 * lk - 0.09 * lk ** 2  # rises, then falls past a threshold
            p = 1 / (1 + np.exp(-(skill - difficulty[y] + shape + response[y] * lk * 0.3)))
            correct = rng.random(n_images) < p
            wrong = np.where(rng.random(n_images) < 0.7, neighbours[y, rng.integers(0, 3, n_images)],
                             rng.integers(0, n_classes, n_images))
            wrong = np.where(wrong == y, (y + 1) % n_classes, wrong)
            pred = np.where(correct, y, wrong)
            correct_of[(b, k)] = correct
            pred_names = [classes[c] for c in pred]
            pred_frames.append(pd.DataFrame({
                "image": images, "true_class": [classes[c] for c in y], "level": k,
                "predicted_label": pred_names, "predicted_class": pred_names, "correct": correct.astype(int),
                "ordering": 0, "backbone": b, "score": np.round(rng.uniform(0.2, 0.4, n_images), 5),
                "credit": correct.astype(float), "n_owners": 1, "predicted_classes": pred_names, "names": "synonyms"}))
            n_c = np.bincount(y, minlength=n_classes)
            hit = np.bincount(y, weights=correct, minlength=n_classes).astype(int)
            top5 = np.minimum(n_c, hit + rng.binomial(np.maximum(n_c - hit, 0), 0.6))
            for ci, c in enumerate(classes):
                per_class_rows.append({"backbone": b, "ordering": 0, "level": k, "class": c, "n_images": int(n_c[ci]),
                                       "n_correct": int(hit[ci]), "recall": hit[ci] / max(n_c[ci], 1),
                                       "top5_recall": top5[ci] / max(n_c[ci], 1), "n_names": min(k, names_per_class)})
            lo, hi = _wilson(np.array([correct.sum()]), np.array([n_images]))
            level_rows.append({"backbone": b, "ordering": 0, "level": k, "n_categories": n_classes * min(k, names_per_class),
                               "n_images": n_images, "top1": float(correct.mean()), "top5": float(top5.sum() / n_images),
                               "ci_low": float(lo[0]), "ci_high": float(hi[0]), "n_correct": int(correct.sum()),
                               "seconds": 0.5})
    pd.concat(pred_frames).reindex(columns=PREDICTION_COLUMNS).to_csv(out / "predictions.csv", index=False)
    per_class = pd.DataFrame(per_class_rows, columns=PER_CLASS_COLUMNS)
    per_class.to_csv(out / "per_class.csv", index=False)
    levels_df = pd.DataFrame(level_rows, columns=LEVEL_COLUMNS)
    levels_df.to_csv(out / "levels.csv", index=False)
    pd.DataFrame(columns=SKIPPED_COLUMNS).to_csv(out / "skipped.csv", index=False)

    summary: dict = {"backbones": {}}
    for b in backbones:
        credit = np.stack([np.asarray(correct_of[(b, k)], dtype=float) for k in levels])
        summary["backbones"][b] = {"n_images_scored": n_images,  # the engine's own paired-test verdict
                                   "threshold": threshold_verdict(list(levels), credit, n_boot=200).to_dict()}
    if len(backbones) >= 2:
        bb_rows, ens_rows = [], []
        for k in levels:
            tops = {b: float(correct_of[(b, k)].mean()) for b in backbones}
            bb_rows += [{"level": k, "backbone": b, "kind": "clip", "top1": v, "n_images": n_images} for b, v in tops.items()]
            oracle = float(np.any([correct_of[(b, k)] for b in backbones], axis=0).mean())
            ens_rows += [{"level": k, "method": "best_single", "k": 0, "split": 0, "n_fit": 0, "n_eval": n_images,
                          "top1": max(tops.values())},
                         {"level": k, "method": "oracle", "k": 0, "split": 0, "n_fit": 0, "n_eval": n_images, "top1": oracle}]
            if kshot:
                best = max(tops.values())
                for shots in (1, 2, 4, 8):
                    for split in range(3):
                        gain = (oracle - best) * (0.1 + 0.08 * math.log2(shots))
                        for method, v in (("best_single_oracle", best), ("mean_logits", best + 0.3 * gain),
                                          ("global", best + 0.6 * gain), ("nlc", best + gain)):
                            ens_rows.append({"level": k, "method": method, "k": shots, "split": split,
                                             "n_fit": shots * n_classes, "n_eval": n_images - shots * n_classes,
                                             "top1": float(np.clip(v + rng.normal(0, 0.004), 0, 1))})
        pd.DataFrame(bb_rows).to_csv(out / "backbones.csv", index=False)
        pd.DataFrame(ens_rows).to_csv(out / "ensembles.csv", index=False)
    if frequency:
        freq = {c: float(np.exp(rng.normal(9 - 1.2 * difficulty[i], 1.0))) for i, c in enumerate(classes)}
        pd.DataFrame({"class": classes, "frequency": [freq[c] for c in classes]}).to_csv(out / "class_frequency.csv",
                                                                                          index=False)
        table, corr = frequency_table(per_class, freq)
        table.to_csv(out / "frequency.csv", index=False)
        corr.to_csv(out / "frequency_summary.csv", index=False)
        summary["frequency"] = corr.to_dict("records")
    pd.DataFrame([{"class": c, "synonym": n} for c in classes for n in names[c]]).to_csv(out / "labels.csv", index=False)
    meta = {"status": "completed", "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:10:00+00:00",
            "host": "synthetic", "versions": {"semscale": "synthetic"},
            "config": {"dataset": str(out / "images"), "labels": str(out / "labels.csv"), "mode": mode,
                       "levels_resolved": list(levels), "orderings": 1, "templates": "simple", "seed": seed,
                       "labels_resolved": names},
            "backbones": [{"name": b} for b in backbones], "summary": summary}
    (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks.synthetic_run",
                                 description="Write a completed run directory of made-up predictions "
                                             "(ImageNet-sized by default) without encoding any image.")
    ap.add_argument("out", nargs="?", default="synthetic-run", help="run directory to write (default: %(default)s)")
    ap.add_argument("--classes", type=int, default=1000, help="number of classes (default: %(default)s)")
    ap.add_argument("--images", type=int, default=20000, help="number of images (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    args = ap.parse_args(argv)
    print(write_synthetic_run(args.out, n_classes=args.classes, n_images=args.images, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
