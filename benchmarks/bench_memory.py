"""Peak memory of an ImageNet-shaped sweep: 1000 classes x 16 names, 20k images, two backbones.

The workload: both demo backbones (``demo-vit``, ``demo-resnet``; 32 px input), levels
1, 2, 4, 8, 16 (every level of a 16-name list), 1-shot adaptive ensembles, template
``plain``, a cold embedding cache. ``semscale sweep`` runs in a subprocess; its peak
resident memory (``ru_maxrss`` of the child), wall time and the size of ``logits/`` are
reported against the goal of 1.5 GB.

``python -m benchmarks.bench_memory [--code DIR] [--images N]`` runs it alone; ``--code``
measures the engine of another checkout (e.g. the main branch) on the same data. The
generated images are kept in ``$TMPDIR/semscale-bench-memory`` between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, write_images

GOAL_MIB = 1.5 * 1024
N_CLASSES = 1000
N_NAMES = 16
LEVELS = "1,2,4,8,16"


def workload(root: Path, n_images: int = 20_000, n_classes: int = N_CLASSES) -> tuple[Path, Path]:
    """(image folder, labels file), generated once under ``root`` and reused."""
    images = root / f"images-{n_classes}x{n_images}"
    done = images / ".complete"
    if not done.is_file():
        shutil.rmtree(images, ignore_errors=True)
        write_images(images, n_images, n_classes=n_classes, size=(32, 32), fmt="png")
        done.write_text("ok\n")
    labels = root / f"labels-{n_classes}x{N_NAMES}.csv"
    if not labels.is_file():
        # distinct names: the class's own folder name, then 15 generated synonyms
        lines = ["class,synonym"] + [f"class_{c:02d},{'class ' + str(c) if j == 0 else f'thing {c} variant {j}'}"
                                     for c in range(n_classes) for j in range(N_NAMES)]
        labels.write_text("\n".join(lines) + "\n")
    return images, labels


def _dir_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20 if path.is_dir() else 0.0


def _sweep(code: Path, args: list[str]) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak RSS MiB, stderr tail) of ``semscale`` run from ``code``'s engine.

    A fresh interpreter is the parent, so ``ru_maxrss`` of its children is this sweep's alone."""
    probe = (
        "import resource, subprocess, sys, time, json;"
        "t=time.perf_counter();"
        f"r=subprocess.run([sys.executable,'-m','core.cli',*{args!r}],capture_output=True,text=True);"
        "dt=time.perf_counter()-t;"
        "print(json.dumps([r.returncode, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024,"
        " r.stderr[-3000:]]))"
    )
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=code, capture_output=True, text=True, env=env)
    rc, dt, peak, err = json.loads(out.stdout.strip().splitlines()[-1])
    return rc, dt, peak, err


def run(tmp: Path, n_images: int = 20_000, code: Path = ROOT, data_root: Path | None = None,
        extra: tuple[str, ...] = ()) -> dict:
    """Measure one ImageNet-shaped sweep with the engine in ``code``."""
    data_root = data_root or Path(tempfile.gettempdir()) / "semscale-bench-memory"
    data_root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    images, labels = workload(data_root, n_images)
    t_data = time.perf_counter() - t0
    out = tmp / "memory-run"
    shutil.rmtree(out, ignore_errors=True)
    cache = tmp / "memory-cache"
    shutil.rmtree(cache, ignore_errors=True)
    args = ["sweep", "--dataset", str(images), "--labels", str(labels), "--model", "demo-vit", "--model",
            "demo-resnet", "--templates", "plain", "--levels", LEVELS, "--ensemble-shots", "1", "--cache-dir",
            str(cache), "--quiet", "--out", str(out), *extra]
    rc, dt, peak, err = _sweep(Path(code), args)
    result = {
        "n_classes": N_CLASSES, "names_per_class": N_NAMES, "n_images": n_images, "levels": LEVELS,
        "backbones": ["demo-vit", "demo-resnet"], "ensemble_shots": 1, "code": str(code), "extra_args": list(extra),
        "exit_code": rc, "seconds": round(dt, 1), "peak_mib": round(peak, 1), "goal_mib": GOAL_MIB,
        "logits_mib": round(_dir_mib(out / "logits"), 1), "run_dir_mib": round(_dir_mib(out), 1),
        "data_seconds": round(t_data, 1),
    }
    if rc != 0:
        result["error"] = err
    else:
        log = [ln for ln in err.splitlines() if "logits/" in ln]
        if log:
            result["logits_log"] = log[-1]
    shutil.rmtree(cache, ignore_errors=True)
    return result


def markdown(r: dict) -> str:
    verdict = "meets" if r["exit_code"] == 0 and r["peak_mib"] <= r["goal_mib"] else "misses"
    return "\n".join([
        "## Memory at ImageNet shape",
        f"{r['n_classes']} classes x {r['names_per_class']} names, {r['n_images']:,} 32 px PNG images, "
        f"{' + '.join(r['backbones'])}, levels {r['levels']}, `--ensemble-shots {r['ensemble_shots']}`, cold cache.",
        "",
        "| peak memory | seconds | logits/ | run folder | goal |",
        "|---|---|---|---|---|",
        f"| **{r['peak_mib']:.0f} MiB** ({verdict} the goal) | {r['seconds']:.0f} | {r['logits_mib']:.0f} MiB | "
        f"{r['run_dir_mib']:.0f} MiB | ≤ {r['goal_mib']:.0f} MiB |",
    ]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--code", default=str(ROOT), help="checkout whose engine runs the sweep (default: this one)")
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--json", default=None, help="also write the result to this file")
    ap.add_argument("extra", nargs="*", help="more 'semscale sweep' options (after --)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="semscale-bench-") as tmp:
        r = run(Path(tmp), args.images, Path(args.code), extra=tuple(args.extra))
    print(json.dumps(r, indent=1))
    print(markdown(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()
