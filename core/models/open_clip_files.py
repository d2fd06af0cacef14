"""What semscale reads from the installed open_clip (and torch) without importing them.

``import open_clip`` costs seconds (it imports torch, torchvision, timm), yet a re-run
whose embeddings are all cached only needs open_clip's version, its model configs (JSON
files) and its template lists (a module without imports). Those are read straight from
the package's files here; anything else, or a layout this does not recognise, falls back
to importing open_clip, so the values are always open_clip's own.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from functools import lru_cache
from typing import Optional

from core.util.versions import package_dir, package_version  # noqa: F401  (re-exported)

REQUIRED_KEYS = ("embed_dim", "vision_cfg", "text_cfg")  # what open_clip's registry requires of a config


@lru_cache(maxsize=None)
def version() -> str:
    """``open_clip.__version__``."""
    return package_version("open_clip")


@lru_cache(maxsize=1)
def builtin_configs() -> dict[str, dict]:
    """open_clip's bundled model configs by architecture name (``open_clip.list_models()`` before any
    ``add_model_config``), read the way open_clip reads them."""
    d = package_dir()
    folder = d / "model_configs" if d is not None else None
    if folder is None or not folder.is_dir():
        import open_clip

        return {name: open_clip.get_model_config(name) for name in open_clip.list_models()}
    out = {}
    for f in folder.glob("*.json"):
        with open(f, encoding="utf-8") as fh:
            cfg = json.load(fh)
        if all(k in cfg for k in REQUIRED_KEYS):
            out[f.stem] = cfg
    return out


def known_models() -> list[str]:
    """``open_clip.list_models()``: once open_clip is imported, its registry (which holds configs added
    with ``add_model_config``); before that, nothing can have been added, so its bundled files."""
    if "open_clip" in sys.modules:
        return sys.modules["open_clip"].list_models()
    return list(builtin_configs())


def model_config(name: str) -> Optional[dict]:
    """``open_clip.get_model_config(name)`` for a registered architecture (a fresh copy)."""
    if "open_clip" in sys.modules:
        return sys.modules["open_clip"].get_model_config(name)
    cfg = builtin_configs().get(name)
    return copy.deepcopy(cfg) if cfg is not None else None


@lru_cache(maxsize=1)
def _zero_shot_metadata():
    d = package_dir()
    path = d / "zero_shot_metadata.py" if d is not None else None
    if path is None or not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_semscale_open_clip_zero_shot_metadata", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # plain lists of template lambdas; imports nothing
    except Exception:
        return None
    return module


def templates(attribute: str) -> tuple:
    """``open_clip.OPENAI_IMAGENET_TEMPLATES`` / ``SIMPLE_IMAGENET_TEMPLATES``."""
    module = _zero_shot_metadata()
    if module is not None and hasattr(module, attribute):
        return getattr(module, attribute)
    import open_clip

    return getattr(open_clip, attribute)
