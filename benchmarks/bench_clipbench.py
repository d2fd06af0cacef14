"""semscale's 6-level sweep vs LAION CLIP_benchmark's zero-shot evaluation, one ``evaluate()`` per level.

Workload (the same on both sides): 240 JPEG images (320x240, 8 classes) in an ImageFolder,
8 classes x 32 synonyms, levels 1,2,4,8,16,32 in flat mode (every name is its own
category), the random-initialised ViT-S-32-alt weights of ``common.random_checkpoint``,
the one template "a photo of a {}.", fp32 on the CPU, batches of 64, the same number of
DataLoader workers.

* semscale: one ``semscale sweep`` process (cold: a fresh, empty embedding cache), as a
  user runs it. Every image is encoded once, every name once.
* CLIP_benchmark 1.6.2 (``clipbench_levels.py``, run in CLIP_benchmark's own environment):
  its classifier knows one name per class, so each level is one ``evaluate()`` whose class
  names are every one of the level's names (see that file for how predictions are mapped
  back to classes). Two ways of running it are timed:
  - *one process per level*, as a user of its command line does (``clip_benchmark eval``
    runs one configuration per call); this is the reference of the goal;
  - *one process for all levels* (its Python API in a loop), which spares the repeated
    start-up and model build: reported beside it.

Runs alternate (semscale, per-level, one-process) and each figure is the median of the
repetitions. CLIP_benchmark's ``evaluate()`` crashes on NumPy >= 2.4, so its environment
is a virtual environment under ``benchmarks/.envs/`` with numpy < 2.4, scikit-learn (its
zero-shot module imports it) and ``clip_benchmark`` itself; torch, torchvision and
open_clip come from this environment through a ``.pth`` file that is read after the
environment's own site-packages (so its numpy wins). Building it needs PyPI once; when
it cannot be built the benchmark says so and is skipped.
"""

from __future__ import annotations

import json
import shutil
import site
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, random_checkpoint, write_images, write_labels

GOAL = 0.3  # semscale's sweep / CLIP_benchmark's per-level evaluations
CLIP_BENCHMARK = "clip_benchmark==1.6.2"
ENV_REQUIREMENTS = ["numpy<2.4", "scikit-learn>=1.0,<2", "tqdm"]
ENV_DIR = ROOT / "benchmarks" / ".envs" / "clipbench-1.6.2"
DRIVER = ROOT / "benchmarks" / "clipbench_levels.py"
MODEL = "ViT-S-32-alt"
LEVELS = [1, 2, 4, 8, 16, 32]
TEMPLATE = "a photo of a {}."


class EnvUnavailable(RuntimeError):
    """CLIP_benchmark's environment could not be built or does not work (the message says why)."""


def _env_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _run(cmd: list, what: str, timeout: float = 1800) -> str:
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EnvUnavailable(f"{what}: {e}") from None
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        raise EnvUnavailable(f"{what} failed: {' | '.join(tail)}")
    return p.stdout


CHECK = (
    "import json, numpy, torch, open_clip, sklearn, clip_benchmark.metrics.zeroshot_classification as z;"
    "torch.from_numpy(numpy.ones(3, dtype='float32')).sum().item();"  # torch works with this numpy
    "print(json.dumps({'numpy': numpy.__version__, 'torch': torch.__version__, 'open_clip': open_clip.__version__,"
    " 'sklearn': sklearn.__version__, 'clip_benchmark_file': z.__file__}))"
)


def ensure_env(env: Path = ENV_DIR) -> dict:
    """Build (once) and check CLIP_benchmark's environment; returns the versions it runs with."""
    py = _env_python(env)
    stamp = env / "semscale-env.json"
    if not stamp.exists():
        shutil.rmtree(env, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)
        _run([base, "-m", "venv", env], "creating the virtual environment")
        pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run([*pip, *ENV_REQUIREMENTS], "installing numpy<2.4 and scikit-learn from PyPI")
        # its other declared dependencies (pycocoevalcap, transformers, webdataset) serve other tasks
        _run([*pip, "--no-deps", CLIP_BENCHMARK], f"installing {CLIP_BENCHMARK} from PyPI")
        env_site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             "locating the environment's site-packages").strip())
        # torch / torchvision / open_clip from this environment, searched after the env's own packages
        (env_site / "zz_semscale_main_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        info = json.loads(_run([py, "-c", CHECK], "checking the environment").strip().splitlines()[-1])
        stamp.write_text(json.dumps(info, indent=1))
    info = json.loads(_run([py, "-c", CHECK], "checking CLIP_benchmark's environment").strip().splitlines()[-1])
    if not str(info["clip_benchmark_file"]).startswith(str(env)):
        raise EnvUnavailable(f"clip_benchmark is imported from {info['clip_benchmark_file']}, not from {env}")
    return info


def _timed(cmd: list, cwd: Path = ROOT) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} … failed:\n{p.stderr[-2000:]}")
    return dt


