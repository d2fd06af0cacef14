"""Prompts shared by the generative model kinds (local VLMs and chat endpoints)."""

from __future__ import annotations

import hashlib
import random
from typing import Sequence

DEFAULT_PROMPT = "What type of object is in this photo?"  # Zhang et al. (2024)
VLM_MODES = ("open", "closed", "likelihood")
VLM_NORMS = ("mean", "sum")
DEFAULT_MAX_NEW_TOKENS = 64


def closed_prompt(prompt: str, names: Sequence[str], *, seed: int = 0, image_key: str = "") -> str:
    """``prompt`` + `` Choose one from "a, b, …"`` listing each name once, in an order shuffled
    per image (seeded by ``seed`` and the image's content key, so a re-run asks the same)."""
    listed = list(dict.fromkeys(names))
    digest = hashlib.sha256(f"{seed}\0{image_key}".encode()).digest()
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(listed)
    return f'{prompt} Choose one from "{", ".join(listed)}"'
