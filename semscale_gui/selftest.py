"""``--self-test`` and ``--screenshot``: drive the real window off-screen.

Both use the demo dataset and demo backbone when they are installed; otherwise a tiny
generated dataset and a random-initialised tiny open_clip model saved as a checkpoint,
so the whole path (dataset → labels file → worker thread → engine → live plots) is
exercised on any machine. Settings, data and caches go to a temporary folder.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QWidget


def wait_until(pred: Callable[[], bool], timeout_s: float, step_ms: int = 20) -> bool:
    """Turn the event loop until ``pred()`` holds or the time is up."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            return False
        loop = QEventLoop()
        QTimer.singleShot(step_ms, loop.quit)
        loop.exec()
    return True


def _isolate(tmp: Path) -> None:
    os.environ["SEMSCALE_GUI_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["SEMSCALE_DATA_DIR"] = str(tmp / "data")
    os.environ.setdefault("SEMSCALE_CACHE_DIR", str(tmp / "cache"))


def tiny_backbone(folder: Path, seed: int = 0) -> dict:
    """The run panel's spec of a random-initialised tiny model (when no demo backbone is installed)."""
    from core.demo.tiny import write_tiny_model

    cfg, ck = write_tiny_model(folder, seed=seed, checkpoint_name=f"tiny-clip-seed{seed}.pt")
    return {"model": str(cfg), "pretrained": None, "checkpoint": str(ck), "label": f"tiny-random-{seed}"}


class Scenario:
    """A window with a dataset, its names and one or more backbones ready to run."""

    def __init__(self, tmp: Path, n_per_class: int, n_backbones: int, timeout_s: float) -> None:
        from core.demo.tiny import write_tiny_dataset

        from semscale_gui.demo_setup import DEFAULT_DEMOS, demo_models, ensure_demo_dataset
        from semscale_gui.main_window import MainWindow

        self.timeout_s = timeout_s
        images = ensure_demo_dataset(tmp, n_per_class=n_per_class)
        self.kind = "demo dataset"
        if images is None:
            images, _ = write_tiny_dataset(tmp / "tiny")
            self.kind = "generated dataset"
        demos = demo_models()
        if demos:
            names = sorted(demos, key=lambda n: (n not in DEFAULT_DEMOS, list(demos).index(n)))
            self.specs = [{"model": name, "pretrained": None, "checkpoint": None, "demo": True}
                          for name in names[:n_backbones]]
            self.model_kind = "demo backbone"
        else:
            self.specs = [tiny_backbone(tmp / "model", seed=i) for i in range(n_backbones)]
            self.model_kind = "tiny random-initialised model"
        self.window = MainWindow(load_demo=False, restore_state=False)
        self.window.resize(1500, 950)
        self.window.show()
        w = self.window
        w.browser.open_path(images)
        if not wait_until(lambda: w.browser.dataset is not None and not w.browser.loading, timeout_s):
            raise RuntimeError("the dataset did not open")
        wait_until(lambda: bool(w.doc.classes), 5)
        w.run_panel.backbones.set_checked(self.specs)
        w.run_panel.workers.setValue(0)
        w.editor.templates.set_value("plain")
        self.status: Optional[str] = None
        self.run_dir = ""
        w.controller.finished.connect(self._finished)

    def _finished(self, status: str, run_dir: str, _summary: object) -> None:
        self.status, self.run_dir = status, run_dir

    def run(self) -> bool:
        w = self.window
        if not w.start_sweep():
            return False
        return wait_until(lambda: self.status is not None, self.timeout_s)


def self_test(timeout_s: float = 600.0) -> int:
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="semscale-selftest-"))
    _isolate(tmp)
    try:
        sc = Scenario(tmp, n_per_class=4, n_backbones=1, timeout_s=timeout_s)
        if not sc.run():
            print(f"self-test FAILED: the sweep did not finish within {timeout_s:.0f} s")
            return 1
        w = sc.window
        import json

        meta = json.loads((Path(sc.run_dir) / "run.json").read_text(encoding="utf-8"))
        levels = [int(x) for x in meta["config"]["levels_resolved"]]
        w.results.tabs.setCurrentWidget(w.results.accuracy)
        wait_until(lambda: w.results.accuracy.plotted_levels(), 5)
        names = w.results.results.backbones()
        plotted = w.results.accuracy.plotted_levels(names[0]) if names else []
        w.results.tabs.setCurrentWidget(w.results.heatmap)  # hidden views redraw when shown (in the background)
        wait_until(lambda: w.results.heatmap._levels == levels, 10)
        heat_levels = w.results.heatmap._levels
        ok = sc.status == "completed" and plotted == levels and heat_levels == levels
        line = (f"{len(plotted)}/{len(levels)} levels plotted live for {names[0] if names else '?'} "
                f"({sc.model_kind}, {sc.kind}), status {sc.status}, {time.monotonic() - t0:.1f} s")
        print(("self-test passed: " if ok else "self-test FAILED: ") + line)
        w.close()
        return 0 if ok else 1
    except Exception as e:
        print(f"self-test FAILED: {type(e).__name__}: {e}")
        return 1


