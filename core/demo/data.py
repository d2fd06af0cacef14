"""Deterministic demo dataset: rendered objects, ranked synonyms and training captions.

Everything is generated from a seed, so nothing but this module has to ship. The same
renderer feeds the trainer of the bundled demo backbones (with a different seed stream),
which is what makes the demo's research effects real rather than staged:

* every class has two visual variants; name #2 is almost the only name captions use for
  variant B, so adding it (level 2) rescues variant-B images the canonical name misses;
* names #5-#8 are rare in captions, several are shared across classes ("orb", "circle",
  "plant", "thing", "shape", "figure"), two are colour words, and three are polysemous:
  listed under one class but used in captions mostly for another ("disc" is a moon name
  that captions use for balls). High levels thus add poorly learned and misleading
  categories, and accuracy stops rising or falls;
* classes differ about 16-fold in how often they occur in captions
  (``class_frequency.csv``), so rarely seen classes are learned less well;
* the bundled demo VLM is taught from instruction examples (``vlm_examples``) in which
  the classes occur at designed frequencies falling geometrically over more than two orders
  of magnitude (217-fold) (``vlm_training_frequency.csv``), so its per-class accuracy follows them.

Pure Python + numpy + PIL: importing it must stay cheap (no torch) and never pulls Qt.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, Union

import numpy as np
from PIL import Image, ImageDraw

GENERATOR_VERSION = 1

# Seed-stream tags: the held-out set and the training streams never share random draws.
_TEST_STREAM = 7_001
_TRAIN_STREAM = 9_001
_VLM_STREAM = 11_001

# Nominal corpus size in which class_frequency.csv counts canonical-name occurrences.
CORPUS_CAPTIONS = 100_000

# Share of images drawn in visual variant B.
P_VARIANT_B = 0.30

# Caption-name distributions over ranks 1..8, per visual variant. Variant A is mostly
# called by the canonical name, variant B almost only by name #2; the class-level mix
# (``name_probabilities``) decreases with rank, which is what labels.csv's order means.
NAME_WEIGHTS_A: tuple[float, ...] = (0.70, 0.02, 0.10, 0.08, 0.04, 0.025, 0.02, 0.015)
NAME_WEIGHTS_B: tuple[float, ...] = (0.05, 0.75, 0.07, 0.06, 0.03, 0.02, 0.01, 0.01)

# Share of captions that use a generic noun whatever the object is.
P_GENERIC = 0.03
GENERIC_NOUNS: tuple[str, ...] = ("thing", "object", "shape", "figure")

# Image variation: background kinds (solid, gradient, stripes, dots), clutter specks, noise.
BACKGROUND_KIND_P: tuple[float, ...] = (0.55, 0.25, 0.1, 0.1)
MAX_CLUTTER = 1
MAX_NOISE_STD = 6.0

SOURCE_BY_RANK: tuple[str, ...] = (
    "canonical", "variant-b", "common", "common", "rare", "rare", "rare", "rare",
)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 40, 40),
    "green": (46, 160, 67),
    "blue": (40, 84, 214),
    "yellow": (240, 212, 44),
    "orange": (244, 136, 28),
    "purple": (128, 56, 176),
    "pink": (244, 128, 188),
    "brown": (122, 74, 36),
    "white": (244, 244, 240),
    "black": (24, 24, 28),
    "grey": (128, 128, 132),
}

# Colour pairs too close to tell apart at 64 px; an object never sits on such a background.
_CLASHES = {
    frozenset(p)
    for p in [("red", "orange"), ("red", "pink"), ("orange", "yellow"), ("orange", "brown"),
              ("red", "brown"), ("purple", "blue"), ("grey", "white"), ("pink", "purple")]
}


@dataclass(frozen=True)
class DemoClass:
    """One demo class: ranked names, relative caption frequency and object palette."""

    names: tuple[str, ...]
    weight: float
    palette: tuple[str, ...]
    spin: float  # max rotation in degrees; 180 means any orientation
    # Rare names listed under another class that captions nevertheless use for this one
    # (name, share of this class's captions) - a synonym list and usage disagree.
    borrowed: tuple[tuple[str, float], ...] = ()

    @property
    def name(self) -> str:
        return self.names[0]


# Ordered from most to least frequent in the training captions.
DEMO_CLASS_SPECS: tuple[DemoClass, ...] = (
    DemoClass(("house", "cabin", "home", "building", "dwelling", "abode", "lodge", "thing"),
              1.00, ("red", "blue", "yellow", "white", "orange", "brown", "grey"), 12),
    DemoClass(("ball", "globe", "sphere", "marble", "bauble", "pellet", "orb", "circle"),
              0.73, ("red", "blue", "yellow", "green", "orange", "pink", "purple", "white"), 180,
              borrowed=(("disc", 0.12),)),
    DemoClass(("tree", "pine", "sapling", "timber", "arbor", "shrub", "plant", "green"),
              0.54, ("green", "green", "green", "orange", "yellow"), 8),
    DemoClass(("star", "sparkle", "asterisk", "twinkle", "starlet", "glint", "figure", "shape"),
              0.39, ("yellow", "orange", "white", "blue", "red", "purple", "pink"), 180,
              borrowed=(("bolt", 0.12),)),
    DemoClass(("boat", "ship", "vessel", "craft", "dinghy", "barge", "yacht", "thing"),
              0.29, ("white", "red", "blue", "yellow", "orange", "brown"), 10),
    DemoClass(("fish", "minnow", "guppy", "carp", "trout", "swimmer", "creature", "figure"),
              0.21, ("orange", "blue", "yellow", "red", "grey", "purple", "green"), 20),
    DemoClass(("flower", "tulip", "blossom", "bloom", "floret", "posy", "petal", "plant"),
              0.15, ("red", "pink", "purple", "yellow", "white", "orange", "blue"), 10,
              borrowed=(("shrub", 0.12),)),
    DemoClass(("arrow", "chevron", "pointer", "dart", "indicator", "bolt", "sign", "figure"),
              0.11, ("red", "blue", "green", "black", "orange", "purple", "yellow"), 180),
    DemoClass(("heart", "valentine", "love", "sweetheart", "cardioid", "ticker", "shape", "red"),
              0.08, ("red", "red", "pink", "purple"), 15),
    DemoClass(("moon", "crescent", "luna", "satellite", "orb", "selene", "disc", "circle"),
              0.06, ("yellow", "white", "grey", "orange"), 25),
)

DEMO_CLASSES: tuple[str, ...] = tuple(c.name for c in DEMO_CLASS_SPECS)

# Caption templates with sampling weights; "a photo of a {name}." is also the zero-shot prompt.
CAPTION_TEMPLATES: tuple[tuple[str, float], ...] = (
    ("a photo of a {name}.", 0.45),
    ("a {colour} {name}.", 0.20),
    ("a {size} {name}.", 0.10),
    ("a {size} {colour} {name}.", 0.10),
    ("a {name} on a {bg} background.", 0.10),
    ("a photo of a {colour} {name} on a {bg} background.", 0.05),
)


@dataclass(frozen=True)
class Rendered:
    """A rendered image and the attributes a caption may mention."""

    image: Image.Image
    cls: str
    variant: str  # "A" or "B"
    colour: str
    background: str
    size: str  # "small" or "large"


# ----------------------------------------------------------------------------- geometry

Shape = tuple  # ("poly", points, role) | ("line", points, width, role)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28,
             a0: float = 0.0, a1: float = 2 * math.pi) -> list[tuple[float, float]]:
    return [(cx + rx * math.cos(a0 + (a1 - a0) * i / n), cy + ry * math.sin(a0 + (a1 - a0) * i / n))
            for i in range(n + (0 if a1 - a0 >= 2 * math.pi else 1))]


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _star(points: int, r_out: float, r_in: float) -> list[tuple[float, float]]:
    pts = []
    for i in range(2 * points):
        r = r_out if i % 2 == 0 else r_in
        a = -math.pi / 2 + math.pi * i / points
        pts.append((r * math.cos(a), r * math.sin(a)))
    return pts


def _heart(scale: float = 1.0, dy: float = 0.0) -> list[tuple[float, float]]:
    pts = []
    for i in range(40):
        t = 2 * math.pi * i / 40
        x = 16 * math.sin(t) ** 3
        y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
        pts.append((x / 17 * scale, (y + 2.5) / 15 * scale + dy))
    return pts


def _crescent(r_out: float, r_in: float, d: float) -> list[tuple[float, float]]:
    """Outer disc minus a disc shifted right by ``d``; returned as one polygon."""
    x = (r_out ** 2 - r_in ** 2 + d ** 2) / (2 * d)
    y = math.sqrt(max(r_out ** 2 - x ** 2, 1e-6))
    a_out = math.atan2(y, x)
    a_in = math.atan2(y, x - d)
    outer = _ellipse(0, 0, r_out, r_out, 30, a_out, 2 * math.pi - a_out)
    inner = _ellipse(d, 0, r_in, r_in, 24, 2 * math.pi - a_in, a_in)
    return outer + inner


def _shapes(cls: str, variant: str, rng: np.random.Generator) -> list[Shape]:
    """Primitives of one object in unit coordinates ([-1, 1], y down)."""
    b = variant == "B"
    if cls == "house":
        if not b:
            return [("poly", _rect(-0.7, -0.1, 0.7, 0.9), "main"),
                    ("poly", [(-0.92, -0.05), (0, -0.92), (0.92, -0.05)], "accent"),
                    ("poly", _rect(-0.15, 0.4, 0.15, 0.9), "dark"),
                    ("poly", _rect(0.3, 0.1, 0.55, 0.35), "light")]
        return [("poly", _rect(0.35, -0.6, 0.6, 0.1), "dark"),
                ("poly", _rect(-0.95, 0.15, 0.95, 0.85), "main"),
                ("poly", [(-1.0, 0.2), (-0.7, -0.25), (0.7, -0.25), (1.0, 0.2)], "accent"),
                ("poly", _rect(-0.75, 0.35, -0.45, 0.6), "light"),
                ("poly", _rect(0.45, 0.35, 0.75, 0.6), "light"),
                ("poly", _rect(-0.12, 0.4, 0.12, 0.85), "dark")]
    if cls == "ball":
        if not b:
            return [("poly", _ellipse(0, 0, 0.9, 0.9, 36), "main"),
                    ("line", _ellipse(-1.25, 0, 0.75, 0.75, 12, -0.9, 0.9), 0.08, "light"),
                    ("line", _ellipse(1.25, 0, 0.75, 0.75, 12, math.pi - 0.9, math.pi + 0.9), 0.08, "light")]
        return [("poly", _ellipse(0, 0, 0.9, 0.9, 36), "main"),
                ("line", [(-0.9, 0), (0.9, 0)], 0.06, "dark"),
                ("line", _ellipse(0, 0, 0.4, 0.9, 24), 0.06, "dark"),
                ("line", [(0, -0.9), (0, 0.9)], 0.06, "dark"),
                ("line", [(-0.78, -0.45), (0.78, -0.45)], 0.05, "dark"),
                ("line", [(-0.78, 0.45), (0.78, 0.45)], 0.05, "dark")]
    if cls == "tree":
        if not b:
            return [("poly", _rect(-0.14, 0.2, 0.14, 1.0), "trunk"),
                    ("poly", _ellipse(0, -0.3, 0.68, 0.62, 30), "main"),
                    ("poly", _ellipse(-0.2, -0.45, 0.2, 0.16, 12), "light")]
        return [("poly", _rect(-0.12, 0.6, 0.12, 1.0), "trunk"),
                ("poly", [(-0.8, 0.65), (0, -0.1), (0.8, 0.65)], "main"),
                ("poly", [(-0.65, 0.25), (0, -0.52), (0.65, 0.25)], "main"),
                ("poly", [(-0.48, -0.15), (0, -0.95), (0.48, -0.15)], "main")]
    if cls == "star":
        if not b:
            return [("poly", _star(5, 0.95, 0.4), "main")]
        ox, oy = (0.55, -0.55) if rng.random() < 0.5 else (-0.55, 0.55)
        return [("poly", _star(4, 0.95, 0.18), "main"),
                ("poly", [(ox + x * 0.3, oy + y * 0.3) for x, y in _star(4, 0.95, 0.2)], "main")]
    if cls == "boat":
        if not b:
            return [("poly", [(-0.9, 0.4), (0.9, 0.4), (0.6, 0.8), (-0.6, 0.8)], "dark"),
                    ("line", [(0, 0.4), (0, -0.92)], 0.07, "dark"),
                    ("poly", [(0.08, -0.85), (0.08, 0.3), (0.75, 0.3)], "main"),
                    ("poly", [(-0.08, -0.6), (-0.08, 0.3), (-0.55, 0.3)], "main")]
        return [("poly", [(-1.0, 0.3), (1.0, 0.3), (0.75, 0.75), (-0.75, 0.75)], "main"),
                ("poly", _rect(-0.55, -0.1, 0.3, 0.3), "accent"),
                ("poly", _rect(0.38, -0.55, 0.62, 0.3), "dark"),
                ("poly", _ellipse(-0.35, 0.1, 0.08, 0.08, 10), "light"),
                ("poly", _ellipse(0.05, 0.1, 0.08, 0.08, 10), "light")]
    if cls == "fish":
        if not b:
            return [("poly", _ellipse(-0.12, 0, 0.66, 0.42, 30), "main"),
                    ("poly", [(0.45, 0), (0.95, -0.42), (0.95, 0.42)], "main"),
                    ("poly", _ellipse(-0.45, -0.08, 0.08, 0.08, 10), "dark")]
        return [("poly", _ellipse(-0.1, 0, 0.8, 0.2, 30), "main"),
                ("poly", [(0.65, 0), (0.98, -0.3), (0.85, 0), (0.98, 0.3)], "main"),
                ("poly", [(-0.25, -0.15), (0.05, -0.38), (0.2, -0.12)], "accent"),
                ("line", [(-0.6, 0.02), (0.6, 0.02)], 0.05, "accent"),
                ("poly", _ellipse(-0.65, -0.04, 0.05, 0.05, 8), "dark")]
    if cls == "flower":
        if not b:
            n = int(rng.integers(5, 9))
            petals: list[Shape] = [("line", [(0, 0.1), (0, 1.0)], 0.08, "stem")]
            for i in range(n):
                a = 2 * math.pi * i / n
                petals.append(("poly", _ellipse(0.42 * math.cos(a), -0.25 + 0.42 * math.sin(a),
                                                0.3, 0.3, 16), "main"))
            petals.append(("poly", _ellipse(0, -0.25, 0.26, 0.26, 16), "centre"))
            return petals
        return [("line", [(0, 0.0), (0, 1.0)], 0.08, "stem"),
                ("poly", _ellipse(0.25, 0.6, 0.25, 0.1, 12), "stem"),
                ("poly", [(-0.48, -0.75), (-0.22, -0.4), (0, -0.82), (0.22, -0.4), (0.48, -0.75),
                          (0.45, -0.2), (0.3, 0.02), (0, 0.08), (-0.3, 0.02), (-0.45, -0.2)], "main")]
    if cls == "arrow":
        if not b:
            return [("poly", _rect(-0.92, -0.12, 0.3, 0.12), "main"),
                    ("poly", [(0.25, -0.5), (0.95, 0), (0.25, 0.5)], "main")]
        return [("poly", [(-0.75, -0.8), (-0.25, -0.8), (0.45, 0), (-0.25, 0.8), (-0.75, 0.8),
                          (-0.05, 0)], "main"),
                ("poly", [(0.0, -0.8), (0.3, -0.8), (1.0, 0), (0.3, 0.8), (0.0, 0.8), (0.7, 0)], "main")]
    if cls == "heart":
        if not b:
            return [("poly", _heart(0.95), "main")]
        return [("poly", _heart(0.8, 0.05), "main"),
                ("line", [(-0.95, 0.7), (0.8, -0.6)], 0.07, "dark"),
                ("poly", [(0.95, -0.72), (0.62, -0.66), (0.86, -0.38)], "dark"),
                ("line", [(-0.95, 0.7), (-0.8, 0.45)], 0.05, "dark"),
                ("line", [(-0.95, 0.7), (-0.7, 0.72)], 0.05, "dark")]
    if cls == "moon":
        if not b:
            shapes: list[Shape] = [("poly", _ellipse(0, 0, 0.9, 0.9, 36), "main")]
            for _ in range(int(rng.integers(2, 5))):
                r = float(rng.uniform(0.08, 0.2))
                a, d = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0, 0.85 - r))
                shapes.append(("poly", _ellipse(d * math.cos(a), d * math.sin(a), r, r, 12), "accent"))
            return shapes
        return [("poly", _crescent(0.9, 0.78, 0.42), "main")]
    raise KeyError(f"unknown demo class: {cls}")


def _shade(rgb: np.ndarray, f: float) -> tuple[int, int, int]:
    """Darken (f < 1) or lighten towards white (f > 1)."""
    if f <= 1:
        out = rgb * f
    else:
        out = rgb + (255 - rgb) * (f - 1)
    return tuple(int(v) for v in np.clip(out, 0, 255))


def _jitter(rgb: tuple[int, int, int], rng: np.random.Generator, amount: float) -> np.ndarray:
    return np.clip(np.asarray(rgb, dtype=np.float64) + rng.normal(0, amount, 3), 0, 255)


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return yy, xx


def _background(size: int, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Solid, gradient, striped or dotted uint8 background dominated by ``base``."""
    kind = rng.choice(4, p=BACKGROUND_KIND_P)
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = base.astype(np.uint8)
    if kind == 0:
        return img
    alt = np.asarray(_shade(base, 0.75 if base.mean() > 100 else 1.35), dtype=np.float32)
    yy, xx = _grid(size)
    if kind == 1:
        a = rng.uniform(0, 2 * math.pi)
        t = np.cos(a) * xx + np.sin(a) * yy
        t = ((t - t.min()) / max(float(t.max() - t.min()), 1e-6) * 0.6)[..., None]
        img = (base.astype(np.float32) * (1 - t) + alt * t).astype(np.uint8)
    elif kind == 2:
        period = rng.uniform(0.08, 0.2)
        a = rng.uniform(0, math.pi)
        mask = ((np.cos(a) * xx + np.sin(a) * yy) / period) % 1.0 < 0.5
        img[mask] = alt.astype(np.uint8)
    else:
        period = rng.uniform(0.1, 0.2)
        mask = ((xx % period) - period / 2) ** 2 + ((yy % period) - period / 2) ** 2 < (period / 4.5) ** 2
        img[mask] = alt.astype(np.uint8)
    return img


