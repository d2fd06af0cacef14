"""Decoding images robustly: odd modes, EXIF rotation, bombs and broken files.

Everything that can go wrong with one file raises :class:`BadImage` with a short reason,
so a run skips it (listing it in ``skipped.csv``) instead of dying.
"""

from __future__ import annotations

import io
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Images above this many pixels are refused (decompression-bomb guard, ~ 16k x 10k).
MAX_PIXELS = 178_956_970

IMAGE_EXTENSIONS = {
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif",
}


# Shorter side (pixels) JPEGs may be decoded down to, set by :func:`decode_at_least` around a decode.
_DRAFT_SIDE: ContextVar[Optional[int]] = ContextVar("semscale_draft_side", default=None)


@contextmanager
def decode_at_least(side: Optional[int]) -> Iterator[None]:
    """Within the block, :func:`open_image` decodes JPEGs at reduced scale (``side``: the model input).

    A context variable rather than an argument, so every dataset reader's ``open`` (files, tar
    members, parquet bytes) gets it without a new parameter; ``None`` decodes at full size.
    """
    token = _DRAFT_SIDE.set(side)
    try:
        yield
    finally:
        _DRAFT_SIDE.reset(token)


def draft_jpeg(im: Image.Image, side: Optional[int]) -> Image.Image:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale while both sides stay ≥ ``side``.

    Pillow's ``draft`` picks the largest scale 1/s with ``size // s >= requested`` on both axes
    (rounding up), so asking for (side, side) keeps the shorter side ≥ ``side``: the exact resize
    that follows (shortest side to the model input, then a centre crop) never upsamples. Must be
    called before ``load()``; other formats are left alone.
    """
    if side and im.format == "JPEG" and min(im.size) >= 2 * side:
        im.draft("RGB", (int(side), int(side)))
    return im


class BadImage(Exception):
    """This file cannot be used as an image; ``str()`` is the reason shown to users."""


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.split()[-1])
        return bg
    if mode != "RGB":
        return im.convert("RGB")
    return im


def open_image(source: Union[str, Path, bytes], draft: Optional[int] = None) -> Image.Image:
    """Open a file (or bytes) as an upright RGB image, or raise BadImage with the reason.

    ``draft``: decode JPEGs at reduced scale with the shorter side still ≥ this many pixels
    (default: what :func:`decode_at_least` set, else full size).
    """
    draft = draft if draft is not None else _DRAFT_SIDE.get()
    try:
        if isinstance(source, (bytes, bytearray)):
            if len(source) == 0:
                raise BadImage("empty file (0 bytes)")
            fp = io.BytesIO(source)
        else:
            p = Path(source)
            if p.is_symlink() and not p.exists():
                raise BadImage("broken symbolic link")
            if p.stat().st_size == 0:
                raise BadImage("empty file (0 bytes)")
            fp = open(p, "rb")
        with fp:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im = Image.open(fp)
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise BadImage(f"image too large ({w}x{h} pixels, limit {MAX_PIXELS:,})")
                ImageFile.LOAD_TRUNCATED_IMAGES = False
                draft_jpeg(im, draft)
                im.load()
            im = ImageOps.exif_transpose(im) or im
            return _to_rgb(im)
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage("not an image (format not recognised)") from None
    except PermissionError:
        raise BadImage("permission denied") from None
    except FileNotFoundError:
        raise BadImage("file not found") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadImage(f"image too large ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        msg = str(e) or type(e).__name__
        if "truncated" in msg.lower() or "broken data stream" in msg.lower():
            raise BadImage("truncated or corrupt image data") from None
        raise BadImage(f"cannot decode image ({msg})") from None
