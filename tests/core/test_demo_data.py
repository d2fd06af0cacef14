"""The demo dataset generator: deterministic, well-formed, and shaped for the demo's effects."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.demo import data
from core.demo.data import DEMO_CLASSES, write_demo_dataset


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return write_demo_dataset(tmp_path_factory.mktemp("demo"), seed=0, n_per_class=4)


def test_same_seed_gives_byte_identical_files(demo: Path, tmp_path: Path) -> None:
    again = write_demo_dataset(tmp_path / "again", seed=0, n_per_class=4)
    assert _digests(demo) == _digests(again)


def test_other_seed_gives_other_images(demo: Path, tmp_path: Path) -> None:
    other = write_demo_dataset(tmp_path / "other", seed=1, n_per_class=4)
    a, b = _digests(demo), _digests(other)
    assert a["labels.csv"] == b["labels.csv"]
    images = [k for k in a if k.endswith(".png")]
    assert all(a[k] != b[k] for k in images)


def test_larger_set_extends_smaller_one(demo: Path, tmp_path: Path) -> None:
    bigger = write_demo_dataset(tmp_path / "big", seed=0, n_per_class=6)
    a, b = _digests(demo), _digests(bigger)
    for k, v in a.items():
        if k.endswith(".png"):
            assert b[k] == v


def test_imagefolder_layout_and_counts(demo: Path) -> None:
    folders = sorted(p.name for p in (demo / "images").iterdir())
    assert folders == sorted(DEMO_CLASSES)
    assert 8 <= len(DEMO_CLASSES) <= 12
    for cls in DEMO_CLASSES:
        files = sorted((demo / "images" / cls).glob("*.png"))
        assert [f.name for f in files] == ["000.png", "001.png", "002.png", "003.png"]
        with Image.open(files[0]) as im:
            assert im.size == (64, 64) and im.mode == "RGB"


def test_labels_csv_is_ranked_and_complete(demo: Path) -> None:
    with open(demo / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["class", "synonym", "source"]
    per_class: dict[str, list[tuple[str, str]]] = {}
    for cls, name, source in rows[1:]:
        per_class.setdefault(cls, []).append((name, source))
    assert list(per_class) == list(DEMO_CLASSES)
    for cls, names in per_class.items():
        assert len(names) == 8, cls
        assert names[0] == (cls, "canonical")
        assert len({n for n, _ in names}) == 8, f"duplicate name within {cls}"
        assert all(n.strip() == n and n for n, _ in names)
    # High levels must add names shared between classes (the source of the fall).
    shared = [n for names in per_class.values() for n, s in names if s == "shared"]
    assert len(shared) >= 6
    assert all(s == "shared" for names in per_class.values() for n, s in names[4:] if n in shared)


def test_labels_rank_follows_caption_frequency() -> None:
    for i in range(len(DEMO_CLASSES)):
        p = data.name_probabilities(i)
        assert np.all(np.diff(p) < 0), "names must be listed from most to least frequent"


def test_class_frequency_csv(demo: Path) -> None:
    with open(demo / "class_frequency.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["class", "frequency"]
    freq = {c: int(v) for c, v in rows[1:]}
    assert list(freq) == list(DEMO_CLASSES)
    assert all(v > 0 for v in freq.values())
    assert max(freq.values()) / min(freq.values()) >= 5


def test_vlm_training_frequency_csv(demo: Path) -> None:
    """The demo VLM's designed class frequencies: a geometric series over two orders of magnitude."""
    with open(demo / "vlm_training_frequency.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["class", "frequency"]
    freq = {c: int(v) for c, v in rows[1:]}
    assert list(freq) == list(DEMO_CLASSES)
    counts = np.asarray(list(freq.values()), dtype=float)
    assert counts.sum() == pytest.approx(data.VLM_CORPUS, abs=len(counts))
    ratio = data.VLM_FREQUENCY_RATIO
    expected = data.VLM_CORPUS * ratio ** np.arange(10) * (1 - ratio) / (1 - ratio ** 10)
    assert np.abs(counts - expected).max() <= 0.5
    assert counts.max() / counts.min() >= 100


def test_vlm_examples_follow_the_designed_mix() -> None:
    import itertools

    examples = list(itertools.islice(data.vlm_examples(seed=5, image_size=16), 800))
    classes = [e.rendered.cls for e in examples]
    share = np.asarray([classes.count(c) for c in DEMO_CLASSES]) / len(classes)
    w = data.vlm_class_weights()
    # Binomial standard errors: every class within 4 of them.
    assert np.all(np.abs(share - w) <= 4 * np.sqrt(w * (1 - w) / len(classes)) + 1e-9)
    asks = [e for e in examples if e.prompt == data.VLM_PROMPT]
    assert 0.65 < len(asks) / len(examples) < 0.85
    labels = data.demo_labels()
    assert all(e.answer in labels[e.rendered.cls] for e in asks)
    first = np.mean([e.answer == e.rendered.cls for e in asks])
    assert 0.55 < first < 0.8
    captions = [e for e in examples if e.prompt != data.VLM_PROMPT]
    assert all(e.prompt in data.VLM_CAPTION_PROMPTS and e.answer.endswith(".") for e in captions)
    again = [(e.rendered.cls, e.prompt, e.answer) for e in itertools.islice(data.vlm_examples(5, 16), 50)]
    assert again == [(e.rendered.cls, e.prompt, e.answer) for e in examples[:50]]


def test_readme_written(demo: Path) -> None:
    text = (demo / "README.txt").read_text(encoding="utf-8")
    assert "labels.csv" in text and "class_frequency.csv" in text
    assert "vlm_training_frequency.csv" in text


def test_variants_and_captions() -> None:
    items = list(data.demo_items(seed=0, n_per_class=40))
    share_b = np.mean([it.variant == "B" for it in items])
    assert 0.2 < share_b < 0.5
    stream = data.training_stream(seed=3)
    captions = [next(stream)[1] for _ in range(300)]
    assert len(set(captions)) > 100
    assert any(c == "a photo of a house." for c in captions)


def test_training_stream_never_repeats_held_out_images() -> None:
    held_out = {hashlib.sha256(img.tobytes()).hexdigest() for _, img in data.iter_demo_images(0, 3)}
    stream = data.training_stream(seed=0)
    train = {hashlib.sha256(next(stream)[0].image.tobytes()).hexdigest() for _ in range(200)}
    assert not held_out & train


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        write_demo_dataset("unused", n_per_class=0)


def test_import_stays_light() -> None:
    code = ("import sys, core.demo.data, core.demo; "
            "bad = [m for m in ('torch', 'open_clip', 'PySide6', 'pyqtgraph') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