def _semscale(data: Path, labels: Path, ck: Path, out: Path, cache: Path, workers: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)  # cold: every image and prompt is encoded
    return _timed([sys.executable, "-m", "core.cli", "sweep", "--dataset", data, "--labels", labels,
                   "--model", MODEL, "--checkpoint", ck, "--templates", "plain", "--precision", "fp32",
                   "--device", "cpu", "--levels", ",".join(map(str, LEVELS)), "--mode", "flat",
                   "--batch-size", "64", "--workers", str(workers), "--cache-dir", cache, "--out", out, "--quiet"])


def _clipbench(py: Path, data: Path, labels: Path, ck: Path, levels: list[int], out: Path, workers: int) -> float:
    return _timed([py, DRIVER, "--images", data, "--labels", labels, "--model", MODEL, "--checkpoint", ck,
                   "--template", TEMPLATE.replace("{}", "{c}"), "--levels", ",".join(map(str, levels)),
                   "--batch-size", "64", "--workers", str(workers), "--out", out])


def startup_figures(repeats: int = 3) -> dict:
    """Seconds of ``import core.cli``, ``semscale --help`` and the heavy imports, each in a fresh process."""

    def fresh(code: str) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    out = {"python_bare": fresh("pass")}
    for key, code in [("import_core_cli", "import core.cli"), ("semscale_help", "import sys; sys.argv=['semscale','--help']\n"
                      "import core.cli\ntry:\n core.cli.main()\nexcept SystemExit: pass"),
                      ("import_core_sweep", "import core.pipeline.runner"), ("import_torch", "import torch"),
                      ("import_open_clip", "import open_clip")]:
        out[key] = fresh(code)
    return out


def clipbench_comparison(tmp: Path, n_images: int = 240, repeats: int = 2, workers: int = 1) -> dict:
    """The 6-level comparison (alternating runs, medians), or {"skipped": reason}."""
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        env = ensure_env()
    except EnvUnavailable as e:
        print(f"CLIP_benchmark comparison skipped: {e}", flush=True)
        return {"skipped": str(e)}
    data = write_images(tmp / "cb-images", n_images, n_classes=8, size=(320, 240), fmt="jpg")
    labels = write_labels(tmp / "cb-labels.csv", 8, 32)
    ck = random_checkpoint(MODEL, tmp)
    py = _env_python(ENV_DIR)
    sem, per_level, one = [], [], []
    for r in range(repeats):
        sem.append(_semscale(data, labels, ck, tmp / "cb-run", tmp / "cb-cache", workers))
        per_level.append(sum(_clipbench(py, data, labels, ck, [k], tmp / f"cb-{k}.json", workers) for k in LEVELS))
        one.append(_clipbench(py, data, labels, ck, LEVELS, tmp / "cb-all.json", workers))
        print(f"  repetition {r + 1}: semscale {sem[-1]:.1f} s, CLIP_benchmark per level {per_level[-1]:.1f} s, "
              f"in one process {one[-1]:.1f} s", flush=True)
    # the same numbers on both sides: CLIP_benchmark's flat top-1 (mapped back) vs semscale's levels.csv
    import pandas as pd

    ours = pd.read_csv(tmp / "cb-run" / "levels.csv").set_index("level")["top1"]
    theirs = json.loads((tmp / "cb-all.json").read_text())
    per_level_json = [json.loads((tmp / f"cb-{k}.json").read_text()) for k in LEVELS]
    diff = max(abs(float(ours[row["level"]]) - row["top1_flat"]) for row in theirs["levels"])
    t_sem, t_per, t_one = (statistics.median(x) for x in (sem, per_level, one))
    return {
        "model": MODEL, "n_images": n_images, "levels": LEVELS, "n_names": 8 * 32, "template": TEMPLATE,
        "workers": workers, "repeats": repeats, "environment": env,
        "semscale_seconds": t_sem, "clipbench_per_level_seconds": t_per, "clipbench_one_process_seconds": t_one,
        "ratio": t_sem / t_per, "ratio_one_process": t_sem / t_one, "goal": GOAL, "meets_goal": t_sem / t_per <= GOAL,
        "runs": {"semscale": sem, "clipbench_per_level": per_level, "clipbench_one_process": one},
        "clipbench_imports_seconds": statistics.median(j["imports_seconds"] for j in per_level_json),
        "clipbench_model_seconds": statistics.median(j["model_seconds"] for j in per_level_json),
        "clipbench_level_seconds": {row["level"]: row["seconds"] for row in theirs["levels"]},
        "top1_semscale": {int(k): float(v) for k, v in ours.items()},
        "top1_clipbench_flat": {row["level"]: row["top1_flat"] for row in theirs["levels"]},
        "top1_max_abs_diff": diff,
        "startup": startup_figures(),
    }


