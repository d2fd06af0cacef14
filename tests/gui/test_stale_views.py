"""Views that must follow what was opened last (dataset browser, template example line,
run progress, Suggest dialog layout), the synonym table at 1,000 × 16 names, and opening
paths from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _second_dataset(root: Path) -> Path:
    for cls, colour in (("ant", (120, 60, 20)), ("bee", (240, 200, 20))):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            arr = np.full((32, 32, 3), colour, dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i}.png")
    return root


def test_new_dataset_shows_its_first_class_and_example_line(qtbot, main_window, image_folder, tmp_path):
    w = main_window
    b = w.browser
    with qtbot.waitSignal(b.dataset_loaded, timeout=30000):
        b.open_path(image_folder)
    first = b.dataset.classes[0]
    qtbot.waitUntil(lambda: b.grid_caption.text() == f"{first}: 4 images", timeout=5000)
    assert b.current_class() == first
    assert first in w.editor.templates.status.text()

    other = _second_dataset(tmp_path / "other")
    with qtbot.waitSignal(b.dataset_loaded, timeout=30000):
        b.open_path(other)
    # the same row (0) stays selected, which used to leave the old class's grid and caption
    assert b.grid_caption.text() == "ant: 3 images"
    assert b.current_class() == "ant"
    assert [b.dataset.records[i].label for i in b.thumbs.indices] == ["ant"] * 3
    qtbot.waitUntil(lambda: b.thumbs.n_loaded() == 3, timeout=10000)
    assert "ant" in w.editor.templates.status.text() and first not in w.editor.templates.status.text()


def test_progress_says_ensembles_during_ensembling(qtbot, gui_env):
    from core.util.events import Progress
    from semscale_gui.run_panel import RunPanel

    p = RunPanel()
    qtbot.addWidget(p)
    p.set_running(True, n_backbones=2)
    p.on_progress(Progress("score", 1, 3, None, "demo-vit"))
    assert "backbone 1 of 2" in p.stage.text()
    p.on_progress(Progress("score", 1, 3, None, "demo-resnet"))
    assert "backbone 2 of 2" in p.stage.text()
    p.on_progress(Progress("ensembles", 0, 3, None, "ensemble"))  # as the engine reports it
    assert "ensembles" in p.stage.text() and "backbone 3" not in p.stage.text()
    assert p.bar.maximum() == 3


def test_suggest_dialog_default_size_fits_every_section(qtbot, gui_env):
    """Every section gets at least the height its contents ask for, whichever WordNet the machine
    has (its status line wraps to more or fewer lines) and whatever the font: relations, no pixels."""
    from semscale_gui.suggest_dialog import SuggestDialog

    d = SuggestDialog(["house", "ball"], 2, [("demo-vit", None)])
    qtbot.addWidget(d)
    d.show()
    qtbot.waitUntil(lambda: d._wordnet_found is not None, timeout=30000)

    def fits() -> bool:
        sections = (d.wordnet_box, d.neighbours_box)
        return (d.height() >= d.fitting_height()
                and all(w.height() >= (w.heightForWidth(w.width()) if w.hasHeightForWidth()
                                       else w.minimumSizeHint().height()) for w in sections)
                and d.wordnet_box.geometry().bottom() < d.neighbours_box.geometry().top()
                and d.neighbours_box.geometry().bottom() <= d.buttons.geometry().top())

    for status in (None, "found: " + ", ".join(f"a/long/path/to/wordnet/file-{i}" for i in range(40)), "x"):
        if status is not None:  # another machine's WordNet: a longer or shorter status line
            d.wordnet_status.setText(status)
            d._update()
        qtbot.waitUntil(fits, timeout=5000)
        note, vocab = d.backbone_note.geometry(), d.vocab_wordnet.geometry()
        assert note.bottom() < vocab.top()  # the help line no longer runs into the vocabulary row
        assert note.height() >= d.backbone_note.heightForWidth(note.width()) - 1


def test_synonym_table_edits_emit_data_changed_not_reset(qtbot, gui_env):
    from core.labels.labelset import LabelSet
    from semscale_gui.synonym_editor import SynonymEditor

    names = {f"class {i:04d}": [f"class {i:04d}"] + [f"name {i} {j}" for j in range(1, 16)] for i in range(1000)}
    w = SynonymEditor()
    qtbot.addWidget(w)
    w.doc.load_labelset(LabelSet(names=names))
    m = w.model
    assert m.rowCount() == 1000 and m.columnCount() == 17
    resets, changes, inserted = [], [], []
    m.modelReset.connect(lambda: resets.append(1))
    m.dataChanged.connect(lambda a, b, _roles=(): changes.append((a.row(), b.row(), a.column(), b.column())))
    m.columnsInserted.connect(lambda _p, a, b: inserted.append((a, b)))
    w.table.setCurrentIndex(m.index(500, 3))
    assert m.setData(m.index(500, 3), "renamed")
    assert resets == [] and changes == [(500, 500, 0, 16)]
    assert m.data(m.index(500, 3)) == "renamed" and w.current_cell() == ("class 0500", 3)  # selection kept
    changes.clear()
    w.undo_action.trigger()
    assert m.data(m.index(500, 3)) == "name 500 3" and changes == [(500, 500, 0, 16)] and resets == []

    changes.clear()
    m.setData(m.index(10, 2), "name 20 5")  # now shared with class 0020: both rows turn red
    assert sorted({c[0] for c in changes}) == [10, 20] and resets == []
    assert m.data(m.index(20, 5), 8) is not None  # BackgroundRole: the duplicate tint

    m.setData(m.index(7, 16), "a seventeenth name")  # the longest list grows: one column inserted
    assert inserted == [(17, 17)] and m.columnCount() == 18 and resets == []
    assert m.headerData(17, __import__("PySide6.QtCore").QtCore.Qt.Orientation.Horizontal) == "+ add"


def test_classify_paths(tmp_path, image_folder, labels_csv):
    from benchmarks.synthetic_run import write_synthetic_run
    from semscale_gui.open_paths import DATASET, LABELS, RUN, STUDY, classify

    run = write_synthetic_run(tmp_path / "run", n_classes=10, n_images=40, levels=(1, 2), kshot=False)
    js = tmp_path / "names.json"
    js.write_text(json.dumps({"cat": ["cat", "kitty"]}))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label\nimages/a.png,cat\n")
    study = tmp_path / "study.toml"
    study.write_text("[study]\n")
    assert [classify(p).kind for p in (run, run / "run.json", labels_csv, js, manifest, image_folder, study)] == \
        [RUN, RUN, LABELS, LABELS, DATASET, DATASET, STUDY]
    assert classify(run / "run.json").path == run


def test_open_paths_dataset_then_labels_and_a_run(qtbot, main_window, image_folder, tmp_path):
    from benchmarks.synthetic_run import write_synthetic_run
    from semscale_gui.open_paths import open_paths

    w = main_window
    names = {"red square": ["red square", "ruby block"], "green circle": ["green circle", "emerald ring"],
             "blue triangle": ["blue triangle"], "yellow bar": ["yellow bar", "lemon stick"]}
    js = tmp_path / "mine.json"
    js.write_text(json.dumps(names))
    run = write_synthetic_run(tmp_path / "run", n_classes=12, n_images=60, levels=(1, 2), kshot=False)
    with qtbot.waitSignal(w.results.run_opened, timeout=60000):
        open_paths(w, [str(image_folder), str(js), str(run)])
    qtbot.waitUntil(lambda: w.browser.dataset is not None, timeout=30000)
    # the file named on the command line wins over the labels.csv lying beside the images
    qtbot.waitUntil(lambda: w.doc.as_dict() == names, timeout=10000)
    assert w.results.results.run_dir == str(run) and w.tabs.currentWidget() is w.results


def test_screenshot_panels_of_a_run_from_the_command_line(gui_env, tmp_path):
    from PySide6.QtGui import QImage

    from benchmarks.synthetic_run import write_synthetic_run
    from semscale_gui.selftest import RESULT_PANELS

    run = write_synthetic_run(tmp_path / "run", n_classes=60, n_images=600, levels=(1, 2, 4))
    out = tmp_path / "shots"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "semscale_gui.app", str(run), "--screenshot-panels", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    for _, name in RESULT_PANELS:
        img = QImage(str(out / f"{name}.png"))
        assert img.width() > 900 and img.height() > 700, name
    assert "drawn" in p.stdout and "screenshots done" in p.stdout


def test_opening_the_gallery_never_widens_the_window(qtbot, main_window, tmp_path):
    from benchmarks.synthetic_run import write_synthetic_run
    from core.results.drilldown import ClassAtLevel

    w = main_window
    run = write_synthetic_run(tmp_path / "run", n_classes=60, n_images=300, levels=(1, 2, 4), kshot=False)
    w.resize(1480, 940)
    w.show()
    res = w.results
    res.open_run(run)
    qtbot.waitUntil(lambda: res.gallery.source is not None, timeout=30000)
    w.tabs.setCurrentWidget(res)
    before = w.width()
    long_name = next(r["class"] for r in res.results.per_class if "also called" in r["class"])
    with qtbot.waitSignal(res.gallery.filled, timeout=15000):
        res.show_images(ClassAtLevel("ViT-B-32", 4, long_name))
    qtbot.wait(200)
    assert res.gallery.isVisible()
    assert w.width() == before  # was 1480 -> 1697 -> 1779 on a 1600 px screen
    assert w.minimumSizeHint().width() <= 1280  # fits a 1280x800 screen with the gallery open
    assert w.minimumSizeHint().height() <= 800 - 40  # and its height (the Run panel scrolls), title bar aside
    res.gallery._close()
    qtbot.wait(100)
    assert w.width() == before


def test_the_templates_a_run_uses_are_shown_in_the_run_panel_and_results_header(qtbot, main_window, tmp_path):
    from benchmarks.synthetic_run import write_synthetic_run
    from core.labels.labelset import preset_templates

    w = main_window
    ed, rp = w.editor, w.run_panel
    ed.templates.set_value("plain")
    plain = preset_templates("plain")
    assert rp.templates_info.text() == f"plain: {len(plain)} template{'s' if len(plain) != 1 else ''}, " \
                                       f"e.g. “{plain[0].format(ed.templates.example_name)}”"
    ed.templates.set_value(["a photo of a {}.", "art of the {}."])
    assert rp.templates_info.text().startswith("custom: 2 templates, e.g. “a photo of a ")
    run = write_synthetic_run(tmp_path / "run", n_classes=10, n_images=40, levels=(1, 2), kshot=False)
    w.results.open_run(run)
    qtbot.waitUntil(lambda: "templates simple" in w.results.header.text(), timeout=10000)


def test_gallery_says_where_the_missing_dataset_was_expected(qtbot, main_window, tmp_path):
    from benchmarks.synthetic_run import write_synthetic_run
    from core.results.drilldown import ClassAtLevel

    w = main_window
    run = write_synthetic_run(tmp_path / "run", n_classes=10, n_images=40, levels=(1, 2), kshot=False)
    res = w.results
    res.open_run(run)
    qtbot.waitUntil(lambda: res.gallery.source is not None, timeout=30000)
    cls = res.results.per_class[0]["class"]
    with qtbot.waitSignal(res.gallery.filled, timeout=15000):
        res.show_images(ClassAtLevel("ViT-B-32", 1, cls))
    g = res.gallery
    qtbot.waitUntil(lambda: not g.missing.isHidden(), timeout=15000)
    assert "not reachable" in g.missing.text() and str(run / "images") in g.missing.text()
