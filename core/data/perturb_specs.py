"""What a robustness perturbation is, without the operations: names, severities, parameters, parsing.

Kept free of torch so the app and a cached sweep can read and check ``--perturb`` specs without
importing the image stack; the operations are in :mod:`core.data.perturb`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from core.util.errors import InputError

SEVERITIES = (1, 2, 3, 4, 5)
VERSION = "1"  # part of every perturbed cache key: bump when an operation changes its pixels

# name -> the five severities' parameters (ImageNet-C's c[severity - 1])
PARAMETERS: dict[str, tuple] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # std of N(0, c) added to x in [0, 1]
    "shot_noise": (60, 25, 12, 5, 3),  # Poisson(x * c) / c
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),  # salt-and-pepper: share of values set to 0 or 1
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),  # disk radius, its Gaussian blur
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),  # radius, sigma (angle uniform +-45 deg)
    "gaussian_blur": (1, 2, 3, 4, 6),  # sigma (pixels)
    "jpeg": (25, 18, 15, 10, 7),  # JPEG quality (Pillow)
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),  # (x - channel mean) * c + channel mean
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),  # HSV value + c
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),  # box down-sampling to c x side, box up-sampling back
    "elastic": (12.5, 16.25, 21.25, 25.0, 30.0),  # alpha: displacement scale (sigma = 0.01 side)
    "rotation": (5, 10, 15, 20, 30),  # degrees, direction seeded
    "crop_shift": (0.05, 0.10, 0.15, 0.20, 0.25),  # crop (1 - c) of the frame at a seeded offset
}
NAMES = tuple(PARAMETERS)


@dataclass(frozen=True)
class Perturbation:
    """One corruption at one severity."""

    name: str
    severity: int

    @property
    def key(self) -> str:
        """Part of a perturbed image's cache key (``name:severity:vVERSION``)."""
        return f"{self.name}:{self.severity}:v{VERSION}"

    @property
    def parameter(self):
        return PARAMETERS[self.name][self.severity - 1]

    def __str__(self) -> str:
        return f"{self.name}:{self.severity}"


def parse_perturbations(specs: Sequence[str] | str | None, field: str = "perturb") -> list[Perturbation]:
    """``["gaussian_noise:1,3,5", "jpeg:5"]`` as perturbations, in the order given, each once.

    A name without severities means all five. Unknown names list the valid ones.
    """
    if specs is None:
        return []
    if isinstance(specs, str):
        specs = [specs]
    out: list[Perturbation] = []
    for spec in specs:
        text = str(spec).strip()
        if not text:
            continue
        name, _, sev = text.partition(":")
        name = name.strip().lower().replace("-", "_")
        if name not in PARAMETERS:
            raise InputError(f"unknown perturbation '{name}' in '{text}'; valid perturbations: {', '.join(NAMES)}",
                             field=field)
        levels: list[int] = []
        for part in (sev.split(",") if sev.strip() else [str(s) for s in SEVERITIES]):
            part = part.strip()
            if not part:
                continue
            try:
                s = int(part)
            except ValueError:
                raise InputError(f"severity '{part}' in '{text}' is not a whole number; severities are 1 to 5",
                                 field=field) from None
            if s not in SEVERITIES:
                raise InputError(f"severity {s} in '{text}' is out of range; severities are 1 to 5", field=field)
            levels.append(s)
        for s in levels:
            p = Perturbation(name, s)
            if p not in out:
                out.append(p)
    return out


def image_seed(content_key: str, perturbation: Perturbation) -> int:
    """A 63-bit seed from the image's content key, the perturbation and its severity."""
    digest = hashlib.sha256(f"{content_key}|{perturbation.name}|{perturbation.severity}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