def _grab(widget: QWidget, path: Path) -> Path:
    QApplication.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not widget.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    return path


def _grab_with_dialog(base: QWidget, dialog: QWidget, path: Path) -> Path:
    """``base`` with ``dialog`` drawn on top, centred, as a user sees an open dialog
    (off-screen, every window is grabbed on its own)."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtGui import QColor, QFont, QPainter, QPen

    QApplication.processEvents()
    pm = base.grab()
    dlg = dialog.grab()
    bar = 26
    x, y = (pm.width() - dlg.width()) // 2, max(0, (pm.height() - dlg.height() - bar) // 2)
    p = QPainter(pm)
    p.fillRect(pm.rect(), QColor(0, 0, 0, 60))
    p.fillRect(QRect(x, y, dlg.width(), bar), QColor("#e8ebef"))
    f = QFont(QApplication.font())
    f.setBold(True)
    p.setFont(f)
    p.setPen(QColor("#222222"))
    p.drawText(QRect(x + 10, y, dlg.width() - 20, bar), int(Qt.AlignmentFlag.AlignVCenter), dialog.windowTitle())
    p.drawPixmap(x, y + bar, dlg)
    p.setPen(QPen(QColor("#8a939c"), 1))
    p.drawRect(QRect(x, y, dlg.width() - 1, dlg.height() + bar - 1))
    p.end()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not pm.save(str(path)):
        raise OSError(f"could not write {path}")
    return path


def suggestion_screenshots(w, d: Path) -> list[Path]:
    """The synonym editor with its Suggest dialog open, then the review of what WordNet found."""
    ed = w.editor
    w.tabs.setCurrentWidget(ed)
    ed.select_cell(ed.doc.classes[1] if len(ed.doc.classes) > 1 else ed.doc.classes[0], 0)
    dlg = ed.suggest_for_all()
    if dlg is None:
        return []
    wait_until(lambda: dlg._wordnet_found is not None, 60)
    dlg.related.setChecked(True)
    dlg.adjustSize()
    saved = [_grab_with_dialog(w, dlg, d / "suggest-dialog.png")]
    if not dlg._wordnet_found:
        print("no WordNet on this machine: the suggestion review is not shown")
        dlg.reject()
        return saved
    ed.review = None
    dlg.ok_button.click()
    if wait_until(lambda: ed.review is not None and ed.review.isVisible(), 120):
        review = ed.review
        for row in (1, 3):  # as a user would: some names are not synonyms
            if row < review.table.rowCount():
                review.set_checked(row, False)
        saved.append(_grab_with_dialog(w, review, d / "suggest-review.png"))
        review.reject()
    return saved


def gallery_screenshots(res, d: Path) -> list[Path]:
    """The gallery beside the plots: from the fullest off-diagonal confusion cell, then the flips
    of the first backbone between the two levels where most images change, each with a preview."""
    from core.results.drilldown import ConfusionCell, LevelFlips
    from core.stats.flips import compute_flips

    p = res.predictions
    if p.empty or res.gallery.source is None:
        return []
    saved = []
    backbone = str(p["backbone"].iloc[0])
    res.resize(max(res.width(), 1600), max(res.height(), 900))

    def show(view, selection, name: str) -> None:
        res.tabs.setCurrentWidget(view)
        res.show_images(selection)
        g = res.gallery
        wait_until(lambda: g.shown_selection == selection and g.model.n_pending == 0 and g.model.n_loaded() > 0, 30)
        g.top5 = []
        g.grid.setCurrentIndex(g.model.index(0))
        wait_until(lambda: bool(res.gallery.top5), 10)
        wait_until(lambda: False, 0.5)
        saved.append(_grab(res, d / f"{name}.png"))

    level = int(sorted(p["level"].unique())[-1])
    at = p[(p["backbone"] == backbone) & (p["level"] == level)]
    off = at[at["true_class"] != at["predicted_class"]]
    if len(off):
        (t, q) = off.groupby(["true_class", "predicted_class"]).size().idxmax()
        res.tabs.setCurrentWidget(res.confusion)
        res.confusion.backbone.setCurrentText(backbone)
        res.confusion.level.setCurrentText(str(level))
        wait_until(lambda: res.confusion.data is not None and res.confusion.data.level == level, 30)
        show(res.confusion, ConfusionCell(backbone, level, str(t), str(q)), "gallery-confusion")
    flips = compute_flips(p, backbone)
    if len(flips):
        lo, hi = flips.groupby(["from_level", "to_level"]).size().idxmax()
        show(res.accuracy, LevelFlips(backbone, int(lo), int(hi)), "gallery-flips")
    res.gallery.hide()
    return saved


def _reported(make: Callable[..., int]) -> Callable[..., int]:
    """A screenshot command that prints its traceback and returns 1 on any error."""
    @functools.wraps(make)
    def run(*args, **kwargs) -> int:
        try:
            return make(*args, **kwargs)
        except Exception as e:
            import traceback

            traceback.print_exc()
            print(f"screenshot FAILED: {type(e).__name__}: {e}")
            return 1

    return run


RESULT_PANELS = (("accuracy", "results-accuracy"), ("heatmap", "results-per-class-recall"),
                 ("confusion", "results-confusion"), ("comparison", "results-backbones"),
                 ("ensembles", "results-synergy"), ("kshot", "results-kshot"), ("frequency", "results-frequency"),
                 ("table", "results-table"), ("compare", "results-compare"), ("names", "results-names"))


def tab_screenshots(w, d: Path) -> list[Path]:
    """The dataset browser and the synonym editor."""
    saved = []
    for tab, name in ((w.browser, "dataset-browser"), (w.editor, "synonym-editor")):
        w.tabs.setCurrentWidget(tab)
        wait_until(lambda: False, 0.4)
        saved.append(_grab(tab, d / f"{name}.png"))
    return saved


def result_screenshots(w, d: Path, panels=RESULT_PANELS) -> list[Path]:
    """Each Results panel once its data has arrived, with the time it took from the tab switch."""
    res = w.results
    w.tabs.setCurrentWidget(res)
    saved = []
    for attr, name in panels:
        view = getattr(res, attr)
        t1 = time.monotonic()
        res.tabs.setCurrentWidget(view)
        wait_until(lambda: _panel_ready(res, view), 60)
        ms = (time.monotonic() - t1) * 1000
        wait_until(lambda: False, 0.3)
        saved.append(_grab(res, d / f"{name}.png"))
        print(f"{name}: drawn {ms:.0f} ms after the tab switch")
    return saved


@_reported
def screenshots(file: Optional[str], panels_dir: Optional[str], timeout_s: float = 600.0) -> int:
    """Run a demo sweep and save the main window (and each panel) as PNG."""
    tmp = Path(tempfile.mkdtemp(prefix="semscale-screens-"))
    _isolate(tmp)
    sc = Scenario(tmp, n_per_class=30, n_backbones=2, timeout_s=timeout_s)
    w = sc.window
    if not sc.run() or sc.status != "completed":
        print(f"screenshot FAILED: the sweep ended as {sc.status}")
        return 1
    res = w.results
    wait_until(lambda: not res.predictions.empty, 60)
    w.browser.select_class(w.browser.dataset.classes[1])
    wait_until(lambda: w.browser.thumbs.n_pending == 0 and w.browser.thumbs.n_loaded() > 0, 30)
    wait_until(lambda: w.browser.image_check_done, 60)
    w.log_dock.raise_()
    saved = []
    w.tabs.setCurrentWidget(res)
    res.tabs.setCurrentWidget(res.accuracy)
    wait_until(lambda: False, 0.5)
    if file:
        saved.append(_grab(w, Path(file)))
    if panels_dir:
        d = Path(panels_dir)
        saved += tab_screenshots(w, d)
        saved += result_screenshots(w, d, [p for p in RESULT_PANELS if p[0] != "compare"])  # one run: nothing to compare
        saved.append(_grab(w.run_panel, d / "run-panel.png"))
        saved.append(_grab(w.log, d / "log.png"))
        saved += gallery_screenshots(res, d)
        saved += suggestion_screenshots(w, d)
    for p in saved:
        print(p)
    w.close()
    return 0


@_reported
def path_screenshots(paths: list[str], file: Optional[str], panels_dir: Optional[str], timeout_s: float = 600.0,
                     size: tuple[int, int] = (1600, 1000)) -> int:
    """Open ``paths`` as ``semscale-gui PATH…`` would and save the window and every Results panel.

    Each panel is saved once its data has arrived (the heavy views draw from background
    tasks); the time each took from the tab switch is printed.
    """
    from semscale_gui.main_window import MainWindow
    from semscale_gui.open_paths import RUN, open_paths

    tmp = Path(tempfile.mkdtemp(prefix="semscale-screens-"))
    _isolate(tmp)
    t0 = time.monotonic()
    w = MainWindow(load_demo=False, restore_state=False)
    w.resize(*size)
    w.show()
    targets = open_paths(w, paths)
    res = w.results
    runs = [t for t in targets if t.kind == RUN]
    if runs:
        want = str(runs[-1].path)
        if not wait_until(lambda: res.results.run_dir is not None and Path(res.results.run_dir) == Path(want)
                          and (res.results.predictions_path is None or not res.predictions.empty), timeout_s):
            print(f"screenshot FAILED: the run {want} did not open within {timeout_s:.0f} s")
            return 1
        wait_until(lambda: not res.compare.loading, timeout_s)
        if len(runs) == 1:
            res.compare.add_runs([want])
            wait_until(lambda: not res.compare.loading, timeout_s)
    else:
        wait_until(lambda: w.browser.dataset is not None and not w.browser.loading, timeout_s)
    print(f"opened in {time.monotonic() - t0:.1f} s")
    saved = []
    if file:
        w.tabs.setCurrentWidget(res if runs else w.browser)
        wait_until(lambda: False, 0.5)
        saved.append(_grab(w, Path(file)))
    if panels_dir:
        d = Path(panels_dir)
        saved += result_screenshots(w, d)
        if not runs:
            saved += tab_screenshots(w, d)
    for p in saved:
        print(p)
    print(f"screenshots done in {time.monotonic() - t0:.1f} s")
    w.close()
    return 0


def _panel_ready(res, view) -> bool:
    """A Results view has drawn what the run holds (the heavy ones draw from background tasks)."""
    if view is res.heatmap:
        return view.pivot is not None and view.matrix.size > 0 or not res.results.per_class
    if view is res.confusion:
        return view.counts.size > 0 or res.predictions.empty
    if view is res.compare or view is getattr(res, "names", None):
        return not view.loading
    return True
