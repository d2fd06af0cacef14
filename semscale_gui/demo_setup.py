"""What makes the app useful on first launch with no network: the demo dataset under the
user data folder and the bundled demo backbones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from semscale_gui import settings

# Ticked on first launch: two backbones, so the first sweep already shows how they combine.
DEFAULT_DEMOS = ("demo-vit", "demo-resnet")


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
    out = {k: v for k, v in index.items()
           if isinstance(v, dict) and (resources.ROOT / "models" / str(v.get("weights", ""))).is_file()}
    if (resources.ROOT / "models" / "demo-vlm" / "config.json").is_file():
        # offered, not ticked (DEFAULT_DEMOS): its 300 answers took 8.7 s on two CPU cores, which with the two
        # CLIP demos and their ensembles brings the first demo sweep close to 30 s
        out["demo-vlm"] = {"description": "the bundled tiny vision-language model (LLaVA architecture; open "
                                          "answers to \"What type of object is in this photo?\")", "kind": "vlm"}
    return out


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