def render_image(cls: str, variant: str, rng: np.random.Generator, image_size: int = 64) -> Rendered:
    """Draw one object of class ``cls`` in visual variant "A" or "B".

    Colour, background, size, position, rotation, clutter and noise are drawn from
    ``rng``; the object is drawn at twice the size and downsampled to anti-alias it.
    """
    spec = DEMO_CLASS_SPECS[DEMO_CLASSES.index(cls)]
    s2 = image_size * 2

    colour = str(spec.palette[int(rng.integers(len(spec.palette)))])
    bg_choices = [c for c in COLOURS if c != colour and frozenset((c, colour)) not in _CLASHES]
    background = str(bg_choices[int(rng.integers(len(bg_choices)))])
    main = _jitter(COLOURS[colour], rng, 10)
    bg = _jitter(COLOURS[background], rng, 10)

    # Patterns are computed at the output size (cheap) and upscaled for drawing.
    canvas = _background(image_size, bg, rng)
    img = Image.fromarray(canvas, "RGB").resize((s2, s2), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img)

    roles = {
        "main": _shade(main, 1.0),
        "accent": _shade(main, 0.7) if main.mean() > 60 else _shade(main, 1.6),
        "light": _shade(main, 1.55) if main.mean() < 200 else _shade(main, 0.8),
        "dark": (40, 34, 30) if background != "black" else (200, 200, 196),
        "trunk": (112, 70, 34),
        "stem": (40, 140, 50),
        "centre": (240, 200, 40) if colour != "yellow" else (130, 80, 30),
    }

    # Clutter behind the object: small specks that carry no class information.
    for _ in range(int(rng.integers(0, MAX_CLUTTER + 1))):
        r = rng.uniform(0.02, 0.05) * s2
        x, y = rng.uniform(0, s2, 2)
        c = _shade(_jitter(COLOURS[str(rng.choice(list(COLOURS)))], rng, 10), 1.0)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=c)

    scale = rng.uniform(0.5, 0.95)
    size = "small" if scale < 0.7 else "large"
    half = scale * s2 / 2
    cx = rng.uniform(half * 0.9, s2 - half * 0.9)
    cy = rng.uniform(half * 0.9, s2 - half * 0.9)
    angle = math.radians(rng.uniform(-spec.spin, spec.spin))
    flip = -1.0 if rng.random() < 0.5 else 1.0
    ca, sa = math.cos(angle), math.sin(angle)

    def tf(pts: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(cx + half * (ca * x * flip - sa * y), cy + half * (sa * x * flip + ca * y))
                for x, y in pts]

    for shape in _shapes(cls, variant, rng):
        if shape[0] == "poly":
            draw.polygon(tf(shape[1]), fill=roles[shape[2]])
        else:
            draw.line(tf(shape[1]), fill=roles[shape[3]], width=max(1, int(shape[2] * half)),
                      joint="curve")

    img = img.resize((image_size, image_size), Image.Resampling.BOX)
    arr = np.asarray(img, dtype=np.float32)
    arr = arr + rng.normal(0, rng.uniform(0, MAX_NOISE_STD), arr.shape).astype(np.float32)
    img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")
    return Rendered(img, cls, variant, colour, background, size)


