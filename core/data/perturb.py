"""Image perturbations for robustness sweeps: the ImageNet-C corruptions that need no other image,
plus rotations and crop shifts, at severities 1-5.

Every perturbation is one function of a uint8 ``3 x H x W`` tensor, on any device, so the decode
workers (a PIL image turned into a tensor) and the GPU decode path (a tensor decoded on the device)
run the very same operations. A perturbation works in a fixed frame: the image is first resized
(shorter side, bicubic, antialiased) to :data:`FRAME` pixels and centre-cropped to a square, the
frame in which ImageNet-C defines its parameters; the backbone's own preprocessing follows. So
a perturbed image is the same pixels whatever the backbone.

Randomness (noise, directions, displacement fields) is drawn on the CPU from a generator seeded
by the image's content key, the perturbation and the severity (:func:`image_seed`), then moved to
the image's device: the same image gets the same perturbation in every backbone and every run.

Parameters follow Hendrycks & Dietterich (ICLR 2019, ``make_imagenet_c.py``); motion blur and
elastic follow the size-independent reimplementation of the ``imagecorruptions`` package
(Michaelis et al. 2019). The table is in ``docs/robustness.md``.
"""

from __future__ import annotations

import io
import math
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

# the specs (names, severities, parameters, parsing) are torch-free; re-exported here
from core.data.perturb_specs import (NAMES, PARAMETERS, SEVERITIES, VERSION, Perturbation,  # noqa: F401
                                     image_seed, parse_perturbations)

FRAME = 224  # side of the square the corruptions are defined on (ImageNet-C's 224 x 224 crops)


# ---------------------------------------------------------------- the operations (float tensors in [0, 1])


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    return g


def _uniform(shape, g, device) -> torch.Tensor:
    return torch.rand(shape, generator=g, dtype=torch.float32).to(device)


def frame(x: torch.Tensor, side: int = FRAME) -> torch.Tensor:
    """uint8 image resized (shorter side, bicubic, antialiased, rounded like 8-bit pixels) and centre-cropped."""
    h, w = x.shape[-2:]
    if (h, w) != (side, side):
        if min(h, w) != side:
            x = F.resize(x.float(), [side], InterpolationMode.BICUBIC, antialias=True).clamp_(0, 255).round_()
        x = F.center_crop(x, [side, side])
    return x.to(torch.uint8)


def gaussian_noise(x, c, g):
    return x + c * torch.randn(x.shape, generator=g, dtype=torch.float32).to(x.device)


def shot_noise(x, c, g):
    rate = (x * c).cpu()  # sampled on the CPU: the same generator on every device
    return (torch.poisson(rate, generator=g) / c).to(x.device)


def impulse_noise(x, c, g):
    """Salt and pepper on each value with probability ``c``, half each (skimage's ``s&p``, amount c)."""
    u = _uniform(x.shape, g, x.device)
    salt = _uniform(x.shape, g, x.device) < 0.5
    return torch.where(u < c, salt.to(x.dtype), x)


def _filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each channel convolved with a 2-D kernel (centred), borders reflected (OpenCV's default)."""
    kh, kw = kernel.shape
    pad = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)
    xp = torch.nn.functional.pad(x[None], pad, mode="reflect")
    k = kernel.to(x.device, x.dtype)[None, None].expand(x.shape[0], 1, kh, kw)
    return torch.nn.functional.conv2d(xp, k, groups=x.shape[0])[0]


def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """ImageNet-C's defocus kernel: a normalised disk, blurred by a small Gaussian (3x3, or 5x5 above radius 8)."""
    half = 8 if radius <= 8 else int(radius)
    ksize = 3 if radius <= 8 else 5
    L = torch.arange(-half, half + 1, dtype=torch.float32)
    X, Y = torch.meshgrid(L, L, indexing="xy")
    disk = ((X ** 2 + Y ** 2) <= radius ** 2).float()
    disk /= disk.sum()
    return F.gaussian_blur(disk[None], [ksize, ksize], [alias_blur, alias_blur])[0]


