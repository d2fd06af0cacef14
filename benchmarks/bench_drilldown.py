"""Drill-down at ImageNet scale: how long the gallery's background work and its GUI-thread
part take on a synthetic run of 1000 classes and 20,000 images (two backbones, five levels).

The selections run on a pool thread in the app; what the GUI thread does is hand the rows to
the model (``GalleryModel.set_rows``). ``python -m benchmarks.bench_drilldown`` prints the
numbers; ``make bench`` includes them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from benchmarks.common import best_of


def drilldown(tmp: Path, n_classes: int = 1000, n_images: int = 20000) -> dict:
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from core.results.drilldown import ClassAtLevel, ConfusionCell, LevelFlips, RunImages, SynergyImages
    from core.stats.flips import compute_flips

    from benchmarks.synthetic_run import write_synthetic_run

    run_dir = write_synthetic_run(tmp / "drill", n_classes=n_classes, n_images=n_images, kshot=False)
    t_load, run = best_of(lambda: RunImages.from_dir(run_dir), 1)
    p = run.predictions
    b = str(p["backbone"].iloc[0])
    levels = sorted(int(v) for v in p["level"].unique())
    at = p[(p["backbone"] == b) & (p["level"] == levels[-1])]
    off = at[at["true_class"] != at["predicted_class"]]
    t, q = off.groupby(["true_class", "predicted_class"]).size().idxmax()
    out = {"n_images": n_images, "n_classes": n_classes, "n_rows": len(p), "levels": levels,
           "load_seconds": round(t_load, 3)}
    t_all, flips = best_of(lambda: compute_flips(p))
    out["all_flips_seconds"], out["n_flips"] = round(t_all, 3), len(flips)
    for name, sel in (("confusion_cell", ConfusionCell(b, levels[-1], str(t), str(q))),
                      ("class_at_level", ClassAtLevel(b, levels[-1], str(t))),
                      ("level_flips", LevelFlips(b, levels[0], levels[-1])),
                      ("only_one_right", SynergyImages(levels[-1], "only_one"))):
        secs, rows = best_of(lambda: sel.rows(run))
        out[f"{name}_seconds"], out[f"{name}_rows"] = round(secs, 4), len(rows)

    from PySide6.QtWidgets import QApplication

    from semscale_gui.gallery import GalleryModel

    app = QApplication.instance() or QApplication([])
    model = GalleryModel()
    # every image of one backbone at one level: the largest gallery a selection can fill
    rows = p[(p["backbone"] == b) & (p["level"] == levels[-1])].assign(group="correct", detail="", owners="")
    secs, _ = best_of(lambda: model.set_rows(rows, {}))
    out["gui_set_rows_seconds"], out["gui_set_rows_n"] = round(secs, 4), len(rows)
    out["gui_rows_handed_to_view"] = model.rowCount()
    del app
    return out


def main(argv=None) -> None:
    import argparse

    argparse.ArgumentParser(prog="python -m benchmarks.bench_drilldown",
                            description=__doc__.split("\n\n")[0]).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="semscale-drill-") as tmp:
        print(json.dumps(drilldown(Path(tmp)), indent=1))


if __name__ == "__main__":
    main()
