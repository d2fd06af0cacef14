"""A deliberately tiny random-initialised open_clip model and a four-class image set.

They exercise the whole pipeline in seconds where the bundled demo backbones are not
installed (the app's self-test falls back to them) and in tests and benchmarks, which
need a real model but not a trained one.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_CLASSES = {
    "red square": ["red square", "crimson block", "scarlet tile"],
    "green circle": ["green circle", "lime disc"],
    "blue triangle": ["blue triangle", "navy wedge", "azure pyramid", "cobalt spike"],
    "yellow bar": ["yellow bar", "golden strip"],
}
TINY_COLOURS = {"red square": (220, 30, 30), "green circle": (30, 200, 40), "blue triangle": (30, 40, 220),
                "yellow bar": (230, 220, 30)}


def tiny_config(embed_dim: int = 32) -> dict:
    """An open_clip model config that builds in well under a second on a CPU."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }


def write_tiny_model(folder: Path, name: str = "tiny-clip", seed: int = 0, embed_dim: int = 32,
                     checkpoint_name: str | None = None) -> tuple[Path, Path]:
    """(config .json, state-dict checkpoint) of a random-initialised tiny CLIP, written once."""
    import open_clip
    import torch

    from core.models.openclip import _quiet_open_clip

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / f"{name}.json"
    ck = folder / (checkpoint_name or f"{name}.pt")
    if not cfg.is_file():
        cfg.write_text(json.dumps(tiny_config(embed_dim)))
    open_clip.add_model_config(cfg)
    if not ck.is_file():
        torch.manual_seed(seed)
        with _quiet_open_clip():
            model = open_clip.create_model(name)
        torch.save(model.state_dict(), ck)
    return cfg, ck


def write_tiny_dataset(root: Path, per_class: int = 4) -> tuple[Path, Path]:
    """(images folder, labels.csv) of four coloured-noise classes."""
    import numpy as np
    from PIL import Image

    images = Path(root) / "images"
    rng = np.random.default_rng(0)
    for c in TINY_CLASSES:
        (images / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = np.clip(np.array(TINY_COLOURS[c], float) + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr, "RGB").save(images / c / f"{i:03d}.png")
    labels = Path(root) / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in TINY_CLASSES.items() for n in ns),
                      encoding="utf-8")
    return images, labels