# ----------------------------------------------------------------------------- captions

def class_weights() -> np.ndarray:
    """Probability of each class in the training caption stream."""
    w = np.asarray([c.weight for c in DEMO_CLASS_SPECS], dtype=np.float64)
    return w / w.sum()


def name_probabilities(class_index: int) -> np.ndarray:
    """Probability of each of the class's ranked names in a non-generic caption of it."""
    a, b = np.asarray(NAME_WEIGHTS_A), np.asarray(NAME_WEIGHTS_B)
    own = 1.0 - sum(share for _, share in DEMO_CLASS_SPECS[class_index].borrowed)
    return own * ((1 - P_VARIANT_B) * a / a.sum() + P_VARIANT_B * b / b.sum())


def canonical_frequencies(corpus: int = CORPUS_CAPTIONS) -> dict[str, int]:
    """Expected count of each class's canonical name in ``corpus`` training captions."""
    cw = class_weights()
    out = {}
    for i, spec in enumerate(DEMO_CLASS_SPECS):
        out[spec.name] = int(round(corpus * (1 - P_GENERIC) * cw[i] * name_probabilities(i)[0]))
    return out


def make_caption(cls: str, r: Rendered, rng: np.random.Generator) -> str:
    """A training caption for a rendered image; the noun follows the rank distributions."""
    spec = DEMO_CLASS_SPECS[DEMO_CLASSES.index(cls)]
    if rng.random() < P_GENERIC:
        name = str(GENERIC_NOUNS[int(rng.integers(len(GENERIC_NOUNS)))])
    else:
        w = np.asarray(NAME_WEIGHTS_B if r.variant == "B" else NAME_WEIGHTS_A)
        own = 1.0 - sum(share for _, share in spec.borrowed)
        names = list(spec.names) + [n for n, _ in spec.borrowed]
        p = np.concatenate([own * w / w.sum(), [share for _, share in spec.borrowed]])
        name = names[int(rng.choice(len(names), p=p))]
    tw = np.asarray([w for _, w in CAPTION_TEMPLATES])
    template = CAPTION_TEMPLATES[int(rng.choice(len(tw), p=tw / tw.sum()))][0]
    return template.format(name=name, colour=r.colour, bg=r.background, size=r.size)


