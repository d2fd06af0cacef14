"""The Python API (core.sweep / core.score_embeddings / core.load_run) and docs/api.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import core
from core.models.registry import parse_backbone
from core.util.config import BackboneSpec
from tests.conftest import CLASSES

ROOT = Path(__file__).resolve().parents[2]


def test_import_core_stays_cheap():
    code = ("import sys, core; assert core.__version__; "
            "print(sorted(m for m in ('torch', 'open_clip', 'pandas', 'PySide6') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("text, want", [
    ("demo-resnet", BackboneSpec("demo-resnet")),
    ("ViT-B-32@laion2b_s34b_b79k", BackboneSpec("ViT-B-32", pretrained="laion2b_s34b_b79k")),
    ("tiny.json=/w/tiny.pt", BackboneSpec("tiny.json", checkpoint="/w/tiny.pt")),
])
def test_backbone_strings(text, want):
    assert parse_backbone(text) == want


def test_unknown_option_is_named(image_folder, labels_csv):
    with pytest.raises(core.InputError, match="bootstrapp"):
        core.sweep(dataset=image_folder, labels=labels_csv, bootstrapp=10)


def _independent_top1(tiny_model, image_folder, k):
    """Level-k flat top-1 computed here with open_clip directly (plain template)."""
    import open_clip
    import torch
    from PIL import Image

    cfg, ck = tiny_model
    open_clip.add_model_config(cfg)
    model, _, preprocess = open_clip.create_model_and_transforms(Path(cfg).stem, pretrained=None)
    open_clip.load_checkpoint(model, ck, weights_only=True)
    model.eval()
    tok = open_clip.get_tokenizer(Path(cfg).stem)
    classes = list(CLASSES)
    names = [(ci, n) for ci, c in enumerate(classes) for n in CLASSES[c][:k]]
    files = sorted(image_folder.glob("*/*.png"))
    with torch.no_grad():
        T = torch.nn.functional.normalize(model.encode_text(tok([f"a photo of a {n}." for _, n in names])), dim=-1)
        X = torch.nn.functional.normalize(
            model.encode_image(torch.stack([preprocess(Image.open(f).convert("RGB")) for f in files])), dim=-1)
    owner = np.array([ci for ci, _ in names])
    pred = owner[(X @ T.T).numpy().argmax(axis=1)]
    truth = np.array([classes.index(f.parent.name) for f in files])
    return float((pred == truth).mean()), X.numpy(), [f.parent.name for f in files], \
        [f"{f.parent.name}/{f.name}" for f in files]


def test_sweep_in_memory_matches_independent_scoring(tiny_model, image_folder, labels_csv, tmp_path, monkeypatch):
    cfg, ck = tiny_model
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = core.sweep(dataset=image_folder, labels=labels_csv, backbones=[f"{cfg}={ck}"], levels=[1, 2, 4],
                        templates="plain", out=None, device="cpu", num_workers=0, bootstrap=100)
    assert list(work.iterdir()) == []  # nothing written into the working folder
    assert result.run_dir is None and result.status == "completed"
    assert not Path(result.config["out"]).exists()  # the temporary run folder is gone
    assert isinstance(result, core.RunResult)
    assert list(result.levels["level"]) == [1, 2, 4]
    assert len(result.predictions) == 3 * 16 and len(result.per_class) == 3 * 4
    assert result.ensembles is None and result.frequency is None and result.skipped.empty
    for k in (1, 2, 4):
        top1, *_ = _independent_top1(tiny_model, image_folder, k)
        assert result.levels.set_index("level").loc[k, "top1"] == pytest.approx(top1)
    # levels.csv and predictions.csv agree with each other (pandas on the returned frames)
    by_level = result.predictions.groupby("level")["correct"].mean()
    assert np.allclose(by_level.values, result.levels["top1"].values)


def test_score_embeddings_and_load_run(tiny_model, image_folder, labels_csv, tmp_path):
    cfg, ck = tiny_model
    spec = BackboneSpec(cfg, checkpoint=ck, device="cpu")
    top1, X, classes, ids = _independent_top1(tiny_model, image_folder, 1)
    out = tmp_path / "run"
    scored = core.score_embeddings(X * 3.0, classes, labels_csv, spec, levels=[1, 2], templates="plain",
                                   image_ids=ids, out=out, bootstrap=100)
    assert scored.run_dir == out and (out / "run.json").is_file()
    assert scored.levels.set_index("level").loc[1, "top1"] == pytest.approx(top1)
    assert sorted(scored.predictions["image"].unique()) == sorted(ids)
    again = core.load_run(out)
    assert type(again) is type(scored)
    pd.testing.assert_frame_equal(again.levels, scored.levels)
    pd.testing.assert_frame_equal(again.per_class, scored.per_class)
    # the temporary embedding store does not outlive the call
    assert not Path(scored.config["embeddings"][0]).exists()
    with pytest.raises(core.InputError, match="true classes"):
        core.score_embeddings(X, classes[:-1], labels_csv, spec)


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_docs_api_example_runs(tmp_path, monkeypatch):
    """Every python block of docs/api.md, run in order like notebook cells."""
    blocks = _python_blocks((ROOT / "docs" / "api.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/api.md block {i + 1}", "exec"), namespace)
    assert namespace["result"].run_dir is None
    assert (tmp_path / "runs" / "demo" / "run.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "runs"]
