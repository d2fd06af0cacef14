import json

import pytest

from core.util.errors import InputError
from core.labels.labelset import default_levels, load_labels, load_templates, parse_levels, preset_templates


def test_csv_ranked_names_and_header(labels_csv):
    ls = load_labels(labels_csv)
    assert ls.classes == ["red square", "green circle", "blue triangle", "yellow bar"]
    assert ls.names["blue triangle"] == ["blue triangle", "navy wedge", "azure pyramid", "cobalt spike"]
    assert ls.max_names == 4
    assert ls.warnings == []


def test_json_labels(tmp_path):
    p = tmp_path / "l.json"
    p.write_text(json.dumps({"cat": ["cat", "kitty"], "dog": "dog"}))
    ls = load_labels(p)
    assert ls.names == {"cat": ["cat", "kitty"], "dog": ["dog"]}


def test_name_under_two_classes_is_a_warning(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("cat,cat\ncat,pet\ndog,dog\ndog,Pet\n")
    ls = load_labels(p)
    assert len(ls.warnings) == 1 and "pet" in ls.warnings[0].lower() and "cat" in ls.warnings[0]


@pytest.mark.parametrize(
    "text,line",
    [
        ("class,synonym\ncat,cat\ndog\n", 3),  # missing column
        ("class,synonym\ncat,cat\n,doggo\n", 3),  # empty class
        ("cat,cat\ndog,dog,src,extra\n", 2),  # too many columns
    ],
)
def test_malformed_csv_names_line(tmp_path, text, line):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(InputError) as e:
        load_labels(p)
    assert e.value.line == line
    assert str(e.value).startswith(f"{p}:{line}:")


def test_malformed_json_names_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{\n  "cat": ["cat",\n  "dog": ["dog"]\n}\n')
    with pytest.raises(InputError) as e:
        load_labels(p)
    assert e.value.line == 3


def test_json_wrong_type_names_class(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{\n  "cat": ["cat"],\n  "dog": [1, 2]\n}\n')
    with pytest.raises(InputError) as e:
        load_labels(p)
    assert e.value.line == 3 and e.value.field == "dog"


def test_non_utf8_names_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_bytes(b"cat,cat\ndog,d\xe9og\n")
    with pytest.raises(InputError) as e:
        load_labels(p)
    assert e.value.line == 2


def test_templates_presets_and_file(tmp_path):
    import open_clip

    assert preset_templates("plain") == ["a photo of a {}."]
    openai = preset_templates("openai")
    assert len(openai) == len(open_clip.OPENAI_IMAGENET_TEMPLATES) == 80
    assert openai[0] == open_clip.OPENAI_IMAGENET_TEMPLATES[0]("{}")
    f = tmp_path / "t.txt"
    f.write_text("# comment\na {}.\n\nart of {}\n")
    assert load_templates(f) == ["a {}.", "art of {}"]
    f.write_text("a {}.\nno placeholder\n")
    with pytest.raises(InputError) as e:
        load_templates(f)
    assert e.value.line == 2


def test_levels():
    assert default_levels(1) == [1]
    assert default_levels(8) == [1, 2, 4, 8]
    assert default_levels(6) == [1, 2, 4, 6]
    assert parse_levels("4,1,2", 8) == [1, 2, 4]
    with pytest.raises(InputError):
        parse_levels("1,x", 8)
    with pytest.raises(InputError):
        parse_levels("0,1", 8)


def test_orderings_keep_canonical_first(labels_csv):
    ls = load_labels(labels_csv)
    o0 = ls.ordered(0)
    assert o0 == ls.names
    o1 = ls.ordered(1, seed=3)
    assert o1 == ls.ordered(1, seed=3)  # seeded
    for c in ls.classes:
        assert o1[c][0] == ls.names[c][0]
        assert sorted(o1[c]) == sorted(ls.names[c])
    assert any(ls.ordered(o, seed=3)["blue triangle"] != ls.names["blue triangle"] for o in range(1, 6))