def training_images(seed: int, image_size: int = 64) -> Iterator[Rendered]:
    """Endless rendered training images; class frequencies follow ``class_weights()``.

    Uses its own seed stream, so no training image ever repeats a held-out one.
    """
    rng = np.random.default_rng([_TRAIN_STREAM, seed])
    cw = class_weights()
    while True:
        ci = int(rng.choice(len(cw), p=cw))
        variant = "B" if rng.random() < P_VARIANT_B else "A"
        yield render_image(DEMO_CLASSES[ci], variant, rng, image_size)


def training_stream(seed: int, image_size: int = 64) -> Iterator[tuple[Rendered, str]]:
    """Endless fresh (image, caption) pairs."""
    rng = np.random.default_rng([_TRAIN_STREAM, seed, 1])
    for r in training_images(seed, image_size):
        yield r, make_caption(r.cls, r, rng)


# ----------------------------------------------------------------------------- VLM instructions

# The published classification prompt (Zhang et al. 2024) and caption-style requests.
VLM_PROMPT = "What type of object is in this photo?"
VLM_CAPTION_PROMPTS: tuple[str, ...] = ("Describe this photo.", "Write a short caption for this image.")
# Share of instruction examples that ask for a caption instead of the object type.
VLM_P_CAPTION = 0.25
# Class frequencies in the VLM's instructions: a geometric series in DEMO_CLASS_SPECS order
# (the captions' order too), each class this fraction as frequent as the one before.
VLM_FREQUENCY_RATIO = 0.55
# Nominal instruction count in which vlm_training_frequency.csv counts class examples.
VLM_CORPUS = 100_000
# Answer-name distributions over ranks 1..8 per visual variant: the canonical name is the
# usual answer for both looks (an assistant names the category), synonyms fill the rest.
VLM_ANSWER_WEIGHTS_A: tuple[float, ...] = (0.72, 0.06, 0.07, 0.05, 0.04, 0.03, 0.02, 0.01)
VLM_ANSWER_WEIGHTS_B: tuple[float, ...] = (0.55, 0.25, 0.06, 0.05, 0.03, 0.03, 0.02, 0.01)


