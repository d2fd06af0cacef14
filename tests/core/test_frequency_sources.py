"""Built-in class-frequency source ``wordfreq``: the values written are wordfreq's own, and the
Spearman analysis runs on them as on a user's CSV."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from wordfreq import word_frequency

from core.cli import main
from core.stats.frequency import (ALL_NAMES_COLUMN, ClassFrequency, class_frequency, frequency_table,
                            is_frequency_source, load_class_frequency, wordfreq_frequencies)
from core.results.runs import load_run
from tests.conftest import CLASSES
from tests.core.test_cli import sweep_args


def test_wordfreq_values_are_wordfreqs():
    names = {"dog": ["dog", "puppy", "hound", "dog"], "aquarium_fish": ["aquarium_fish", "tropical fish"],
             "car": []}
    f = wordfreq_frequencies(names)
    assert isinstance(f, ClassFrequency) and f.source == "wordfreq" and f.per == 1e9
    assert f["dog"] == word_frequency("dog", "en") > 1e-5
    # the sum over names counts 'dog' once; underscores are WordNet's spaces
    assert f.extra[ALL_NAMES_COLUMN]["dog"] == pytest.approx(
        word_frequency("dog", "en") + word_frequency("puppy", "en") + word_frequency("hound", "en"))
    assert f["aquarium_fish"] == word_frequency("aquarium fish", "en")
    assert f.extra[ALL_NAMES_COLUMN]["aquarium_fish"] == pytest.approx(
        word_frequency("aquarium fish", "en") + word_frequency("tropical fish", "en"))
    assert f["car"] == word_frequency("car", "en")  # no names: the class key
    assert dict(f) == {"dog": f["dog"], "aquarium_fish": f["aquarium_fish"], "car": f["car"]}


def test_source_or_file(tmp_path):
    names = {"dog": ["dog"]}
    assert is_frequency_source("wordfreq") and is_frequency_source("WordFreq")
    # a study file's value, resolved against the study's folder, is still the source ...
    assert is_frequency_source(tmp_path / "study" / "wordfreq")
    assert class_frequency(tmp_path / "study" / "wordfreq", names).source == "wordfreq"
    # ... unless such a file exists: then it is read as a CSV
    csv = tmp_path / "wordfreq"
    csv.write_text("class,frequency\ndog,12\n")
    assert not is_frequency_source(csv)
    f = class_frequency(csv, names)
    assert dict(f) == load_class_frequency(csv) == {"dog": 12.0} and f.extra == {} and f.per == 1.0


def test_log_frequency_scale():
    per_class = pd.DataFrame({"backbone": "m", "level": 1, "class": ["a", "b", "c"], "n_images": 4,
                              "recall": [0.25, 0.5, 1.0]})
    f = ClassFrequency({"a": 1e-6, "b": 1e-4, "c": 0.0}, "wordfreq", {ALL_NAMES_COLUMN: {"a": 2e-6, "b": 3e-4, "c": 0.0}},
                       per=1e9)
    table, _ = frequency_table(per_class, f)
    # log10 of occurrences per 10^9 words (+1): wordfreq's Zipf scale, 0 for an unseen name
    np.testing.assert_allclose(table["log_frequency"], [math.log10(1001), math.log10(100_001), 0.0])
    assert list(table[ALL_NAMES_COLUMN]) == [2e-6, 3e-4, 0.0]


def test_cli_sweep_with_wordfreq(tiny_model, image_folder, labels_csv, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(sweep_args(tiny_model, image_folder, labels_csv, out, "--levels", "1,2", "--class-frequency", "wordfreq",
                         "--cache-dir", tmp_path / "cache"))
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "Spearman(recall, frequency)" in err
    table = pd.read_csv(out / "frequency.csv")
    assert {"backbone", "level", "class", "recall", "frequency", "log_frequency", ALL_NAMES_COLUMN} <= set(table.columns)
    for _, r in table.iterrows():
        names = CLASSES[r["class"]]
        assert r["frequency"] == pytest.approx(word_frequency(names[0], "en"), rel=1e-12, abs=0)
        assert r[ALL_NAMES_COLUMN] == pytest.approx(sum(word_frequency(n, "en") for n in names), rel=1e-12, abs=0)
        assert r["log_frequency"] == pytest.approx(math.log10(r["frequency"] * 1e9 + 1))
    assert set(table["class"]) == set(CLASSES)
    # Spearman per level against per_class.csv and wordfreq, computed independently
    run = load_run(out)
    per_class = pd.read_csv(out / "per_class.csv")
    summary = pd.read_csv(out / "frequency_summary.csv")
    for level, g in per_class.groupby("level"):
        freq = g["class"].map(lambda c: word_frequency(CLASSES[c][0], "en"))
        row = summary[summary["level"] == level].iloc[0]
        if g["recall"].nunique() > 1:
            assert row["spearman_rho"] == pytest.approx(spearmanr(freq, g["recall"]).statistic)
        else:
            assert math.isnan(row["spearman_rho"])
    assert run.config["class_frequency"] == "wordfreq"
