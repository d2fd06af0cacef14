"""CLIP_benchmark class names and templates as presets, checked against the package's JSON files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from core.cli import main
from core.util.errors import InputError
from core.labels.labelset import load_labels, load_templates

spec = importlib.util.find_spec("clip_benchmark")
pytestmark = pytest.mark.skipif(spec is None, reason="clip_benchmark is not installed")


def package_json(name: str) -> dict:
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets"
    return json.loads((folder / name).read_text(encoding="utf-8"))


def test_names_and_templates_match_the_package_files():
    names = package_json("en_classnames.json")
    templates = package_json("en_zeroshot_classification_templates.json")
    for key in ("gtsrb", "eurosat", "flowers", "imagenet1k"):
        labels = load_labels(f"clip_benchmark:{key}")
        assert [v[0] for v in labels.names.values()] == names[key]
        assert labels.max_names == 1 and set(sum(labels.sources.values(), [])) == {"clip_benchmark"}
    for key in ("cifar10", "food101", "gtsrb"):
        got = load_templates(f"clip_benchmark:{key}")
        assert got == [t.replace("{c}", "{}") for t in templates[key]] and all("{}" in t for t in got)
    # a dataset with names but no templates of its own uses imagenet1k's, as CLIP_benchmark does
    assert "pcam" not in templates or load_templates("clip_benchmark:pcam")
    assert load_templates("clip_benchmark:caltech101_vtab") == [
        t.replace("{c}", "{}") for t in templates.get("caltech101_vtab", templates["imagenet1k"])]


def test_dataset_classes_are_matched_by_name_or_position():
    cifar = load_labels("clip_benchmark:cifar10")
    assert cifar.classes[:3] == ["airplane", "automobile", "bird"]
    # by name, whatever the dataset's order and spelling
    shuffled = ["truck", "Airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship"]
    by_name = load_labels("clip_benchmark:cifar10", dataset_classes=shuffled)
    assert by_name.names["Airplane"] == ["airplane"] and by_name.names["truck"] == ["truck"]
    assert not by_name.warnings
    # by position when the names differ (GTSRB's torchvision classes are numbers)
    gtsrb_names = package_json("en_classnames.json")["gtsrb"]
    by_pos = load_labels("clip_benchmark:gtsrb", dataset_classes=[str(i) for i in range(len(gtsrb_names))])
    assert by_pos.names["0"] == [gtsrb_names[0]] and by_pos.names["42"] == [gtsrb_names[42]]
    assert "by position" in by_pos.warnings[0]
    with pytest.raises(InputError, match="no class names"):
        load_labels("clip_benchmark:not-a-dataset")


def test_torchvision_named_presets_and_suggest(tmp_path, capsys):
    from tests.core.test_torchvision_datasets import food101

    with pytest.raises(InputError) as e:
        load_labels("clip_benchmark:food101", data_root=str(tmp_path / "none"))
    assert "torchvision's Food101" in str(e.value) and "--data-root" in str(e.value)
    food101(tmp_path)
    labels = load_labels("clip_benchmark:food101", data_root=str(tmp_path))
    assert [v[0] for v in labels.names.values()] == ["apple pie", "baby back ribs"]
    # swept with tv:Food101, the classes are the dataset's own keys
    keyed = load_labels("clip_benchmark:food101", dataset_classes=["apple_pie", "baby_back_ribs"])
    assert keyed.names == {"apple_pie": ["apple pie"], "baby_back_ribs": ["baby back ribs"]}
    out = tmp_path / "food.csv"
    rc = main(["suggest", "--classes", "clip_benchmark:food101", "--data-root", str(tmp_path), "--per-class", "1",
               "--out", str(out), "--quiet"])
    assert rc == 0
    rows = out.read_text().splitlines()
    assert rows[0].startswith("class,synonym") and "apple pie" in rows[1]