@dataclass(frozen=True)
class VlmExample:
    """One instruction example: a rendered image, the user's request and the answer."""

    rendered: Rendered
    prompt: str
    answer: str


def vlm_class_weights(ratio: Optional[float] = None) -> np.ndarray:
    """Probability of each class among the VLM's instruction examples (geometric series)."""
    w = (VLM_FREQUENCY_RATIO if ratio is None else ratio) ** np.arange(len(DEMO_CLASS_SPECS), dtype=np.float64)
    return w / w.sum()


def vlm_training_frequencies(corpus: int = VLM_CORPUS) -> dict[str, int]:
    """Designed number of instruction examples of each class per ``corpus`` examples."""
    return {cls: int(round(corpus * w)) for cls, w in zip(DEMO_CLASSES, vlm_class_weights())}


def vlm_answer(cls: str, r: Rendered, rng: np.random.Generator) -> str:
    """The answer to VLM_PROMPT: one of the class's names, mostly the canonical one."""
    spec = DEMO_CLASS_SPECS[DEMO_CLASSES.index(cls)]
    w = np.asarray(VLM_ANSWER_WEIGHTS_B if r.variant == "B" else VLM_ANSWER_WEIGHTS_A)
    return spec.names[int(rng.choice(len(w), p=w / w.sum()))]


