"""The app with Hugging Face folders, parquet files and CLIP_benchmark presets."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

datasets = pytest.importorskip("datasets")

from tests.core.test_hf_datasets import NAMES, hf_from_folder  # noqa: E402
from tests.gui.conftest import shown

has_clip_benchmark = importlib.util.find_spec("clip_benchmark") is not None


def _browser(qtbot):
    from semscale_gui.dataset_browser import DatasetBrowser

    w = shown(qtbot, DatasetBrowser(), 1000, 600)
    return w


def test_browser_opens_a_save_to_disk_folder_and_shows_its_images(qtbot, gui_env, image_folder, tmp_path):
    datasets.DatasetDict({"test": hf_from_folder(image_folder)}).save_to_disk(str(tmp_path / "hf"))
    w = _browser(qtbot)
    with qtbot.waitSignal(w.dataset_loaded, timeout=20000):
        w.open_path(tmp_path / "hf")
    assert w.dataset.kind == "huggingface"
    rows = {w.class_table.item(r, 0).text(): int(w.class_table.item(r, 1).text()) for r in range(w.class_table.rowCount())}
    assert rows == {c: 4 for c in NAMES}
    assert "Hugging Face" in w.summary.text() and "split 'test'" in w.summary.text()
    w.select_class("red square")
    qtbot.waitUntil(lambda: w.thumbs.n_loaded() == 4, timeout=10000)  # decoded from the arrow rows off-thread
    qtbot.waitUntil(lambda: w.preview.image.pixmap() is not None and not w.preview.image.pixmap().isNull(),
                    timeout=10000)
    img = w.preview.image.pixmap().toImage()
    red = img.pixelColor(img.width() // 2, img.height() // 2)
    assert red.red() > 120 and red.blue() < 120  # the red square's pixels, not a placeholder
    qtbot.waitUntil(lambda: w.image_check_done, timeout=10000)
    assert w.tabs.tabText(1) == "Problems (0)"


def test_drop_a_parquet_file_opens_it(qtbot, gui_env, image_folder, tmp_path):
    hf_from_folder(image_folder).to_parquet(str(tmp_path / "images.parquet"))
    w = _browser(qtbot)
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(tmp_path / "images.parquet"))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, md, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(w.dataset_loaded, timeout=20000):
        w.dropEvent(ev)
    assert w.dataset.kind == "parquet" and len(w.dataset) == 16
    assert w.dataset.records[0].id == "blue triangle/000.png"  # the folder's own ids, from the stored paths


@pytest.mark.skipif(not has_clip_benchmark, reason="clip_benchmark is not installed")
def test_clip_benchmark_presets_in_the_editors(qtbot, gui_env):
    from semscale_gui.synonym_editor import SynonymEditor
    from semscale_gui.template_editor import TemplateEditor

    folder = Path(list(importlib.util.find_spec("clip_benchmark").submodule_search_locations)[0]) / "datasets"
    templates = json.loads((folder / "en_zeroshot_classification_templates.json").read_text())
    t = TemplateEditor()
    qtbot.addWidget(t)
    t.set_value("clip_benchmark:cifar10")
    assert t.preset.currentText() == "CLIP_benchmark: cifar10" and t.value() == "clip_benchmark:cifar10"
    assert t.text.toPlainText().splitlines() == [x.replace("{c}", "{}") for x in templates["cifar10"]]

    w = SynonymEditor()
    qtbot.addWidget(w)
    w.show()
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    w.set_data_classes(list(reversed(classes)))
    w._fill_benchmark_menu()
    action = next(a for a in w.benchmark_menu.actions() if a.text() == "cifar10")
    action.trigger()
    assert w.doc.classes == classes and w.doc.names("truck") == ["truck"]
    w.doc.undo_stack.undo()
    assert w.doc.classes != classes
    assert np.all([a.isEnabled() for a in w.benchmark_menu.actions()])
