"""The Names tab and the synonym editor's colours, on a real tiny sweep (two tiny open_clip
backbones, levels 1, 2, 4): real clicks on the table open the gallery on exactly the images
the engine's ``name_images`` lists; sorting and filters agree with pandas on names.csv; the
harmful list is the engine's; the editor's colours are the table's; removing harmful names
is one undoable, redoable step. At scale: a synthetic 1,000-class run's names stay quick."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QPoint, Qt

from tests.gui.conftest import shown



def _names(run_dir) -> pd.DataFrame:
    d = pd.read_csv(run_dir / "names.csv", keep_default_na=False, na_values=[""])
    return d[(d["names"].astype(str) == "synonyms") & (d["ordering"] == 0)]


def _labels(run_dir) -> dict[str, list[str]]:
    return json.loads((run_dir / "run.json").read_text())["config"]["labels_resolved"]


def _open(qtbot, run_dir, size=(1500, 950)):
    from semscale_gui.results_panel import ResultsPanel

    p = shown(qtbot, ResultsPanel(), *size)
    with qtbot.waitSignal(p.run_opened, timeout=60000):
        p.open_run(run_dir)
    p.tabs.setCurrentWidget(p.names)
    qtbot.waitUntil(lambda: p.names.model.rowCount() > 0 and not p.names.loading, timeout=60000)
    return p


@pytest.fixture
def panel(qtbot, gui_env, two_backbone_run):
    return _open(qtbot, two_backbone_run)


def _click(qtbot, table, row: int, col: int, double: bool = False) -> None:
    ix = table.model().index(row, col)
    table.scrollTo(ix)
    pos = table.visualRect(ix).center()
    if double:
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    else:
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def _click_header(qtbot, table, col: int) -> None:
    h = table.horizontalHeader()
    qtbot.mouseClick(h.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(h.sectionViewportPosition(col) + h.sectionSize(col) // 2, h.height() // 2))


def _shown_rows(view) -> pd.DataFrame:
    m = view.model
    return pd.DataFrame([m.record(r) for r in range(m.rowCount())])


def _gallery_after(qtbot, p, action) -> list[str]:
    with qtbot.waitSignal(p.gallery.filled, timeout=30000):
        action()
    return sorted(p.gallery.images())


def test_table_is_names_csv_in_label_order_and_filters_like_pandas(qtbot, panel, two_backbone_run):
    v = panel.names
    names = _names(two_backbone_run)
    labels = _labels(two_backbone_run)
    b, level = v.backbone.currentText(), int(v.level.currentText())
    assert b == names["backbone"].iloc[0] and level == names["level"].max()  # the longest lists first
    want = names[(names["backbone"] == b) & (names["level"] == level)]
    order = {c: i for i, c in enumerate(labels)}
    want = want.assign(o=want["class"].map(order)).sort_values(["o", "rank"], kind="stable")
    got = _shown_rows(v)
    assert list(zip(got["class"], got["name"])) == list(zip(want["class"], want["name"]))
    for col in ("images_won", "won_correct", "won_from_other_classes", "credit_change"):
        np.testing.assert_allclose(got[col].astype(float), want[col].astype(float))
    # each class's names come in rank order, as its labels list them
    for cls, g in got.groupby("class", sort=False):
        assert list(g["name"]) == labels[cls][:level]

    # filter by text, typed
    v.search.setFocus()
    qtbot.keyClicks(v.search, "circle")
    qtbot.waitUntil(lambda: v.model.rowCount() == int((want["class"].str.contains("circle")
                                                       | want["name"].str.contains("circle")).sum()), timeout=5000)
    assert all("circle" in c or "circle" in n for c, n in zip(_shown_rows(v)["class"], _shown_rows(v)["name"]))
    v.search.clear()
    # another backbone and level
    other = [x for x in pd.unique(names["backbone"]) if x != b][0]
    v.backbone.setCurrentText(other)
    v.level.setCurrentText("2")
    want2 = names[(names["backbone"] == other) & (names["level"] == 2)]
    got2 = _shown_rows(v)
    assert len(got2) == len(want2)
    merged = got2.merge(want2, on=["class", "name"], suffixes=("", "_csv"))
    assert len(merged) == len(want2)
    np.testing.assert_allclose(merged["images_won"].astype(float), merged["images_won_csv"].astype(float))
    np.testing.assert_allclose(merged["credit_change"].astype(float), merged["credit_change_csv"].astype(float))
    # entering names only: those of rank 2 (level 2 adds the second names)
    v.entering_only.setChecked(True)
    assert set(_shown_rows(v)["rank"]) == {2}


def test_header_clicks_sort_like_pandas(qtbot, panel, two_backbone_run):
    from semscale_gui.names_view import COL_NET, COL_TAKEN

    v = panel.names
    base = _shown_rows(v)
    for col, field in ((COL_TAKEN, "won_from_other_classes"), (COL_NET, "credit_change")):
        for _ in range(2):  # once each way
            _click_header(qtbot, v.table, col)
            asc = v.table.horizontalHeader().sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
            key = base[field].astype(float) * (1 if asc else -1)
            want = base.assign(k=key.fillna(np.inf)).sort_values("k", kind="stable")
            got = _shown_rows(v)
            assert list(zip(got["class"], got["name"])) == list(zip(want["class"], want["name"])), (field, asc)
    _click_header(qtbot, v.table, 0)  # by class name, A→Z
    got = _shown_rows(v)
    assert list(got["class"]) == sorted(got["class"], key=str.casefold)


def test_clicks_open_the_images_name_images_returns(qtbot, panel, two_backbone_run):
    import core
    from core.results.names import name_images
    from semscale_gui.names_view import COL_NAME, COL_TAKEN, COL_WON

    v, p = panel.names, panel
    run = core.load_run(two_backbone_run)
    pred = pd.read_csv(two_backbone_run / "predictions.csv", keep_default_na=False, na_values=[""])
    got = _shown_rows(v)
    b, level = v.shown.backbone, v.shown.level

    def engine_ids(cls, name):
        out = name_images(run, b, level, cls, name)
        return sorted(map(str, out["image"] if isinstance(out, pd.DataFrame) else out))

    # one click on "won": the images it won
    r = int(got["images_won"].astype(float).idxmax())
    cls, name = got.loc[r, "class"], got.loc[r, "name"]
    ids = _gallery_after(qtbot, p, lambda: _click(qtbot, v.table, r, COL_WON))
    assert ids == engine_ids(cls, name) and len(ids) > 0
    assert p.gallery.isVisible()
    # and they are, in predictions.csv, images whose winning name at that level is this one
    at = pred[(pred["backbone"] == b) & (pred["level"] == level) & pred["image"].isin(ids)]
    assert set(at["predicted_label"]) == {name}

    # one click on "taken": those of other classes only
    taken = got["won_from_other_classes"].astype(float)
    if (taken > 0).any():
        r2 = int(taken.idxmax())
        cls2, name2 = got.loc[r2, "class"], got.loc[r2, "name"]
        ids2 = _gallery_after(qtbot, p, lambda: _click(qtbot, v.table, r2, COL_TAKEN))
        truth = pred[(pred["backbone"] == b) & (pred["level"] == level)].set_index("image")["true_class"]
        assert ids2 == [i for i in engine_ids(cls2, name2) if truth[i] != cls2]
        assert len(ids2) == pytest.approx(taken[r2], abs=1.0)  # a tie shares an image: counts may be fractions
        assert set(p.gallery.model.rows["group"]) == {"taken"}

    # a double-click on another name: the images it won
    r3 = next(i for i in range(len(got)) if i != r and float(got.loc[i, "images_won"]) > 0)
    ids3 = _gallery_after(qtbot, p, lambda: _click(qtbot, v.table, r3, COL_NAME, double=True))
    assert ids3 == engine_ids(got.loc[r3, "class"], got.loc[r3, "name"])


def test_net_effect_click_opens_the_flips_when_the_name_enters(qtbot, panel, two_backbone_run):
    from semscale_gui.names_view import COL_NET

    v, p = panel.names, panel
    v.level.setCurrentText("2")
    pred = pd.read_csv(two_backbone_run / "predictions.csv", keep_default_na=False, na_values=[""])
    b = v.shown.backbone
    pred = pred[(pred["backbone"] == b) & (pred["names"] == "synonyms") & (pred["ordering"] == 0)]
    lo = pred[pred["level"] == 1].set_index("image")
    hi = pred[pred["level"] == 2].set_index("image")
    flipped = hi.index[(lo["credit"].reindex(hi.index) != hi["credit"])]
    got = _shown_rows(v)
    seconds = [i for i in range(len(got)) if int(got.loc[i, "rank"]) == 2]
    assert seconds
    counts = {i: int(((hi.loc[flipped, "predicted_label"] == got.loc[i, "name"])
                      & hi.loc[flipped, "predicted_classes"].astype(str).str.split("|").map(
                          lambda o, c=got.loc[i, "class"]: c in o)).sum()) for i in seconds}
    r = max(counts, key=counts.get)
    cls, name = got.loc[r, "class"], got.loc[r, "name"]
    want = sorted(i for i in flipped if hi.loc[i, "predicted_label"] == name
                  and cls in str(hi.loc[i, "predicted_classes"]).split("|"))
    ids = _gallery_after(qtbot, p, lambda: _click(qtbot, v.table, r, COL_NET))
    assert ids == want
    assert f"'{name}' ({cls}) enters" in p.gallery.title.text()
    # a canonical name enters at level 1: no flips to show
    first = next(i for i in range(len(got)) if int(got.loc[i, "rank"]) == 1)
    v.table.setCurrentIndex(v.model.index(first, 0))
    assert not v.flips_btn.isEnabled() and v.selection_for(first, "flips") is None


def test_harmful_list_is_the_engines_and_a_double_click_shows_what_it_takes(qtbot, panel, two_backbone_run):
    from core.results.names import harmful_names
    from semscale_gui.names_view import HARMFUL_TOP, harmful_text

    v, p = panel.names, panel
    names = _names(two_backbone_run)
    pred = pd.read_csv(two_backbone_run / "predictions.csv", keep_default_na=False, na_values=[""])
    counts = {}
    for b in pd.unique(names["backbone"]):
        v.backbone.setCurrentText(b)
        engine = harmful_names(names, top=HARMFUL_TOP, backbone=b, predictions=pred)
        texts = [v.harmful_list.item(i).text() for i in range(v.harmful_list.count())]
        assert texts == [harmful_text(r) for r in engine.to_dict("records")]
        # each one costs correct predictions or takes images of other classes, at the level named
        for r, t in zip(engine.to_dict("records"), texts):
            assert float(r["credit_change"]) < 0 or float(r["won_from_other_classes"]) > 0
            assert t.startswith(f"“{r['name']}” ({r['class']})") and f"level {int(r['level'])}" in t
        counts[b] = len(texts)
    v.backbone.setCurrentText(max(counts, key=counts.get))
    if not v.harmful_list.count():
        pytest.skip("this tiny run has no harmful names")
    item = v.harmful_list.item(0)
    cls, name, level = item.data(Qt.ItemDataRole.UserRole)
    rect = v.harmful_list.visualItemRect(item)
    qtbot.mouseClick(v.harmful_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert v.shown.level == level
    rec = v.model.record(v.table.currentIndex().row())
    assert (rec["class"], rec["name"]) == (cls, name)
    with qtbot.waitSignal(p.gallery.filled, timeout=30000):
        qtbot.mouseDClick(v.harmful_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert f"taken from other classes by '{name}' ({cls})" in p.gallery.title.text()


# ---------------------------------------------------------------- the synonym editor


@pytest.fixture
def window_with_run(qtbot, main_window, two_backbone_run):
    from core.labels.labelset import LabelSet

    w = main_window
    w.doc.load_labelset(LabelSet(names={c: list(v) for c, v in _labels(two_backbone_run).items()}))
    with qtbot.waitSignal(w.results.run_opened, timeout=60000):
        w.results.open_run(two_backbone_run)
    qtbot.waitUntil(lambda: w.editor.model.effects is not None and not w.results.names.loading, timeout=60000)
    return w


def test_editor_colours_match_the_table_and_the_measured_sign(qtbot, window_with_run, two_backbone_run):
    from semscale_gui.names_view import COL_NET

    w = window_with_run
    ed, v = w.editor, w.results.names
    names = _names(two_backbone_run)
    b = v.backbone.currentText()
    assert int(v.level.currentText()) == names["level"].max()  # the longest lists first, as the editor holds them
    assert b in ed.name_effects.legend.text() and two_backbone_run.name in ed.name_effects.legend.text()
    d = names[names["backbone"] == b].sort_values("level")
    # each name's effect: its credit change at the last level that measured it (flat: the last level)
    measured = d[d["credit_change"].notna()].groupby(["class", "name"]).tail(1).set_index(["class", "name"])
    seen = {"red": 0, "green": 0, "none": 0}
    for level, at in measured.groupby("level"):
        v.level.setCurrentText(str(level))
        for (cls, name), r in at.iterrows():
            if name not in w.doc.names(cls):
                continue
            ix = ed.model.index(w.doc.classes.index(cls), w.doc.names(cls).index(name))
            font = ed.model.data(ix, Qt.ItemDataRole.FontRole)
            # a measured shared name shows its measured colour (none for no effect), set in italics
            assert (font is not None and font.italic()) == (int(r["n_owners"]) > 1)
            brush = ed.model.data(ix, Qt.ItemDataRole.BackgroundRole)
            cell = v.model.data(v.model.index(v.model.view_row_of(cls, name), COL_NET), Qt.ItemDataRole.BackgroundRole)
            net = float(r["credit_change"])
            if net == 0:
                assert cell is None and (brush is None or brush.color().name() == "#e4eef8")  # the level tint only
                seen["none"] += 1
                continue
            assert brush.color().name() == cell.color().name(), (cls, name)
            c = brush.color()
            assert (c.red() > c.green()) if net < 0 else (c.green() > c.red()), (cls, name, net)
            seen["red" if net < 0 else "green"] += 1
            tip = ed.model.data(ix, Qt.ItemDataRole.ToolTipRole)
            assert f"net effect at level {level}: {'+' if net > 0 else '−'}" in tip
    assert seen["red"] + seen["green"] > 0, seen


def test_remove_harmful_names_shows_them_removes_in_one_step_undo_redo(qtbot, window_with_run, two_backbone_run):
    from core.results.names import harmful_names
    from core.util.names import name_key

    w = window_with_run
    ed = w.editor
    w.tabs.setCurrentWidget(ed)
    names = _names(two_backbone_run)
    b = w.results.names.backbone.currentText()
    engine = harmful_names(names, top=None, backbone=b)
    # removed: the engine's harmful names that cost correct predictions, past each class's first name
    expected = [(r["class"], r["name"]) for r in engine.to_dict("records") if r["credit_change"] < 0
                and r["name"] in w.doc.names(r["class"]) and w.doc.names(r["class"]).index(r["name"]) > 0]
    expected = list(dict.fromkeys(expected))
    if not expected:
        pytest.skip("this tiny run has no harmful names past a canonical one")
    before = w.doc.as_dict()
    btn = ed.name_effects.remove_button
    assert btn.isEnabled()
    qtbot.mouseClick(btn, Qt.MouseButton.LeftButton)
    dlg = ed.name_effects.dialog
    qtbot.waitUntil(lambda: dlg.isVisible(), timeout=5000)
    listed = [tuple(dlg.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(dlg.list.count())]
    assert listed == expected  # what will be removed is shown first
    depth = w.doc.undo_stack.count()
    qtbot.mouseClick(dlg.ok_button, Qt.MouseButton.LeftButton)
    after = {c: [n for n in v if (c, n) not in set(expected)] for c, v in before.items()}
    assert w.doc.as_dict() == after
    assert w.doc.undo_stack.count() == depth + 1  # one step
    ed.table.setFocus()
    qtbot.keyClick(ed.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert w.doc.as_dict() == before
    ed.redo_action.trigger()
    assert w.doc.as_dict() == after
    assert not any(name_key(n) in {name_key(x) for _, x in expected}
                   for c, ns in w.doc.as_dict().items() for n in ns if (c, n) in set(expected))


# ---------------------------------------------------------------- scale


def test_thousand_classes_stay_responsive(qtbot, gui_env, tmp_path):
    """1,000 classes × 16 names: the table is one model (no widget per row) and a sort, a filter and
    a level change each return quickly enough for the event loop to keep turning."""
    import time

    from benchmarks.synthetic_names import write_synthetic_names
    from benchmarks.synthetic_run import write_synthetic_run
    from semscale_gui.names_view import COL_TAKEN

    run = write_synthetic_run(tmp_path / "big", n_classes=1000, n_images=8000, levels=(1, 4, 16),
                              backbones=("ViT-B-32",), kshot=False, frequency=False)
    write_synthetic_names(run)
    p = _open(qtbot, run, size=(1400, 900))
    v = p.names
    assert v.model.rowCount() == 16000
    names = _names(run)
    want = names[names["level"] == 16]
    from PySide6.QtCore import QAbstractTableModel

    assert isinstance(v.model, QAbstractTableModel) and v.table.indexWidget(v.model.index(0, 2)) is None
    t0 = time.monotonic()
    _click_header(qtbot, v.table, COL_TAKEN)
    asc = v.table.horizontalHeader().sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
    top = want.sort_values("won_from_other_classes", ascending=asc, kind="stable")["won_from_other_classes"].iloc[0]
    assert float(v.model.record(0)["won_from_other_classes"]) == top
    v.level.setCurrentText("4")
    assert v.model.rowCount() == len(names[names["level"] == 4])
    qtbot.keyClicks(v.search, "owl")
    assert 0 < v.model.rowCount() < 4000
    elapsed = time.monotonic() - t0
    print(f"sort + level change + typed filter at 1,000 classes: {elapsed:.2f} s")


def test_a_sweep_from_the_window_fills_the_names_tab_and_colours_the_editor(qtbot, loaded_window):
    """While the sweep runs the tab says names come at the end; when it finishes, names.csv is read and
    the editor (holding the names just run) is coloured by it."""
    from pathlib import Path

    from semscale_gui.names_view import LIVE

    w = loaded_window
    v = w.results.names
    with qtbot.waitSignal(w.controller.finished, timeout=180000) as done:
        assert w.start_sweep()
        qtbot.waitUntil(lambda: v.stack.currentWidget() is v.empty and v.empty.text() == LIVE, timeout=10000)
    status, run_dir, _ = done.args
    assert status == "completed"
    qtbot.waitUntil(lambda: v.model.rowCount() > 0 and w.editor.model.effects is not None and not v.loading,
                    timeout=60000)
    names = _names(Path(run_dir))
    last = names[(names["backbone"] == v.backbone.currentText()) & (names["level"] == names["level"].max())]
    assert v.model.rowCount() == len(last)
    assert Path(run_dir).name in w.editor.name_effects.legend.text()
    measured = sum(w.editor.model.effects.measured(c, n) for c in w.doc.classes for n in w.doc.names(c))
    assert measured == sum(len(w.doc.names(c)) for c in w.doc.classes)  # the editor holds the names it ran


def test_pooled_run_shows_entering_names_and_their_class_flips(qtbot, gui_env, tiny_model, tmp_path):
    """Pooled mode: only the names entering at a level are measured (the others are blank); the
    flips of a name are its class's flips when it enters (no single name wins an image)."""
    from core.models.openclip import BackboneSpec
    from core.pipeline.runner import SweepConfig, run_sweep
    from semscale_gui.names_view import COL_NET
    from tests.conftest import CLASSES, write_image_folder

    cfg, ck = tiny_model
    images = write_image_folder(tmp_path / "images")
    labels = tmp_path / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in CLASSES.items() for n in ns))
    config = SweepConfig(dataset=str(images), out=str(tmp_path / "run"), labels=str(labels), templates="plain",
                         levels=[1, 2, 4], mode="pooled", backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu",
                                                                                   label="P")],
                         num_workers=0, bootstrap=20, ensemble_shots=[], cache_dir=str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    assert run_sweep(config).status == "completed"
    p = _open(qtbot, run_dir)
    v = p.names
    v.level.setCurrentText("2")
    got = _shown_rows(v)
    names = _names(run_dir)
    at2 = names[names["level"] == 2].set_index(["class", "name"])
    for r in got.to_dict("records"):
        want = at2.loc[(r["class"], r["name"]), "credit_change"]
        assert (np.isnan(r["credit_change"]) and np.isnan(want)) or r["credit_change"] == want
        assert np.isnan(r["credit_change"]) == (r["rank"] == 1)  # only the entering (second) names are measured
    r = next(i for i in range(len(got)) if int(got.loc[i, "rank"]) == 2)
    cls = got.loc[r, "class"]
    pred = pd.read_csv(run_dir / "predictions.csv", keep_default_na=False, na_values=[""])
    pred = pred[pred["names"] == "synonyms"]
    lo = pred[pred["level"] == 1].set_index("image")
    hi = pred[pred["level"] == 2].set_index("image")
    flipped = hi.index[lo["credit"].reindex(hi.index) != hi["credit"]]
    owners = hi["predicted_classes"].fillna(hi["predicted_class"]).astype(str).str.split("|")
    want = sorted(i for i in flipped if hi.loc[i, "true_class"] == cls or cls in owners[i])
    ids = _gallery_after(qtbot, p, lambda: _click(qtbot, v.table, r, COL_NET))
    assert ids == want
