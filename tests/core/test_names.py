"""One name key, one display name, one slug, one atomic writer, str-valued enums."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.util.events import Stage, Status, stage_title
from core.stats.external import load_external_predictions
from core.util.files import atomic_path, atomic_write_json
from core.labels.labelset import labels_from_classes, load_labels, shared_names
from core.util.names import display_name, name_key, slug


def test_a_class_without_names_gets_its_display_name_in_csv_and_json(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("class,synonym\nlawn_mower,\ndog,dog\n", encoding="utf-8")
    js = tmp_path / "labels.json"
    js.write_text(json.dumps({"lawn_mower": [], "dog": ["dog"]}), encoding="utf-8")
    for labels in (load_labels(csv), load_labels(js), labels_from_classes(["lawn_mower", "dog"])):
        assert labels.names == {"lawn_mower": ["lawn mower"], "dog": ["dog"]}
        assert labels.sources["lawn_mower"] == ["class"]


def test_one_key_for_duplicates_everywhere(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("class,synonym\ndog,Dog\ndog,hound\nwolf,dogs\nwolf,wolf\n", encoding="utf-8")
    labels = load_labels(csv)
    assert labels.warnings == ["name 'dogs' appears under classes 'dog' and 'wolf'"]
    assert shared_names(labels.names) == {"dog": ["dog", "wolf"]}
    assert name_key("Hot_Dogs!") == name_key("hot dog") == "hot dog"
    assert display_name("lawn_mower") == "lawn mower"


def test_external_answers_use_the_same_key(tmp_path):
    labels = labels_from_classes(["lawn_mower", "dog"])
    answers = tmp_path / "vlm.csv"
    answers.write_text("image,predicted_class\na.png,Lawn-Mowers\nb.png,dogs.\nc.png,cat\n", encoding="utf-8")
    ext = load_external_predictions(f"vlm={answers}", labels)
    assert list(ext.for_images(["a.png", "b.png", "c.png"])) == [0, 1, -1]
    assert ext.unmatched_answers == {"cat": 1}


def test_slug():
    assert slug("ViT-B-32/laion2b") == "ViT-B-32_laion2b"
    assert slug("???") == "item" and slug("my data set", "-", 4, "run") == "my-d"


def test_atomic_writer_keeps_the_old_file_on_failure(tmp_path):
    p = tmp_path / "run.json"
    atomic_write_json(p, {"status": Status.RUNNING})
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("{half")
            raise RuntimeError("killed mid-write")
    assert json.loads(p.read_text()) == {"status": "running"}
    assert [f.name for f in tmp_path.iterdir()] == ["run.json"]


def test_enums_serialise_as_their_values():
    assert json.dumps({"status": Status.COMPLETED}) == '{"status": "completed"}'
    assert f"{Stage.ENCODE_IMAGES}" == "encode-images" and Stage.SCORE == "score"
    assert pd.DataFrame([{"s": Status.CANCELLED}]).to_csv(index=False) == "s\ncancelled\n"
    assert {"score": 1}[Stage.SCORE] == 1
    assert stage_title("encode-text") == "encoding prompts" and stage_title("custom") == "custom"
