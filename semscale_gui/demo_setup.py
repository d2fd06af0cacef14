"""What makes the app useful on first launch with no network: the demo dataset under the
user data folder, the bundled demo backbones, and (when those are not installed) a tiny
random-initialised open_clip model so the plumbing can still be exercised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from . import settings

# Ticked on first launch: two backbones, so the first sweep already shows how they combine.
DEFAULT_DEMOS = ("demo-vit", "demo-resnet")

TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def demo_models() -> dict:
    """Bundled demo backbones whose weights are present ({} when not installed)."""
    import resources

    p = resources.ROOT / "models" / "index.json"
    if not p.is_file():
        return {}
    try:
        index = json.loads(p.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return {k: v for k, v in index.items()
            if isinstance(v, dict) and (resources.ROOT / "models" / str(v.get("weights", ""))).is_file()}


def demo_dataset_dir(base: Optional[Path] = None) -> Path:
    return (base or settings.data_dir()) / "demo"


def ensure_demo_dataset(base: Optional[Path] = None, n_per_class: int = 30) -> Optional[Path]:
    """The demo ImageFolder root (written once), or None if the generator is not installed."""
    try:
        from core.demo.data import GENERATOR_VERSION, write_demo_dataset
    except ImportError:
        return None
    root = demo_dataset_dir(base)
    stamp = root / ".semscale-demo"
    want = f"{GENERATOR_VERSION}:{n_per_class}"
    if not (stamp.is_file() and stamp.read_text().strip() == want and (root / "images").is_dir()):
        write_demo_dataset(root, n_per_class=n_per_class)
        stamp.write_text(want)
    return root / "images"


def write_tiny_dataset(root: Path, per_class: int = 4) -> tuple[Path, Path]:
    """(images folder, labels.csv) of four coloured-shape classes, for when the demo is absent."""
    import numpy as np
    from PIL import Image

    classes = {"red square": ["red square", "crimson block", "scarlet tile"],
               "green circle": ["green circle", "lime disc"],
               "blue triangle": ["blue triangle", "navy wedge", "azure pyramid", "cobalt spike"],
               "yellow bar": ["yellow bar", "golden strip"]}
    rgb = {"red square": (220, 30, 30), "green circle": (30, 200, 40), "blue triangle": (30, 40, 220),
           "yellow bar": (230, 220, 30)}
    images = root / "images"
    rng = np.random.default_rng(0)
    for c in classes:
        (images / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = np.clip(np.array(rgb[c], float) + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr, "RGB").save(images / c / f"{i:03d}.png")
    labels = root / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in classes.items() for n in ns),
                      encoding="utf-8")
    return images, labels


def make_tiny_backbone(folder: Path, seed: int = 0) -> dict:
    """A random-initialised tiny open_clip model saved as config + checkpoint; returns a spec dict."""
    import open_clip
    import torch

    from core.backbones import _quiet_open_clip

    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "tiny-clip.json"
    ck = folder / f"tiny-clip-seed{seed}.pt"
    if not cfg.is_file():
        cfg.write_text(json.dumps(TINY_CONFIG))
    if not ck.is_file():
        open_clip.add_model_config(cfg)
        torch.manual_seed(seed)
        with _quiet_open_clip():
            model = open_clip.create_model("tiny-clip")
        torch.save(model.state_dict(), ck)
    return {"model": str(cfg), "pretrained": None, "checkpoint": str(ck), "label": f"tiny-random-{seed}"}
