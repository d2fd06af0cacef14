"""The comparison view: two runs with different label files list, per class, the names added,
removed and re-ranked and the recall change (real runs, real clicks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.util.config import BackboneSpec


def _run(root, images, name: str, labels: dict, tiny_model):
    import core.api

    cfg, ck = tiny_model
    path = root / f"{name}.csv"
    path.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in labels.items() for n in ns))
    out = root / name
    run = core.api.sweep(str(images), str(path), [BackboneSpec(cfg, checkpoint=ck, device="cpu")], [1, 2, 3], "plain",
                         "flat", str(out), num_workers=0, bootstrap=20, cache_dir=str(root / "cache"))
    assert run.status == "completed"
    return out


def test_comparison_lists_names_and_recall_per_class(qtbot, gui_env, tiny_model, tmp_path):
    from PySide6.QtCore import Qt

    from core.results.compare import compare_names
    from semscale_gui.plots.compare import RunComparison
    from tests.conftest import CLASSES, write_image_folder

    images = write_image_folder(tmp_path / "images")
    edited = {**CLASSES, "red square": ["red square", "scarlet tile", "brick"], "green circle": ["green circle"]}
    a = _run(tmp_path, images, "run-a", CLASSES, tiny_model)
    b = _run(tmp_path, images, "run-b", edited, tiny_model)
    same = _run(tmp_path, images, "run-c", CLASSES, tiny_model)
    w = RunComparison()
    qtbot.addWidget(w)
    w.resize(1100, 800)
    w.show()
    w.add_runs([a, same])
    qtbot.waitUntil(lambda: not w.loading and len(w.runs) == 2, timeout=20000)
    assert not w.names_box.isVisible()  # same names: nothing to list
    w.add_runs([b])
    qtbot.waitUntil(lambda: not w.loading and len(w.runs) == 3, timeout=20000)
    qtbot.waitUntil(lambda: not w.names_loading and len(w.names_frame) > 0, timeout=20000)
    assert w.names_box.isVisible() and w.names_choice.count() == 1 and w.names_choice.currentText() == "run-b"
    t = w.names_table
    expect = compare_names(a, b).set_index("class")
    assert t.rowCount() == 2  # the classes whose names changed
    rows = {t.item(r, 0).text(): [t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())}
    assert rows["red square"][1:4] == ["brick", "crimson block", "scarlet tile 3→2"]
    assert rows["green circle"][1:4] == ["", "lime disc", ""]
    for cls, cells in rows.items():
        want = expect.loc[cls, "recall_change"] * 100
        assert float(cells[6]) == pytest.approx(round(want, 2))
    # a real click on the "Δ recall" header sorts the classes by it
    header = t.horizontalHeader()
    x = header.sectionViewportPosition(6) + header.sectionSize(6) // 2
    from PySide6.QtCore import QPoint
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))
    order = [float(t.item(r, 6).text()) for r in range(t.rowCount())]
    assert order in (sorted(order), sorted(order, reverse=True)) and header.sortIndicatorSection() == 6
    # the reference's per_class.csv gives the recall the table shows
    pc = pd.read_csv(a / "per_class.csv")
    before = pc[(pc["level"] == 3) & (pc["class"] == "red square")]["recall"].iloc[0]
    r = [i for i in range(t.rowCount()) if t.item(i, 0).text() == "red square"][0]
    assert float(t.item(r, 4).text()) == pytest.approx(round(before * 100, 2))
    assert np.isfinite(float(t.item(r, 5).text()))
