"""Shared fixtures: tiny real datasets on disk and a tiny random-initialised open_clip model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.demo.tiny import write_tiny_model

CLASSES = {
    "red square": ["red square", "crimson block", "scarlet tile"],
    "green circle": ["green circle", "lime disc"],
    "blue triangle": ["blue triangle", "navy wedge", "azure pyramid", "cobalt spike"],
    "yellow bar": ["yellow bar"],
}
COLOURS = {"red square": (220, 30, 30), "green circle": (30, 200, 40), "blue triangle": (30, 40, 220), "yellow bar": (230, 220, 30)}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's real cache folder from tests."""
    monkeypatch.setenv("SEMSCALE_CACHE_DIR", str(tmp_path_factory.mktemp("user-cache")))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> tuple[str, str]:
    """(config .json path, checkpoint path) of a random-initialised tiny CLIP."""
    cfg, ck = write_tiny_model(tmp_path_factory.mktemp("tiny-model"))
    return str(cfg), str(ck)


def make_image(cls: str, i: int, size: int = 40) -> Image.Image:
    rng = np.random.default_rng(hash((cls, i)) % (2**32))
    base = np.array(COLOURS[cls], dtype=float)
    arr = np.clip(base + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def write_image_folder(root: Path, per_class: int = 4, fmt: str = "png") -> Path:
    for cls in CLASSES:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            make_image(cls, i).save(root / cls / f"{i:03d}.{fmt}")
    return root


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return write_image_folder(tmp_path / "images")


@pytest.fixture
def labels_csv(tmp_path) -> Path:
    p = tmp_path / "labels.csv"
    lines = ["class,synonym"] + [f"{c},{n}" for c, names in CLASSES.items() for n in names]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def two_backbone_run(tiny_model, tmp_path_factory) -> Path:
    """A finished run of two tiny backbones (A, B) at levels 1, 2, 4 on 16 images, with class
    frequencies, saved logits and flips.csv: what drill-down tests look into."""
    import open_clip
    import torch

    from core.models.openclip import BackboneSpec
    from core.pipeline.runner import SweepConfig, run_sweep

    cfg, ck = tiny_model
    root = tmp_path_factory.mktemp("two-backbones")
    images = write_image_folder(root / "images")
    labels = root / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in CLASSES.items() for n in ns))
    freq = root / "freq.csv"
    freq.write_text("class,frequency\nred square,1000\ngreen circle,10\nblue triangle,300\nyellow bar,5\n")
    open_clip.add_model_config(cfg)
    torch.manual_seed(1)
    second = root / "seed1.pt"
    torch.save(open_clip.create_model("tiny-clip").state_dict(), second)
    config = SweepConfig(
        dataset=str(images), out=str(root / "run"), labels=str(labels), templates="plain", levels=[1, 2, 4],
        backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu", label="A"),
                   BackboneSpec(cfg, checkpoint=str(second), device="cpu", label="B")],
        num_workers=0, bootstrap=50, ensemble_shots=[], cache_dir=str(root / "cache"), class_frequency=str(freq),
    )
    assert run_sweep(config).status == "completed"
    return root / "run"


@pytest.fixture(scope="module")
def second_checkpoint(tiny_model, tmp_path_factory) -> str:
    """The tiny model with other random weights: a second backbone of the same architecture."""
    import open_clip
    import torch

    cfg, _ = tiny_model
    open_clip.add_model_config(cfg)
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("tiny-b") / "seed1.pt"
    torch.save(open_clip.create_model("tiny-clip").state_dict(), path)
    return str(path)
