"""Study summaries on hand-built run folders: control curves, paired p-values, partial runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.study.summary import (ALPHA, by_level, change_kind, controls_summary, read_csv, summary_table, thresholds,
                                write_summaries)


def _run(root: Path, name: str, rows: list[dict], extra: dict | None = None) -> Path:
    d = root / "runs" / name
    d.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(d / "levels.csv", index=False)
    (d / "run.json").write_text(json.dumps({"status": "completed", "config": {"tolerance": 0.01}}))
    for file, df in (extra or {}).items():
        df.to_csv(d / file, index=False)
    return d


def _levels(backbone: str, names: str, top1: list[float], p: list[float], ci: float = 0.05) -> list[dict]:
    return [{"backbone": backbone, "ordering": 0, "level": k, "n_categories": 4 * k, "n_images": 100, "top1": t,
             "top5": min(1.0, t + 0.1), "ci_low": t - ci, "ci_high": t + ci, "names": names, "p_vs_level1": pv,
             "p_vs_level1_holm": min(1.0, pv * 2)}
            for k, t, pv in zip((1, 2, 4), top1, p)]


@pytest.fixture
def study(tmp_path) -> tuple[Path, dict]:
    """Two datasets with synonyms and a random-words control; p-values decide what changed."""
    runs = {
        "a": _run(tmp_path, "a", _levels("vit", "synonyms", [0.50, 0.60, 0.55], [1.0, 0.001, 0.2])
                  + _levels("vit", "random-words", [0.50, 0.52, 0.40], [1.0, 0.5, 0.01]),
                  {"controls.csv": pd.DataFrame({"backbone": "vit", "control": "random-words", "level": [1, 2, 4],
                                                 "n_images": 100, "synonyms_top1": [0.5, 0.6, 0.55],
                                                 "control_top1": [0.5, 0.52, 0.40], "effect": [0.0, 0.08, 0.15],
                                                 "ci_low": [0, 0.02, 0.1], "ci_high": [0, 0.12, 0.2],
                                                 "p_value": [1, 0.01, 0.001]})}),
        "b": _run(tmp_path, "b", _levels("vit", "synonyms", [0.70, 0.69, 0.60], [1.0, 0.8, 0.03])
                  + _levels("vit", "random-words", [0.70, 0.66, 0.62], [1.0, 0.3, 0.04]),
                  {"controls.csv": pd.DataFrame({"backbone": "vit", "control": "random-words", "level": [1, 2, 4],
                                                 "n_images": 100, "synonyms_top1": [0.7, 0.69, 0.6],
                                                 "control_top1": [0.7, 0.66, 0.62], "effect": [0.0, 0.03, -0.02],
                                                 "ci_low": [0, -0.01, -0.06], "ci_high": [0, 0.07, 0.02],
                                                 "p_value": [1, 0.2, 0.4]})}),
    }
    return tmp_path, runs


def test_names_and_p_values_are_carried_and_deltas_are_per_kind(study):
    _, runs = study
    s = summary_table(runs)
    assert list(s.columns) == ["dataset", "backbone", "level", "n_categories", "n_images", "top1", "top5",
                               "ci_low", "ci_high", "delta_top1_vs_level1", "names", "p_vs_level1", "p_vs_level1_holm"]
    a = s[(s["dataset"] == "a") & (s["names"] == "random-words")]
    assert a["delta_top1_vs_level1"].tolist() == pytest.approx([0.0, 0.02, -0.10])
    assert s[(s["dataset"] == "b") & (s["names"] == "synonyms")]["p_vs_level1"].tolist() == [1.0, 0.8, 0.03]


def test_by_level_counts_follow_the_paired_tests(study):
    _, runs = study
    by = by_level(summary_table(runs))
    assert list(by.columns[:3]) == ["backbone", "names", "level"]
    syn = by[by["names"] == "synonyms"].set_index("level")
    # level 2: a improved (p=.001), b no significant change; level 4: a n.s. (p=.2), b hurt (p=.03)
    assert syn.loc[2, ["n_improved", "n_hurt", "n_no_change"]].tolist() == [1, 0, 1]
    assert syn.loc[4, ["n_improved", "n_hurt", "n_no_change"]].tolist() == [0, 1, 1]
    assert syn.loc[1, ["n_improved", "n_hurt", "n_no_change"]].tolist() == [0, 0, 2]
    assert syn.loc[4, "mean_delta_top1"] == pytest.approx(((0.55 - 0.50) + (0.60 - 0.70)) / 2)
    assert syn.loc[4, "mean_top1"] == pytest.approx((0.55 + 0.60) / 2)
    assert set(by["significance"]) == {"p_vs_level1"}
    ctl = by[by["names"] == "random-words"].set_index("level")
    assert ctl.loc[4, ["n_improved", "n_hurt", "n_no_change"]].tolist() == [0, 2, 0]


def test_change_kind_falls_back_to_the_ci_without_p_values():
    row = pd.Series({"level": 2, "ci_low": 0.61, "ci_high": 0.70, "delta_top1_vs_level1": 0.05, "p_vs_level1": np.nan})
    assert change_kind(row, 0.60) == "improved"
    assert change_kind(row, 0.65) == "same"
    assert change_kind(row, 0.71) == "hurt"
    row["p_vs_level1"] = ALPHA / 2
    assert change_kind(row, 0.65) == "improved"  # the paired test wins where there is one


def test_controls_summary_means_effects_over_datasets(study):
    _, runs = study
    c = controls_summary(runs)
    mean = c[c["dataset"] == "(mean)"].set_index("level")
    assert mean.loc[2, "effect"] == pytest.approx((0.08 + 0.03) / 2)
    assert mean.loc[4, "effect"] == pytest.approx((0.15 - 0.02) / 2)
    assert mean.loc[4, "ci_low"] <= mean.loc[4, "effect"] <= mean.loc[4, "ci_high"]
    assert (mean["n_datasets"] == 2).all()
    assert len(c[c["dataset"] == "a"]) == 3


def test_thresholds_use_a_runs_own_threshold_file(study, tmp_path):
    root, runs = study
    own = pd.DataFrame({"backbone": ["vit"], "names": ["synonyms"], "ordering": [0], "peak_level": [2],
                        "peak_top1": [0.6], "final_top1": [0.55], "drop_after_peak": [0.05], "trend": ["plateau"],
                        "p_value": [0.2]})
    own.to_csv(runs["a"] / "threshold.csv", index=False)
    th = thresholds(runs)
    a = th[th["dataset"] == "a"]
    assert a["trend"].tolist() == ["plateau"] and a["p_value"].tolist() == [0.2]  # the paired verdict, as written
    b = th[th["dataset"] == "b"].set_index("names")
    assert b.loc["synonyms", "peak_level"] == 1 and b.loc["synonyms", "trend"] == "declining"


def test_partial_study_and_stale_files(study):
    root, runs = study
    runs = {**runs, "c": root / "runs" / "c"}  # not run yet: no folder
    paths = write_summaries(root, runs)
    assert set(paths) == {"summary", "summary_by_level", "thresholds", "controls_summary"}
    assert set(read_csv(root / "summary.csv")["dataset"]) == {"a", "b"}
    (root / "ensembles_summary.csv").write_text("stale\n")
    write_summaries(root, runs)
    assert not (root / "ensembles_summary.csv").exists()  # no run has ensembles: no stale table
