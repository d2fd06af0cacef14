"""The Names tab at scale: how long a run's names take to appear, how long the event loop is ever
held, and what a sort, a level change, a typed filter and a backbone switch cost, at 1,000 classes
× 16 names against 100 classes (the ratio says whether the view scales with the classes).

The runs are synthetic (:mod:`benchmarks.synthetic_run` with :mod:`benchmarks.synthetic_names`):
their names.csv is read, ranked and shown exactly as a real one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _measure(run_dir: Path) -> dict:
    from PySide6.QtCore import QTimer, Qt
    from PySide6.QtWidgets import QApplication

    from core.results.views import ResultsData
    from semscale_gui.names_view import COL_TAKEN, NamesView
    from semscale_gui.selftest import wait_until

    app = QApplication.instance() or QApplication([])
    v = NamesView()
    v.resize(1000, 800)
    v.show()
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    t0 = time.perf_counter()
    v.set_results(ResultsData(run_dir=str(run_dir), status="completed"))
    wait_until(lambda: v.model.rowCount() > 0, 300)
    shown = time.perf_counter() - t0
    wait_until(lambda: not v.loading, 300)
    ranked = time.perf_counter() - t0
    stall = max(gaps) if gaps else 0.0
    timer.stop()

    def timed(action) -> float:
        t = time.perf_counter()
        action()
        app.processEvents()
        return time.perf_counter() - t

    rows = v.model.rowCount()
    levels = [v.level.itemText(i) for i in range(v.level.count())]
    out = {"rows": rows, "shown_s": round(shown, 2), "ranked_s": round(ranked, 2), "stall_ms": round(stall * 1000),
           "sort_ms": round(timed(lambda: v.table.sortByColumn(COL_TAKEN, Qt.SortOrder.DescendingOrder)) * 1000),
           "level_ms": round(timed(lambda: v.level.setCurrentText(levels[len(levels) // 2])) * 1000),
           "filter_ms": round(timed(lambda: v.search.setText("owl")) * 1000)}
    other = [v.backbone.itemText(i) for i in range(v.backbone.count()) if v.backbone.itemText(i) !=
             v.backbone.currentText()]
    out["backbone_ms"] = round(timed(lambda: v.backbone.setCurrentText(other[0])) * 1000) if other else None
    v.close()
    v.deleteLater()
    app.processEvents()
    return out


def run(tmp, quick: bool = False) -> dict:
    from benchmarks.synthetic_names import write_synthetic_names
    from benchmarks.synthetic_run import write_synthetic_run

    tmp = Path(tmp)
    big = 300 if quick else 1000
    out = {}
    for n in (100, big):
        run_dir = write_synthetic_run(tmp / f"names-{n}", n_classes=n, n_images=20 * n, kshot=False)
        write_synthetic_names(run_dir)
        out[str(n)] = _measure(run_dir)
    out["n_big"] = big
    return out


def markdown(r: dict) -> list[str]:
    small, big = r["100"], r[str(r["n_big"])]
    ratio = big["stall_ms"] / max(small["stall_ms"], 1)
    lines = ["", "## Names tab at scale",
             f"Synthetic runs, 2 backbones, levels 1, 2, 4, 8, 16, 16 names per class, 20 images per class; the "
             f"names are read and ranked on pool threads. *Stall*: the longest the event loop was held while the run's "
             f"names arrived (a 10 ms timer).", "",
             "| classes | rows shown | table shown (s) | harmful ranked (s) | stall (ms) | sort (ms) | level (ms) | "
             "filter (ms) | backbone (ms) |", "|---|---|---|---|---|---|---|---|---|"]
    for n, m in (("100", small), (str(r["n_big"]), big)):
        lines.append(f"| {n} | {m['rows']:,} | {m['shown_s']:.2f} | {m['ranked_s']:.2f} | {m['stall_ms']} | "
                     f"{m['sort_ms']} | {m['level_ms']} | {m['filter_ms']} | {m['backbone_ms']} |")
    lines += ["", f"Stall at {r['n_big']} classes / at 100: **{ratio:.1f}x** for {r['n_big'] // 100}x the classes."]
    return lines


if __name__ == "__main__":
    import argparse
    import json
    import tempfile

    ap = argparse.ArgumentParser(description="The Names tab at 100 and 1,000 classes (the `namesview` section of "
                                             "`python -m benchmarks`).")
    ap.add_argument("--quick", action="store_true", help="the small case only")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        res = run(d, quick=args.quick)
        print(json.dumps(res, indent=1))
        print("\n".join(markdown(res)))