def markdown(c: dict) -> list[str]:
    """The results.md section."""
    out = ["", "## semscale vs CLIP_benchmark (6-level sweep)"]
    if c.get("skipped"):
        return out + ["", f"Skipped: {c['skipped']}"]
    st = c["startup"]
    env = c["environment"]
    out += [f"{c['n_images']} JPEG images (8 classes), {c['n_names']} names (8 x 32), levels {c['levels']} in flat mode, "
            f"{c['model']} with random weights, template `{c['template']}`, fp32 on the CPU, batches of 64, "
            f"{c['workers']} DataLoader worker(s). semscale: one `semscale sweep` process with an empty cache. "
            f"CLIP_benchmark 1.6.2 (its own environment: numpy {env['numpy']}, scikit-learn {env['sklearn']}, torch "
            f"{env['torch']}, open_clip {env['open_clip']}): one `evaluate()` per level whose class names are all of "
            "that level's names, predictions mapped back to classes (`benchmarks/clipbench_levels.py`). "
            + (f"Median of {c['repeats']} alternating repetitions." if c["repeats"] > 1 else "One repetition."), "",
            "| measurement | seconds | ratio | goal |", "|---|---|---|---|",
            f"| semscale, 6 levels in one sweep | {c['semscale_seconds']:.1f} | | |",
            f"| CLIP_benchmark, one process per level (as its command line runs) | {c['clipbench_per_level_seconds']:.1f} | "
            f"**{c['ratio']:.2f}** | ≤ {c['goal']} ({'met' if c['meets_goal'] else 'NOT met'}) |",
            f"| CLIP_benchmark, one process for all levels (Python API in a loop) | "
            f"{c['clipbench_one_process_seconds']:.1f} | {c['ratio_one_process']:.2f} | (reported) |",
            "", f"Same top-1 on both sides: largest difference per level {c['top1_max_abs_diff']:.4f} "
            f"(semscale {', '.join(f'{v:.3f}' for v in c['top1_semscale'].values())}). CLIP_benchmark's process "
            f"spends {c['clipbench_imports_seconds']:.1f} s importing and {c['clipbench_model_seconds']:.1f} s building "
            "the model before each level." + (f" Note: {c['note']}." if c.get("note") else ""), "",
            "Start-up (fresh interpreter, median of 3):", "", "| step | seconds |", "|---|---|"]
    names = {"python_bare": "python (nothing imported)", "import_core_cli": "`import core.cli`",
             "semscale_help": "`semscale --help`", "import_core_sweep": "`import core.pipeline.runner`",
             "import_torch": "`import torch`", "import_open_clip": "`import open_clip`"}
    out += [f"| {names[k]} | {v:.2f} |" for k, v in st.items()]
    return out


if __name__ == "__main__":
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=240)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="semscale-clipbench-") as d:
        print(json.dumps(clipbench_comparison(Path(d), args.images, args.repeats), indent=1))
