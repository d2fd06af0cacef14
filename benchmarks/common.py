"""Synthetic data and small helpers shared by the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def photo_like(rng: np.random.Generator, size: tuple[int, int], colour) -> np.ndarray:
    """An H x W x 3 uint8 picture with photo-like JPEG statistics: a lighting gradient, smooth
    blobs at several scales and fine grain (pure noise compresses 3-4x worse than a photo)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    grad = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)[..., None] * rng.uniform(40, 90)
    arr = np.asarray(colour, np.float32) + grad - 40
    for cells, amp in ((4, 30.0), (16, 18.0), (64, 10.0), (160, 8.0)):
        small = rng.normal(0, amp, (max(2, cells * h // w), cells, 3)).astype(np.float32)
        lo, hi = small.min(), small.max()
        img = Image.fromarray(((small - lo) / (hi - lo) * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
        arr += (np.asarray(img, np.float32) / 255 * (hi - lo) + lo)
    arr += rng.normal(0, 5, (h, w, 3)).astype(np.float32)
    return np.clip(arr, 0, 255).astype(np.uint8)


def write_images(root: Path, n: int, n_classes: int = 10, size: tuple[int, int] = (64, 64), fmt: str = "png",
                 seed: int = 0, style: str = "noise", quality: int = 90) -> Path:
    """n class-coloured images in an ImageFolder (real files to decode).

    ``style="noise"``: flat colour plus strong noise (fast to write); ``"photo"``: :func:`photo_like`
    pictures whose JPEG sizes and decode cost resemble photographs of the same size.
    """
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 255, (n_classes, 3))
    for c in range(n_classes):
        (root / f"class_{c:02d}").mkdir(parents=True, exist_ok=True)
    w, h = size
    for i in range(n):
        c = i % n_classes
        if style == "photo":
            arr = photo_like(rng, size, colours[c])
        else:
            arr = np.clip(colours[c] + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(root / f"class_{c:02d}" / f"{i:06d}.{fmt}",
                                  **({"quality": quality} if fmt in ("jpg", "jpeg") else {}))
    return root


def write_labels(path: Path, n_classes: int, names_per_class: int, tag: str = "") -> Path:
    lines = ["class,synonym"]
    for c in range(n_classes):
        for j in range(names_per_class):
            lines.append(f"class_{c:02d},{tag}thing {c} variant {j}")
    path.write_text("\n".join(lines) + "\n")
    return path


def random_checkpoint(model: str, out_dir: Path, seed: int = 0) -> Path:
    """A random-initialised open_clip model saved as an fp16 state dict."""
    import open_clip
    import torch

    path = out_dir / f"{model}-random.pt"
    if not path.exists():
        torch.manual_seed(seed)
        m = open_clip.create_model(model)
        torch.save({k: v.half() if v.is_floating_point() else v for k, v in m.state_dict().items()}, path)
    return path


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    """(fastest of ``repeat`` calls in seconds, the last result): the least disturbed timing on a shared machine."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


@contextmanager
def timed(store: dict, key: str):
    t0 = time.perf_counter()
    yield
    store[key] = time.perf_counter() - t0


def run_cli(args: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS of the child in MiB, stderr) of a ``semscale`` subprocess."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, **(env or {})})
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"semscale {' '.join(args)} failed:\n{p.stderr[-2000:]}")
    # ru_maxrss of children is the max over all children so far: run the largest last
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return dt, max(peak, before) / 1024, p.stderr


def peak_rss_of(args: list[str]) -> tuple[float, float]:
    """Run one semscale command under /usr/bin/time-like accounting: (seconds, peak MiB)."""
    code = (
        "import resource, subprocess, sys, time, json;"
        "t=time.perf_counter();"
        f"r=subprocess.run([sys.executable,'-m','core.cli',*{args!r}],capture_output=True,text=True);"
        "dt=time.perf_counter()-t;"
        "print(json.dumps([r.returncode, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024, r.stderr[-1500:]]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    rc, dt, peak, err = json.loads(out.stdout.strip().splitlines()[-1])
    if rc != 0:
        raise RuntimeError(f"semscale {' '.join(args)} failed:\n{err}")
    return dt, peak


def machine() -> dict:
    import open_clip
    import torch

    import core

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "python": platform.python_version(), "torch": torch.__version__, "open_clip": open_clip.__version__,
        "semscale": core.__version__, "platform": platform.platform(),
        "load average at the end (1/5/15 min)": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
