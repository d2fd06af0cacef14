"""The live what-if equals a real sweep of the edited labels file (top-1 and per-class recall, exactly)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.models.openclip import BackboneSpec
from core.pipeline.runner import SweepConfig, run_sweep
from core.pipeline.whatif import WhatIfScorer, canonical_scores, open_run
from core.util.errors import InputError
from tests.conftest import CLASSES

LEVELS = [1, 2, 3, 4]


def sweep(tiny_model, images, labels: dict, out, cache, mode):
    cfg, ck = tiny_model
    path = out.parent / f"{out.name}-labels.csv"
    path.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in labels.items() for n in ns), encoding="utf-8")
    config = SweepConfig(dataset=str(images), out=str(out), labels=str(path), templates=["a photo of a {}.", "a {}."],
                         levels=LEVELS, mode=mode, backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu")],
                         num_workers=0, bootstrap=20, ensemble_shots=[], cache_dir=str(cache), save_logits=False)
    assert run_sweep(config).status == "completed"
    return out


def sweep_numbers(run_dir):
    """(top1 per level, recall per (class, level), credit per level) as the sweep wrote them."""
    levels = pd.read_csv(run_dir / "levels.csv")
    per_class = pd.read_csv(run_dir / "per_class.csv")
    pred = pd.read_csv(run_dir / "predictions.csv")
    top1 = dict(zip(levels["level"], levels["top1"]))
    recall = {(r["class"], r["level"]): r["recall"] for _, r in per_class.iterrows()}
    credit = {k: g["credit"].to_numpy() for k, g in pred.groupby("level")}
    ties = dict(zip(levels["level"], levels["n_tied"]))
    return top1, recall, credit, ties


def check_equal(result, run_dir):
    top1, recall, credit, _ = sweep_numbers(run_dir)
    for _, row in result.levels.iterrows():
        assert row["top1_after"] == top1[row["level"]], row["level"]
    for _, row in result.per_class.iterrows():
        assert row["recall_after"] == recall[(row["class"], row["level"])], (row["class"], row["level"])
    for k, c in result.credit_after.items():
        assert np.array_equal(np.round(c, 6), credit[k]), k


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from tests.conftest import write_image_folder

    root = tmp_path_factory.mktemp("whatif")
    return root, write_image_folder(root / "images", per_class=6)


def edits(winner: str):
    """(description, edited labels) pairs: removal, a new name, a re-rank, a name shared at level 1 (ties)."""
    base = {c: list(v) for c, v in CLASSES.items()}
    removal = {**base, "red square": ["red square", "scarlet tile"]}
    addition = {**base, "green circle": ["green circle", "emerald ring", "lime disc"]}
    rerank = {**base, "blue triangle": ["cobalt spike", "azure pyramid", "blue triangle", "navy wedge"]}
    other = next(c for c in base if winner not in base[c])
    shared = {**base, other: [winner] + base[other]}
    return [("removal", removal), ("addition", addition), ("rerank", rerank), ("tie", shared)]


@pytest.mark.parametrize("mode", ["flat", "pooled"])
def test_whatif_equals_a_full_sweep(tiny_model, folder, mode):
    root, images = folder
    cache = root / f"cache-{mode}"
    base_run = sweep(tiny_model, images, CLASSES, root / f"base-{mode}", cache, mode)
    scorer = open_run(base_run)
    # before any edit the scorer reproduces the run itself
    top1, recall, credit, _ = sweep_numbers(base_run)
    for k in LEVELS:
        assert scorer.base_credit[k].mean() == top1[k]
        assert np.array_equal(np.round(scorer.base_credit[k], 6), credit[k])
    pred = pd.read_csv(base_run / "predictions.csv")
    winner = pred[pred["level"] == 1]["predicted_label"].value_counts().index[0]
    for what, labels in edits(winner):
        result = scorer.set_names(labels)  # edits pile up on the scorer: each one is against the run
        assert result.edited == [c for c in CLASSES if labels[c] != CLASSES[c]], what
        assert set(result.per_class["class"].head(len(LEVELS))) == set(result.edited[:1]), what
        check_equal(result, sweep(tiny_model, images, labels, root / f"{what}-{mode}", cache, mode))
        if what == "tie":
            _, _, credit_after, ties = sweep_numbers(root / f"{what}-{mode}")
            assert ties[1] > 0  # the shared name really ties two classes at level 1
            assert set(np.round(result.credit_after[1], 6)) & {0.5}
        scorer.set_names(CLASSES)  # back to the run's names: the numbers are the run's again
        assert all(np.array_equal(scorer.credits()[k], scorer.base_credit[k]) for k in LEVELS)


@pytest.mark.parametrize("top", [2, 8])
def test_incremental_state_matches_brute_force(top, monkeypatch):
    """Many random edits on random data: the kept lists give the credits a full recount gives
    (with 2 kept scores the lists run out and those images are re-scored in full)."""
    import core.pipeline.whatif as whatif

    monkeypatch.setattr(whatif, "TOP", top)
    rng = np.random.default_rng(3)
    d, C, N = 24, 40, 1300
    X = rng.standard_normal((N, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = rng.integers(0, C, N)
    vocab = [f"w{i}" for i in range(120)]
    E = {w: v / np.linalg.norm(v) for w, v in zip(vocab, rng.standard_normal((len(vocab), d)).astype(np.float32))}
    names = {f"c{c}": list(rng.choice(vocab, rng.integers(1, 6), replace=False)) for c in range(C)}
    levels = [1, 2, 3, 5]

    def encode(new):
        return np.stack([E[n] for n in new])

    def brute(names, mode):
        out = {}
        for k in levels:
            if mode == "flat":
                S = np.stack([canonical_scores(X, np.stack([E[n] for n in names[c][:k]])).max(axis=1)
                              for c in names], axis=1)
            else:
                from core.pipeline.whatif import pooled_vectors
                P = pooled_vectors([[E[n] for n in sorted(set(names[c][:k]))] for c in names])
                S = np.concatenate([canonical_scores(X, P[i:i + 1]) for i in range(len(P))], axis=1)
            best = S.max(axis=1)
            true = S[np.arange(N), y]
            out[k] = np.where(true == best, 1.0 / (S == best[:, None]).sum(axis=1), 0.0)
        return out

    for mode in ("flat", "pooled"):
        s = WhatIfScorer(X, y, list(names), names, levels, mode, encode)
        current = {c: list(v) for c, v in names.items()}
        for step in range(25):
            c = f"c{rng.integers(0, C)}"
            kind = step % 4
            if kind == 0 and len(current[c]) > 1:
                current[c] = current[c][1:]
            elif kind == 1:
                current[c] = [str(rng.choice(vocab))] + current[c]  # often a name of another class: ties
            elif kind == 2:
                current[c] = current[c][::-1]
            else:
                current[c] = current[names_key(rng, C)][:3]  # another class's names: exact ties
            s.edit(c, current[c])
            want = brute(current, mode)
            got = s.credits()
            for k in levels:
                assert np.array_equal(got[k], want[k]), (mode, step, k)
        if top == 2:
            assert s.rescored > 0


def names_key(rng, C):
    return f"c{rng.integers(0, C)}"


def test_no_cache_says_run_a_sweep_first(tiny_model, folder, tmp_path):
    root, images = folder
    run = sweep(tiny_model, images, CLASSES, tmp_path / "run", tmp_path / "cache", "flat")
    with pytest.raises(InputError, match="run a sweep first"):
        open_run(run, cache_dir=str(tmp_path / "empty-cache"))
    with pytest.raises(InputError, match="run a sweep first"):
        open_run(tmp_path / "not-a-run")
