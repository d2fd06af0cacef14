"""Every user-supplied table fails with one line naming file, line and field."""

import pytest

from core.data import load_dataset
from core.util.errors import InputError
from core.stats.external import load_external_predictions
from core.stats.frequency import load_class_frequency
from core.labels.labelset import LabelSet, load_labels, load_templates

LABELS = LabelSet(names={"dog": ["dog", "puppy"], "cat": ["cat"]})


def _err(fn, path):
    with pytest.raises(InputError) as e:
        fn(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path))
    return e.value


@pytest.mark.parametrize("content,line,field", [
    (b"klass,frequency\ndog,3\n", 1, "class"),
    (b"class,frequency\ndog,3\ncat,many\n", 3, "frequency"),
    (b"class,frequency\ndog,3\ndog,4\n", 3, "class"),
    (b"class,frequency\ndog,-1\n", 2, "frequency"),
    (b"", 1, None),
    (b"class,frequency\ndog,3\ncaf\xe9,4\n", 3, None),  # the line of the bad byte
])
def test_frequency_csv(tmp_path, content, line, field):
    p = tmp_path / "freq.csv"
    p.write_bytes(content)
    e = _err(load_class_frequency, p)
    assert e.line == line and e.field == field


@pytest.mark.parametrize("content,line,field", [
    (b"img,predicted_class\na.png,dog\n", 1, "image"),
    (b"image,answer\na.png,dog\n", 1, "predicted_class"),
    (b"image,predicted_class\na.png,dog\na.png,cat\n", 3, "image"),
    (b"", 1, None),
])
def test_external_predictions_csv(tmp_path, content, line, field):
    p = tmp_path / "vlm.csv"
    p.write_bytes(content)
    e = _err(lambda x: load_external_predictions(f"vlm={x}", LABELS), p)
    assert e.line == line and e.field == field


def test_external_answers_match_synonyms(tmp_path):
    p = tmp_path / "vlm.csv"
    p.write_text("image,predicted_class\na.png,Puppy.\nb.png,CAT\nc.png,a horse\n")
    ext = load_external_predictions(f"vlm={p}", LABELS)
    assert ext.for_images(["a.png", "b.png", "c.png", "d.png"]).tolist() == [0, 1, -1, -1]
    assert ext.unmatched_answers == {"a horse": 1}


def test_template_without_placeholder(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("a photo of a {}.\na photo of something.\n")
    e = _err(load_templates, p)
    assert e.line == 2 and e.field == "template"


def test_empty_labels_file(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("")
    _err(load_labels, p)


@pytest.mark.parametrize("content,line,field", [
    (b"path\na.png\n", 1, "label"),
    (b"path,label\na.png,\n", 2, "label"),
    (b"path,label\n,dog\n", 2, "path"),
])
def test_manifest_csv(tmp_path, content, line, field):
    p = tmp_path / "m.csv"
    p.write_bytes(content)
    e = _err(load_dataset, p)
    assert e.line == line and e.field == field


@pytest.mark.parametrize("kind", ["labels", "run", "model-config"])
def test_broken_json_names_file_line_and_column(tmp_path, kind):
    """Every JSON a user or an earlier run hands us fails the same way: file, line, column."""
    from core.models.openclip import BackboneSpec, resolve_model
    from core.results.runs import load_run

    text = '{\n  "a": ["x"],\n  "b": ["y"] oops\n}\n'
    column = text.splitlines()[2].index("oops") + 1  # 1-based, where the parser stops
    if kind == "labels":
        path = tmp_path / "labels.json"
        path.write_text(text, encoding="utf-8")
        call = lambda: load_labels(path)  # noqa: E731
    elif kind == "run":
        path = tmp_path / "run.json"
        path.write_text(text, encoding="utf-8")
        call = lambda: load_run(tmp_path)  # noqa: E731
    else:
        path = tmp_path / "tiny.json"
        path.write_text(text, encoding="utf-8")
        call = lambda: resolve_model(BackboneSpec(str(path)))  # noqa: E731
    with pytest.raises(InputError) as err:
        call()
    e = err.value
    assert e.file is not None and str(e.file).endswith(path.name)
    assert e.line == 3
    assert "invalid JSON" in str(e) and f"column {column}" in str(e)
