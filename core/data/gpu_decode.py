"""Batched JPEG decoding on the GPU (nvJPEG through ``torchvision.io.decode_jpeg``), for ``--decode gpu``.

Decode workers only read file bytes and the EXIF orientation; the main process decodes a
whole batch on the device, turns each image upright, and runs the model's resize / centre
crop / normalise there. Anything the GPU path cannot take (not a JPEG, a decode error, an
unusual preprocessing) goes through the ordinary CPU path, so behaviour (skips, reasons)
stays the same. The functions take a ``device`` so they also run on the CPU decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass
class RawJpeg:
    """File bytes of a JPEG, read by a decode worker; decoded later, batched, on the device."""

    data: torch.Tensor  # uint8, 1-D
    orientation: int = 1  # EXIF orientation tag (1 = upright)


def read_jpeg(path, max_pixels: int) -> Optional[RawJpeg]:
    """The file as a :class:`RawJpeg`, or None when it is not a plain JPEG (decoded on the CPU instead)."""
    from PIL import Image

    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(JPEG_MAGIC):
        return None
    try:
        import io

        with Image.open(io.BytesIO(data)) as im:  # header only: size (bomb guard), mode, orientation
            w, h = im.size
            if w * h > max_pixels or im.mode not in ("RGB", "L"):
                return None
            orientation = int(im.getexif().get(0x0112, 1) or 1)
    except Exception:
        return None  # the CPU path reports the reason
    return RawJpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), orientation)


def upright(x: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation to a C x H x W tensor, as ``PIL.ImageOps.exif_transpose`` does."""
    if orientation == 2:
        return x.flip(-1)
    if orientation == 3:
        return x.flip(-1, -2)
    if orientation == 4:
        return x.flip(-2)
    if orientation == 5:
        return x.transpose(-2, -1)
    if orientation == 6:
        return torch.rot90(x, -1, dims=(-2, -1))
    if orientation == 7:
        return x.transpose(-2, -1).flip(-1, -2)
    if orientation == 8:
        return torch.rot90(x, 1, dims=(-2, -1))
    return x


def tensor_preprocess(preprocess) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's PIL preprocessing (open_clip's Resize, CenterCrop, RGB, ToTensor, Normalize) as a
    function of a uint8 C x H x W tensor on any device. Raises ValueError for other steps."""
    from torchvision import transforms as T

    steps: list[Callable[[torch.Tensor], torch.Tensor]] = []
    for t in getattr(preprocess, "transforms", [preprocess]):
        if isinstance(t, T.Resize):
            size, interp = t.size, t.interpolation

            def resize(x, size=size, interp=interp):
                from torchvision.transforms import functional as F

                # PIL resizes 8-bit pixels: round and clip like it, so the centre crop sees the same values
                return F.resize(x, size, interp, antialias=True).clamp_(0, 255).round_()

            steps.append(resize)
        elif isinstance(t, (T.CenterCrop, T.Normalize)):
            steps.append(t)
        elif isinstance(t, T.ToTensor) or type(t).__name__ == "MaybeToTensor":
            steps.append(lambda x: x / 255.0)
        elif type(t).__name__ == "MaybeConvertMode" or getattr(t, "__name__", "") == "_convert_to_rgb":
            continue  # decoded as RGB already
        else:
            raise ValueError(f"GPU decoding supports resize / crop / normalise preprocessing only, not {t!r}")

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        for step in steps:
            x = step(x)
        return x

    return run


def decode_batch(jpegs: Sequence[RawJpeg], device: str, prep: Callable[[torch.Tensor], torch.Tensor],
                 perturbs: Optional[Sequence[Callable[[torch.Tensor], torch.Tensor]]] = None
                 ) -> list[Optional[torch.Tensor]]:
    """Preprocessed tensors (on ``device``) per JPEG; None where it did not decode (the caller retries on the CPU).

    ``perturbs``: per JPEG, a function of the upright uint8 image applied before ``prep``
    (a robustness perturbation, :mod:`core.data.perturb`)."""
    import warnings

    with warnings.catch_warnings():  # torchvision 0.29 marks its image codecs deprecated in favour of torchcodec
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_jpeg

    datas = [j.data for j in jpegs]
    try:
        images: list[Optional[torch.Tensor]] = list(decode_jpeg(datas, mode=ImageReadMode.RGB, device=device))
    except Exception:  # one bad file fails the whole batch: decode one by one
        images = []
        for d in datas:
            try:
                images.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=device))
            except Exception:
                images.append(None)
    out: list[Optional[torch.Tensor]] = []
    for n, (j, im) in enumerate(zip(jpegs, images)):
        if im is not None:
            im = upright(im, j.orientation)
            if perturbs is not None:
                im = perturbs[n](im)
        out.append(None if im is None else prep(im))
    return out