def vlm_examples(seed: int, image_size: int = 64, ratio: Optional[float] = None) -> Iterator[VlmExample]:
    """Endless instruction examples; classes follow ``vlm_class_weights()``.

    A share ``VLM_P_CAPTION`` asks for a caption (answered like the demo backbones'
    training captions), the rest asks ``VLM_PROMPT`` (answered with a class name). Uses
    its own seed stream, so no example ever repeats a held-out image.
    """
    rng = np.random.default_rng([_VLM_STREAM, seed])
    cw = vlm_class_weights(ratio)
    while True:
        ci = int(rng.choice(len(cw), p=cw))
        variant = "B" if rng.random() < P_VARIANT_B else "A"
        r = render_image(DEMO_CLASSES[ci], variant, rng, image_size)
        if rng.random() < VLM_P_CAPTION:
            prompt = VLM_CAPTION_PROMPTS[int(rng.integers(len(VLM_CAPTION_PROMPTS)))]
            answer = make_caption(r.cls, r, rng)
        else:
            prompt, answer = VLM_PROMPT, vlm_answer(r.cls, r, rng)
        yield VlmExample(r, prompt, answer)


# ----------------------------------------------------------------------------- held-out set

@dataclass(frozen=True)
class DemoItem:
    """One held-out image: where it goes in the ImageFolder and how it was drawn."""

    cls: str
    index: int
    variant: str
    rng: np.random.Generator

    def filename(self, n_per_class: int) -> str:
        return f"{self.index:0{max(3, len(str(n_per_class - 1)))}d}.png"