def defocus_blur(x, c, g):
    return _filter(x, disk_kernel(*c))


def motion_kernel_weights(radius: int, sigma: float) -> np.ndarray:
    """Weights of the 2 * radius + 1 taps of the motion kernel: a one-sided Gaussian, normalised."""
    k = np.exp(-np.arange(2 * radius + 1) ** 2 / (2 * sigma ** 2))
    return k / k.sum()


def _shift(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Shift by whole pixels, repeating the edge into the space left (``imagecorruptions``' shift)."""
    h, w = x.shape[-2:]
    if dx:
        p = (dx, 0) if dx > 0 else (0, -dx)
        x = torch.nn.functional.pad(x[None], (*p, 0, 0), mode="replicate")[0]
        x = x[..., :, :w] if dx > 0 else x[..., :, -dx:]
    if dy:
        p = (dy, 0) if dy > 0 else (0, -dy)
        x = torch.nn.functional.pad(x[None], (0, 0, *p), mode="replicate")[0]
        x = x[..., :h, :] if dy > 0 else x[..., -dy:, :]
    return x


def motion_blur(x, c, g):
    radius, sigma = c
    angle = float(torch.empty(1).uniform_(-45, 45, generator=g))
    width = 2 * radius + 1
    weights = motion_kernel_weights(radius, sigma)
    py, px = width * math.sin(math.radians(angle)), width * math.cos(math.radians(angle))
    hyp = math.hypot(py, px)
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    for i in range(width):
        dy = -math.ceil(i * py / hyp - 0.5)
        dx = -math.ceil(i * px / hyp - 0.5)
        if abs(dy) >= h or abs(dx) >= w:
            break
        out += float(weights[i]) * _shift(x, dx, dy)
    return out


def gaussian_blur(x, c, g):
    k = 2 * math.ceil(4 * c) + 1  # scipy / skimage truncate the kernel at 4 sigma
    return F.gaussian_blur(x, [k, k], [float(c), float(c)])


def jpeg(x, c, g):
    """Re-encode at JPEG quality ``c`` with Pillow (on the CPU; the result goes back to the image's device)."""
    from PIL import Image

    u8 = (x * 255).round_().clamp_(0, 255).to(torch.uint8).cpu()
    buf = io.BytesIO()
    Image.fromarray(u8.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=int(c))
    buf.seek(0)
    back = torch.from_numpy(np.asarray(Image.open(buf).convert("RGB")).copy()).permute(2, 0, 1)
    return (back.float() / 255).to(x.device)


def contrast(x, c, g):
    means = x.mean(dim=(-2, -1), keepdim=True)
    return (x - means) * c + means


def brightness(x, c, g):
    """HSV value + c with hue and saturation kept: every channel scales by V' / V (grey V' where V = 0)."""
    v = x.max(dim=0, keepdim=True).values
    v2 = (v + c).clamp(0, 1)
    return torch.where(v > 0, x * v2 / v.clamp_min(1e-12), v2.expand_as(x))


def pixelate_size(h: int, w: int, c: float) -> tuple[int, int]:
    """The size pixelate down-samples an ``h x w`` frame to: ``int(side * c)`` as ImageNet-C."""
    return max(1, int(h * c)), max(1, int(w * c))


def pixelate(x, c, g):
    """Box (area) down-sampling to ``c`` of each side, nearest up-sampling back: square blocks as ImageNet-C's
    Pillow BOX down / BOX up."""
    h, w = x.shape[-2:]
    d = torch.nn.functional.adaptive_avg_pool2d(x[None], pixelate_size(h, w, c))[0]
    return F.resize(d, [h, w], InterpolationMode.NEAREST_EXACT)


def elastic(x, c, g):
    """Smoothed uniform displacement fields (sigma 1% of the side, max 0.5% of the height, scaled by alpha)."""
    h, w = x.shape[-2:]
    sigma = 0.01 * min(h, w)
    max_d = 0.005 * h
    k = 2 * math.ceil(3 * sigma) + 1
    field = (torch.rand((2, h, w), generator=g) * 2 - 1) * max_d
    field = F.gaussian_blur(field, [k, k], [sigma, sigma]) * c  # pixels
    disp = torch.stack([field[0] * 2 / w, field[1] * 2 / h], dim=-1)[None].to(x.device)
    return F.elastic(x, disp, interpolation=InterpolationMode.BILINEAR)


def rotation(x, c, g):
    sign = 1.0 if float(torch.rand(1, generator=g)) < 0.5 else -1.0
    return F.rotate(x, sign * float(c), interpolation=InterpolationMode.BILINEAR)


def crop_shift(x, c, g):
    """A (1 - c) crop of the frame at a seeded offset (not the centre), resized back to the frame."""
    h, w = x.shape[-2:]
    ch, cw = max(1, round(h * (1 - c))), max(1, round(w * (1 - c)))
    top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
    left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
    return F.resize(F.crop(x, top, left, ch, cw), [h, w], InterpolationMode.BICUBIC, antialias=True)


OPS: dict[str, Callable] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur, "motion_blur": motion_blur, "gaussian_blur": gaussian_blur, "jpeg": jpeg,
    "contrast": contrast, "brightness": brightness, "pixelate": pixelate, "elastic": elastic,
    "rotation": rotation, "crop_shift": crop_shift,
}
assert set(OPS) == set(PARAMETERS)


def perturb_tensor(x: torch.Tensor, perturbation: Perturbation, seed: int, side: int = FRAME) -> torch.Tensor:
    """The perturbed uint8 ``3 x side x side`` image of a uint8 ``3 x H x W`` image (any device)."""
    f = frame(x, side).float() / 255
    out = OPS[perturbation.name](f, perturbation.parameter, _generator(seed))
    return (out.clamp(0, 1) * 255).round_().to(torch.uint8)


def perturb_pil(im, perturbation: Perturbation, seed: int, side: int = FRAME):
    """:func:`perturb_tensor` of a PIL image, as a PIL image (the decode workers' path)."""
    x = F.pil_to_tensor(im.convert("RGB"))
    return F.to_pil_image(perturb_tensor(x, perturbation, seed, side))


class PerturbedDataset:
    """A dataset whose ``open`` returns the perturbed image; everything else is the dataset's own.

    ``keys``: content key per record (the seed's source); records without one use their id.
    """

    def __init__(self, dataset, perturbation: Perturbation, keys: Sequence[Optional[str]]) -> None:
        self.dataset = dataset
        self.perturbation = perturbation
        self.keys = list(keys)

    def __getattr__(self, name):
        if name.startswith("__") or name in ("dataset", "perturbation", "keys"):  # unpickling: not set yet
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __len__(self) -> int:
        return len(self.dataset)

    def seed(self, i: int) -> int:
        key = self.keys[i] if i < len(self.keys) and self.keys[i] is not None else self.dataset.records[i].id
        return image_seed(key, self.perturbation)

    def open(self, i: int):
        from core.data.images import decode_at_least

        with decode_at_least(None):  # full size: the frame, not the backbone's input size, sets the pixels
            im = self.dataset.open(i)
        return perturb_pil(im, self.perturbation, self.seed(i))

    def tensor_perturbation(self, i: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """The same perturbation for the GPU decode path (a uint8 tensor already on the device)."""
        p, s = self.perturbation, self.seed(i)
        return lambda x: perturb_tensor(x, p, s)


__all__ = ["FRAME", "NAMES", "PARAMETERS", "Perturbation", "PerturbedDataset", "image_seed",
           "parse_perturbations", "perturb_pil", "perturb_tensor"]
