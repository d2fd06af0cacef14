"""Drill-down: clicking a plot fills the gallery with exactly the images behind the number.

A real two-backbone run (tiny open_clip models, tests/conftest.py) is opened in the results
panel; each plot is clicked with the mouse where the cell, point, curve segment or bar is
drawn, and the gallery's images are checked against predictions.csv with pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from tests.gui.conftest import shown


@pytest.fixture
def panel(qtbot, gui_env, two_backbone_run):
    from semscale_gui.results_panel import ResultsPanel

    p = shown(qtbot, ResultsPanel(), 1500, 850)
    qtbot.waitExposed(p)
    with qtbot.waitSignal(p.predictions_loaded, timeout=30000):
        p.open_run(two_backbone_run)
    qtbot.waitUntil(lambda: p.gallery.source is not None, timeout=10000)
    return p


@pytest.fixture
def preds(two_backbone_run) -> pd.DataFrame:
    return pd.read_csv(two_backbone_run / "predictions.csv")


def click_at(qtbot, view, plot, x: float, y: float) -> None:
    """A real left click where the data point (x, y) of ``plot`` is drawn."""
    scene = plot.vb.mapViewToScene(QPointF(x, y))
    pos = view.mapFromScene(scene)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos.x(), pos.y()))


def click_and_fill(qtbot, panel, view, plot, x, y) -> None:
    with qtbot.waitSignal(panel.gallery.filled, timeout=15000):
        click_at(qtbot, view, plot, x, y)


def groups(panel) -> dict[str, str]:
    rows = panel.gallery.model.rows
    return dict(zip(rows["image"], rows["group"]))


def test_confusion_cell_shows_that_cells_images(qtbot, panel, preds):
    p = panel
    p.tabs.setCurrentWidget(p.confusion)
    qtbot.waitUntil(lambda: p.confusion.counts.size > 0, timeout=10000)
    p.confusion.backbone.setCurrentText("B")
    p.confusion.level.setCurrentText("2")
    d = preds[(preds.backbone == "B") & (preds.level == 2)]
    off = d[d.true_class != d.predicted_class]
    cells = (off if len(off) else d).groupby(["true_class", "predicted_class"]).size()  # a confusion if any
    (t, q), n = cells.idxmax(), cells.max()
    classes = p.confusion.classes
    i, j = classes.index(t), classes.index(q)
    qtbot.waitUntil(lambda: p.confusion.data is not None and p.confusion.data.level == 2
                    and p.confusion.counts[i, j] == n, timeout=10000)  # counted in the background
    shown = [int(r) for r in p.confusion._rows]  # the rows (and columns) in the order drawn
    row, col = shown.index(i), shown.index(j)
    click_and_fill(qtbot, p, p.confusion.view, p.confusion.plot, col + 0.5, row + 0.5)
    assert p.gallery.isVisible()
    expect = d[(d.true_class == t) & (d.predicted_class == q)]
    assert sorted(p.gallery.images()) == sorted(expect.image)
    assert f"true '{t}' predicted as '{q}'" in p.gallery.title.text()
    # each thumbnail names the true class, the winning category (its class) and the score
    m = p.gallery.model
    first = expect.set_index("image").loc[m.rows["image"].iloc[0]]
    text = m.data(m.index(0), Qt.ItemDataRole.DisplayRole)
    assert f"true: {t}" in text and f"pred: {first.predicted_label} ({q})" in text
    assert f"score {first.score:.3f}" in text
    # and its picture is decoded off the GUI thread
    qtbot.waitUntil(lambda: m.n_loaded() == len(expect), timeout=15000)


def test_recall_cell_shows_the_class_marked_correct_and_wrong(qtbot, panel, preds):
    p = panel
    p.tabs.setCurrentWidget(p.heatmap)
    qtbot.waitUntil(lambda: p.heatmap.matrix.size > 0, timeout=10000)
    p.heatmap.backbone.setCurrentText("A")
    row = p.heatmap._classes.index("green circle")
    col = p.heatmap._levels.index(4)
    click_and_fill(qtbot, p, p.heatmap.view, p.heatmap.plot, col + 0.5, row + 0.5)
    d = preds[(preds.backbone == "A") & (preds.level == 4) & (preds.true_class == "green circle")]
    assert groups(p) == {r.image: "correct" if r.correct == 1 else "wrong" for r in d.itertuples()}
    # the group filter keeps only the wrong ones
    wrong = sorted(d[d.correct == 0].image)
    if wrong:
        p.gallery.group.setCurrentIndex(p.gallery.group.findData("wrong"))
        assert sorted(p.gallery.images()) == wrong


def test_frequency_point_shows_that_classs_images(qtbot, panel, preds):
    p = panel
    p.tabs.setCurrentWidget(p.frequency)
    qtbot.waitUntil(lambda: p.frequency.points > 0, timeout=10000)
    p.frequency.backbone.setCurrentText("B")
    p.frequency.level.setCurrentText("1")
    freq = pd.DataFrame(p.results.tables["frequency"])
    r = freq[(freq.backbone == "B") & (freq.level == 1) & (freq["class"] == "blue triangle")].iloc[0]
    click_and_fill(qtbot, p, p.frequency.view, p.frequency.plot, float(r.log_frequency), float(r.recall) * 100)
    d = preds[(preds.backbone == "B") & (preds.level == 1) & (preds.true_class == "blue triangle")]
    assert sorted(p.gallery.images()) == sorted(d.image) and len(d) == 4
    assert "class 'blue triangle'" in p.gallery.title.text()


def test_accuracy_curve_between_two_levels_shows_the_flips(qtbot, panel, preds):
    p = panel
    p.tabs.setCurrentWidget(p.accuracy)
    qtbot.waitUntil(lambda: p.accuracy.plotted_levels("A") == [1, 2, 4], timeout=10000)
    xs, ys = p.accuracy._xy["A"]
    # halfway along A's segment from 1 to 2 names per class
    click_and_fill(qtbot, p, p.accuracy.view, p.accuracy.plot, (xs[0] + xs[1]) / 2, (ys[0] + ys[1]) / 2)
    a = preds[(preds.backbone == "A") & (preds.level == 1)].set_index("image")
    b = preds[(preds.backbone == "A") & (preds.level == 2)].set_index("image")
    changed = b.index[a.loc[b.index, "correct"].to_numpy() != b["correct"].to_numpy()]
    assert len(changed) > 0
    assert groups(p) == {im: "gained" if b.at[im, "correct"] > a.at[im, "correct"] else "lost" for im in changed}
    rows = p.gallery.model.rows.set_index("image")
    for im in changed:  # the winning category at both levels
        assert rows.at[im, "detail"].startswith(f"{a.at[im, 'predicted_label']} ({a.at[im, 'predicted_class']}) at 1")
        assert rows.at[im, "detail"].endswith(f"{b.at[im, 'predicted_label']} ({b.at[im, 'predicted_class']}) at 2")
    assert "flips from 1 to 2" in p.gallery.title.text()


def test_synergy_only_one_right_and_oracle_not_ensemble(qtbot, panel, preds, two_backbone_run):
    p = panel
    p.tabs.setCurrentWidget(p.ensembles)
    qtbot.waitUntil(lambda: p.ensembles.level.count() == 3, timeout=10000)
    p.ensembles.level.setCurrentText("1")
    with qtbot.waitSignal(p.gallery.filled, timeout=15000):
        qtbot.mouseClick(p.ensembles.only_one_btn, Qt.MouseButton.LeftButton)
    w = preds[preds.level == 1].pivot(index="image", columns="backbone", values="correct")
    only = w[(w.A + w.B) == 1]
    assert len(only) > 0
    assert groups(p) == {im: f"only {'A' if r.A == 1 else 'B'} right" for im, r in only.iterrows()}

    # a click on the oracle's bar: images some backbone gets right and the mean of logits does not
    bars = [t for t, _ in p.ensembles.bars]
    i = bars.index("oracle (any right)")
    click_and_fill(qtbot, p, p.ensembles.view, p.ensembles.plot, 10.0, float(i))
    ids = pd.read_csv(two_backbone_run / "logits" / "A" / "images.csv")
    classes = p.gallery.source.classes
    y = ids.true_class.map({c: k for k, c in enumerate(classes)}).to_numpy()
    meta = p.results.meta
    logits = sum(meta["summary"]["backbones"][b]["logit_scale"]
                 * np.load(two_backbone_run / "logits" / b / "level_1.npy").astype(np.float32) for b in "AB") / 2
    oracle = w.loc[ids.image, ["A", "B"]].max(axis=1).to_numpy() == 1
    expect = sorted(ids.image[oracle & (logits.argmax(1) != y)])
    assert len(expect) > 0
    assert sorted(p.gallery.images()) == expect
    assert set(p.gallery.model.rows["group"]) == {"oracle right, ensemble wrong"}


def test_thumbnail_click_preview_top5_export_and_copy(qtbot, panel, preds, two_backbone_run, tmp_path):
    from PySide6.QtGui import QGuiApplication

    p = panel
    p.show_images(__import__("core.results.drilldown", fromlist=["ClassAtLevel"]).ClassAtLevel("B", 4, "red square"))
    qtbot.waitUntil(lambda: len(p.gallery.images()) == 4, timeout=15000)
    g = p.gallery
    rect = g.grid.visualRect(g.model.index(1))
    with qtbot.waitSignal(g.preview_ready, timeout=15000):
        qtbot.mouseClick(g.grid.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    image = g.model.rows["image"].iloc[1]
    ids = pd.read_csv(two_backbone_run / "logits" / "B" / "images.csv").image.tolist()
    s = np.load(two_backbone_run / "logits" / "B" / "level_4.npy").astype(np.float32)[ids.index(image)]
    classes = g.source.classes
    assert [c for c, _ in g.top5] == [classes[k] for k in np.argsort(-s)[:4]]  # 4 classes in all
    assert g.top_list.count() == 4 and g.top_list.item(0).text().startswith(f"1. {classes[int(np.argmax(s))]}")
    assert image in g.preview.info.text() and "predicted: <b>" in g.prediction.text()

    # select two thumbnails (ctrl-click the first too) and export / copy them
    qtbot.mouseClick(g.grid.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     g.grid.visualRect(g.model.index(3)).center())
    out = g.export_csv(tmp_path / "sel.csv")
    got = pd.read_csv(out)
    assert list(got.columns[:6]) == ["image", "true_class", "predicted_class", "predicted_label", "level", "backbone"]
    chosen = sorted(g.model.rows["image"].iloc[[1, 3]])
    assert sorted(got.image) == chosen
    d = preds[(preds.backbone == "B") & (preds.level == 4)].set_index("image")
    for r in got.itertuples():
        assert (r.true_class, r.predicted_class, r.level, r.backbone) == (
            "red square", d.at[r.image, "predicted_class"], 4, "B")
    g.copy_paths()
    images_root = two_backbone_run.parent / "images"
    assert QGuiApplication.clipboard().text().splitlines() == [str(images_root / im) for im in
                                                              g.model.rows["image"].iloc[[1, 3]]]


def test_gallery_pages_lazily_and_decodes_only_what_is_painted(qtbot, gui_env, image_folder, monkeypatch):
    """20,000 rows: the view gets them a page at a time and only painted thumbnails are asked for."""
    from core.data import load_dataset
    from semscale_gui.gallery import PAGE, GalleryModel, GalleryPanel

    asked: set[int] = set()
    original = GalleryModel.data

    def recording(self, index, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DecorationRole and index.isValid():
            asked.add(index.row())
        return original(self, index, role)

    monkeypatch.setattr(GalleryModel, "data", recording)

    ds = load_dataset(image_folder)
    g = shown(qtbot, GalleryPanel(), 900, 600)
    qtbot.waitExposed(g)
    g.dataset, g.record_of = ds, {r.id: i for i, r in enumerate(ds.records)}
    g.model.set_dataset(ds)
    n = 20000
    rows = pd.DataFrame({"image": [ds.records[i % len(ds)].id for i in range(n)],
                         "true_class": "red square", "predicted_label": "crimson block",
                         "predicted_class": "red square", "score": 0.3, "correct": 1, "level": 2,
                         "backbone": "A", "group": "correct", "detail": ""})
    g._set_rows(rows)
    assert len(g.images()) == n
    assert g.model.rowCount() == PAGE < n and g.model.canFetchMore()
    qtbot.waitUntil(lambda: g.model.n_loaded() > 0, timeout=10000)
    assert 0 < len(asked) < 100 and max(asked) < PAGE  # only the rows on screen asked for a picture
    g.grid.scrollToBottom()
    qtbot.wait(50)
    g.grid.scrollToBottom()
    qtbot.waitUntil(lambda: g.model.rowCount() > PAGE, timeout=5000)
    assert g.model.rowCount() < n  # pages follow the scroll; the rest are still not handed to the view