def demo_items(seed: int = 0, n_per_class: int = 30,
               classes: Optional[Sequence[str]] = None) -> Iterator[DemoItem]:
    """Held-out items in class order. Image i of a class only depends on (seed, class, i),
    so a larger set starts with the images of a smaller one."""
    for cls in classes or DEMO_CLASSES:
        ci = DEMO_CLASSES.index(cls)
        for i in range(n_per_class):
            rng = np.random.default_rng([_TEST_STREAM, seed, ci, i])
            variant = "B" if rng.random() < P_VARIANT_B else "A"
            yield DemoItem(cls, i, variant, rng)


def iter_demo_images(seed: int = 0, n_per_class: int = 30,
                     image_size: int = 64) -> Iterator[tuple[DemoItem, Image.Image]]:
    """The held-out images exactly as ``write_demo_dataset`` writes them (PNG is lossless)."""
    for item in demo_items(seed, n_per_class):
        yield item, render_image(item.cls, item.variant, item.rng, image_size).image


def demo_labels() -> dict[str, list[str]]:
    """Ranked names per class (first = canonical), as written to labels.csv."""
    return {spec.name: list(spec.names) for spec in DEMO_CLASS_SPECS}


def _name_source(spec: DemoClass, rank: int) -> str:
    name = spec.names[rank]
    if name in COLOURS:
        return "colour"
    if any(name == n for other in DEMO_CLASS_SPECS for n, _ in other.borrowed):
        return "polysemous"
    shared = sum(name in other.names for other in DEMO_CLASS_SPECS) > 1
    if name in GENERIC_NOUNS or shared:
        return "shared"
    return SOURCE_BY_RANK[rank]


