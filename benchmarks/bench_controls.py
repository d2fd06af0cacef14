"""What control curves and the paired tests cost.

* the demo set with the bundled demo-resnet: a sweep without controls vs one with both
  controls, cold (text encoded) and warm (everything cached);
* the paired tests alone (McNemar along a curve, Holm, 1000 peak resamples, semantic-effect
  CIs) on a synthetic 50,000-image, 6-level curve with 0/1 and with fractional credit.

``python -m benchmarks.bench_controls`` prints the numbers as JSON.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from core.models.openclip import BackboneSpec
from core.demo.data import write_demo_dataset
from core.stats.significance import CurveBook
from core.pipeline.runner import SweepConfig, run_sweep

from benchmarks.common import machine


def _sweep(root: Path, out: Path, cache: Path, controls: list[str]) -> float:
    cfg = SweepConfig(dataset=str(root / "images"), out=str(out), labels=str(root / "labels.csv"),
                      backbones=[BackboneSpec(model="demo-resnet", device="cpu")], templates="plain",
                      cache_dir=str(cache), controls=controls, ensemble_shots=[], num_workers=0)
    t0 = time.perf_counter()
    assert run_sweep(cfg).status == "completed"
    return time.perf_counter() - t0


def demo_sweeps(tmp: Path) -> dict:
    write_demo_dataset(tmp / "demo")
    cache = tmp / "cache"
    out = {"n_images": 300, "model": "demo-resnet", "levels": "1,2,4,8"}
    out["t_plain_cold"] = _sweep(tmp / "demo", tmp / "a", cache, [])  # images + synonyms encoded
    out["t_controls_text_cold"] = _sweep(tmp / "demo", tmp / "b", cache, ["random-words", "random-chars"])
    out["t_plain_warm"] = _sweep(tmp / "demo", tmp / "c", cache, [])
    out["t_controls_warm"] = _sweep(tmp / "demo", tmp / "d", cache, ["random-words", "random-chars"])
    out["ratio_controls_vs_plain_warm"] = out["t_controls_warm"] / out["t_plain_warm"]
    return out


def tests_alone(n_images: int = 50_000, n_levels: int = 6, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {"n_images": n_images, "n_levels": n_levels}
    for name, frac in (("binary", False), ("fractional", True)):
        book = CurveBook(list(2 ** np.arange(n_levels)), n_boot=1000, seed=seed)
        t0 = time.perf_counter()
        for kind in ("synonyms", "random-words"):
            base = (rng.random(n_images) < 0.7).astype(float)
            for _ in range(n_levels):
                c = np.where(rng.random(n_images) < 0.05, 1 - base, base)
                if frac:
                    c = np.where(rng.random(n_images) < 0.02, 0.5, c)
                book.add(("bb", kind, 0), c)
            book.finish(("bb", kind, 0))
        book.threshold_rows("bb")
        book.control_rows("bb")
        out[f"seconds_{name}"] = time.perf_counter() - t0
    return out


def fmt(res: dict) -> str:
    d, t, m = res["demo"], res["tests"], machine()
    return "\n".join([
        "# Controls and paired tests", "",
        f"Measured by `python -m benchmarks.bench_controls` on {m['cpu']} ({m['cores']} cores, load {m['load average at the end (1/5/15 min)']}).", "",
        f"Demo set ({d['n_images']} images), {d['model']}, levels {d['levels']}, template `plain`, no ensembles:", "",
        "| sweep | seconds |", "|---|---|",
        f"| synonyms only, cold (images and prompts encoded) | {d['t_plain_cold']:.1f} |",
        f"| + random-words, random-chars (their prompts encoded, images cached) | {d['t_controls_text_cold']:.1f} |",
        f"| synonyms only, everything cached | {d['t_plain_warm']:.2f} |",
        f"| + both controls, everything cached | {d['t_controls_warm']:.2f} ({d['ratio_controls_vs_plain_warm']:.1f}x) |",
        "", f"Paired tests alone, {t['n_images']:,} images x {t['n_levels']} levels x 2 names kinds (McNemar vs "
        "level 1 and previous, Holm, 1000 peak resamples per curve, threshold verdicts, semantic-effect CIs):", "",
        "| credit | seconds |", "|---|---|",
        f"| 0/1 | {t['seconds_binary']:.1f} |", f"| with ties (1/2) | {t['seconds_fractional']:.1f} |", ""])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="semscale-bench-controls-") as tmp:
        res = {"demo": demo_sweeps(Path(tmp)), "tests": tests_alone()}
    print(json.dumps(res, indent=1))
    out = Path(__file__).resolve().parent / "controls.md"
    out.write_text(fmt(res))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
