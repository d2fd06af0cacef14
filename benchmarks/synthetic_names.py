"""names.csv for a synthetic run (:mod:`benchmarks.synthetic_run`), so the Names view can be
looked at and timed at 1,000 classes × 16 names without scoring anything.

Each prediction's winning name is drawn among the first k names of its predicted class — a
right answer uniformly, a wrong one more often through a later-ranked name, as generic names
steal images — and ``predictions.csv``'s ``predicted_label`` is rewritten to it. ``images_won``,
``won_correct`` and ``won_from_other_classes`` are counted from those predictions;
``credit_change`` is made up (a share of the name's own wins minus a share of what it takes):
the numbers are plausible, not measured. ``python -m benchmarks.synthetic_names RUN`` adds the
file to a synthetic run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

NAME_COLUMNS = ["backbone", "ordering", "names", "level", "class", "name", "rank", "n_owners", "images_won",
                "won_correct", "won_from_other_classes", "credit_change"]


def write_synthetic_names(run_dir: str | Path, seed: int = 0) -> Path:
    """Write ``names.csv`` (and the winning names into predictions.csv) of a synthetic run; its path."""
    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    labels: dict[str, list[str]] = meta["config"]["labels_resolved"]
    classes = list(labels)
    index = {c: i for i, c in enumerate(classes)}
    n_names = np.array([len(labels[c]) for c in classes])
    rng = np.random.default_rng(seed)
    pred = pd.read_csv(run_dir / "predictions.csv", keep_default_na=False, na_values=[""])
    pc = pred["predicted_class"].astype(str).map(index).to_numpy()
    tc = pred["true_class"].astype(str).map(index).to_numpy()
    k = np.minimum(pred["level"].to_numpy(), n_names[pc])
    u = rng.random(len(pred))
    # right answers: any of the first k names; wrong ones: rank r with weight r (later names steal more)
    right_rank = np.floor(u * k).astype(int)
    wrong_rank = np.floor(np.sqrt(u) * k).astype(int)
    rank = np.where(pc == tc, right_rank, np.minimum(wrong_rank, k - 1))
    flat = np.array([n for c in classes for n in labels[c]], dtype=object)
    start = np.concatenate([[0], np.cumsum(n_names)[:-1]])
    pred["predicted_label"] = flat[start[pc] + rank]
    pred.to_csv(run_dir / "predictions.csv", index=False)

    pred["rank"] = rank + 1
    pred["own"] = (pc == tc).astype(float)
    won = pred.groupby(["backbone", "ordering", "names", "level", "predicted_class", "rank"], sort=False).agg(
        images_won=("own", "size"), won_correct=("own", "sum")).reset_index()
    won = won.rename(columns={"predicted_class": "class"})
    parts = []
    for (b, o, nk, level), _g in pred.groupby(["backbone", "ordering", "names", "level"], sort=False):
        ranks = [r for c in classes for r in range(1, min(int(level), len(labels[c])) + 1)]
        cls = [c for c in classes for _ in range(min(int(level), len(labels[c])))]
        parts.append(pd.DataFrame({"backbone": b, "ordering": o, "names": nk, "level": int(level), "class": cls,
                                   "rank": ranks}))
    rows = pd.concat(parts, ignore_index=True).merge(won, how="left",
                                                     on=["backbone", "ordering", "names", "level", "class", "rank"])
    rows[["images_won", "won_correct"]] = rows[["images_won", "won_correct"]].fillna(0).astype(int)
    rows["won_from_other_classes"] = rows["images_won"] - rows["won_correct"]
    rows["name"] = [labels[c][r - 1] for c, r in zip(rows["class"], rows["rank"])]
    rows["n_owners"] = 1
    keep = rng.uniform(0.1, 0.6, len(rows))  # the share of its own wins no other name of the class would get
    lose = rng.uniform(0.3, 0.9, len(rows))  # the share of what it takes that was right before
    rows["credit_change"] = np.round(rows["won_correct"] * keep - rows["won_from_other_classes"] * lose).astype(int)
    rows.loc[rows["rank"] == 1, "credit_change"] = rows.loc[rows["rank"] == 1, "won_correct"]
    out = run_dir / "names.csv"
    rows.reindex(columns=NAME_COLUMNS).to_csv(out, index=False)
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Add a made-up names.csv to a synthetic run (benchmarks.synthetic_run).")
    ap.add_argument("run", help="the synthetic run's folder")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(write_synthetic_names(args.run, seed=args.seed))