_README = """\
semscale demo dataset (generator version {version}, seed {seed})

{n_classes} classes x {n_per_class} images = {n_images} PNG images of {size}x{size} px, rendered by
core.demo.data (no image files ship with semscale; this folder is regenerated on demand and
is byte-identical for the same seed and generator version).

images/<class>/<nnn>.png  ImageFolder layout; the folder name is the canonical class name.
labels.csv                class,synonym,source - {n_names} ranked names per class, most to least
                          frequent in the demo backbones' training captions; the first row of
                          each class is its canonical name, so levels 1, 2, 4 and 8 exist.
                          source: canonical | variant-b (the usual name of the class's second
                          look) | common | rare | shared (also used for another class or for
                          anything at all) | colour (a colour word used as a nickname) |
                          polysemous (listed here, but captions mostly use it for another
                          class: "disc" for balls, "shrub" for flowers, "bolt" for stars).
class_frequency.csv       class,frequency - expected occurrences of the canonical name per
                          {corpus:,} training captions; classes differ about {ratio:.0f}-fold.
vlm_training_frequency.csv class,frequency - designed number of examples of each class per
                          {vlm_corpus:,} instruction examples of the demo VLM (demo-vlm); a
                          geometric series, classes differ {vlm_ratio:.0f}-fold.

Each class has two looks: variant A (captioned mostly with the canonical name) and variant B
(captioned mostly with name #2, e.g. a pine for "tree", a crescent for "moon"); about
{pb:.0%} of images are variant B. Colour, background pattern, size, position, rotation,
clutter and pixel noise vary per image.

Classes: {classes}
"""


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """A UTF-8 CSV file with ``\\n`` line ends, as every demo file is written."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def write_class_frequency(path: Path) -> dict[str, int]:
    """``class,frequency`` of every demo class in the caption corpus (the frequencies are returned)."""
    freqs = canonical_frequencies()
    write_csv(path, ["class", "frequency"], ([cls, freqs[cls]] for cls in DEMO_CLASSES))
    return freqs


def write_vlm_training_frequency(path: Path) -> dict[str, int]:
    """``class,frequency`` of every demo class in the demo VLM's instructions (returned too)."""
    freqs = vlm_training_frequencies()
    write_csv(path, ["class", "frequency"], ([cls, freqs[cls]] for cls in DEMO_CLASSES))
    return freqs


def write_demo_dataset(out: Union[str, Path], seed: int = 0, n_per_class: int = 30,
                       image_size: int = 64) -> Path:
    """Write the demo ImageFolder, labels.csv, class_frequency.csv,
    vlm_training_frequency.csv and README.txt.

    Returns the dataset root. Existing files with the same names are overwritten; other
    files are left alone.
    """
    if n_per_class < 1:
        raise ValueError("n_per_class must be at least 1")
    if image_size < 16:
        raise ValueError("image_size must be at least 16")
    root = Path(out)
    images = root / "images"
    for cls in DEMO_CLASSES:
        (images / cls).mkdir(parents=True, exist_ok=True)
    for item, img in iter_demo_images(seed, n_per_class, image_size):
        img.save(images / item.cls / item.filename(n_per_class), format="PNG", optimize=False)

    write_csv(root / "labels.csv", ["class", "synonym", "source"],
              ([spec.name, name, _name_source(spec, rank)] for spec in DEMO_CLASS_SPECS
               for rank, name in enumerate(spec.names)))
    freqs = write_class_frequency(root / "class_frequency.csv")
    vlm_freqs = write_vlm_training_frequency(root / "vlm_training_frequency.csv")

    (root / "README.txt").write_text(_README.format(
        version=GENERATOR_VERSION, seed=seed, n_classes=len(DEMO_CLASSES), n_per_class=n_per_class,
        n_images=len(DEMO_CLASSES) * n_per_class, size=image_size,
        n_names=len(DEMO_CLASS_SPECS[0].names), corpus=CORPUS_CAPTIONS,
        ratio=max(freqs.values()) / min(freqs.values()), pb=P_VARIANT_B, vlm_corpus=VLM_CORPUS,
        vlm_ratio=max(vlm_freqs.values()) / min(vlm_freqs.values()),
        classes=", ".join(DEMO_CLASSES)), encoding="utf-8")
    return root
