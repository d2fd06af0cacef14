"""The synonym editor's live what-if: real edits in the editor, numbers equal the engine's."""

from __future__ import annotations

import pytest

from tests.conftest import CLASSES, write_image_folder
from tests.gui.conftest import shown


@pytest.fixture
def run_and_labels(tiny_model, tmp_path):
    from core.models.openclip import BackboneSpec
    from core.pipeline.runner import SweepConfig, run_sweep

    cfg, ck = tiny_model
    images = write_image_folder(tmp_path / "images")
    labels = tmp_path / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in CLASSES.items() for n in ns))
    config = SweepConfig(dataset=str(images), out=str(tmp_path / "runs" / "first"), labels=str(labels),
                         templates=["a photo of a {}."], levels=[1, 2, 4],
                         backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu")], num_workers=0, bootstrap=20,
                         ensemble_shots=[], cache_dir=str(tmp_path / "cache"))
    assert run_sweep(config).status == "completed"
    return tmp_path / "runs" / "first", labels


def _table(t):
    return [[t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())]


def test_edits_rescore_live_and_equal_the_engine(qtbot, gui_env, run_and_labels):
    from core.pipeline.whatif import open_run
    from semscale_gui.synonym_editor import SynonymEditor

    run, labels = run_and_labels
    w = shown(qtbot, SynonymEditor(), 1300, 800)
    panel = w.whatif
    try:
        w.load_file(labels)
        assert panel.find_runs() == [run.resolve()]
        qtbot.waitUntil(lambda: panel.result is not None, timeout=60_000)
        assert "Comparing with first" in panel.message.text()
        # a real edit: select blue triangle's second name and press the Remove button
        w.select_cell("blue triangle", 1)
        button = w.toolbar.widgetForAction(w.remove_name_action)
        qtbot.mouseClick(button, __import__("PySide6.QtCore", fromlist=["Qt"]).Qt.MouseButton.LeftButton)
        assert w.doc.names("blue triangle") == ["blue triangle", "azure pyramid", "cobalt spike"]
        qtbot.waitUntil(lambda: panel.result is not None and panel.result.edited == ["blue triangle"], timeout=60_000)
        engine = open_run(run, cache_dir=None).set_names(w.doc.to_labelset().names)
        shown_levels = _table(panel.levels)
        assert shown_levels == [[str(r.level), f"{r.top1_before:.2%}", f"{r.top1_after:.2%}", f"{r.change:+.2%}"]
                                for r in engine.levels.itertuples()]
        assert list(panel.result.levels["top1_after"]) == list(engine.levels["top1_after"])
        rows = _table(panel.per_class)
        assert rows[0][0] == "blue triangle"  # the edited class comes first
        want = engine.per_class[engine.per_class["class"] == "blue triangle"]
        assert [r[3] for r in rows[:len(want)]] == [f"{v:.2%}" for v in want["recall_after"]]
        # a second edit: a new name typed into green circle's "+ add" cell
        from PySide6.QtCore import Qt

        assert w.model.setData(w.model.index(w.model.row_of("green circle"), 2), "emerald ring", Qt.ItemDataRole.EditRole)
        qtbot.waitUntil(lambda: panel.result is not None and "green circle" in panel.result.edited, timeout=60_000)
        engine = open_run(run).set_names(w.doc.to_labelset().names)
        assert list(panel.result.levels["top1_after"]) == list(engine.levels["top1_after"])
        assert panel.result.per_class["recall_after"].tolist() == engine.per_class["recall_after"].tolist()
        # edits in quick succession: the newest wins, and the event loop stays free meanwhile
        w.select_cell("red square", 2)
        w.rank_up_action.trigger()
        w.rank_up_action.trigger()
        w.model.setData(w.model.index(w.model.row_of("yellow bar"), 1), "lemon stripe", Qt.ItemDataRole.EditRole)
        final = w.doc.to_labelset().names
        assert final["red square"][0] == "scarlet tile" and final["yellow bar"] == ["yellow bar", "lemon stripe"]
        qtbot.waitUntil(lambda: panel.result is not None and set(panel.result.edited) == {
            "blue triangle", "green circle", "red square", "yellow bar"}, timeout=60_000)
        engine = open_run(run).set_names(final)
        assert list(panel.result.levels["top1_after"]) == list(engine.levels["top1_after"])
        assert _table(panel.levels) == [[str(r.level), f"{r.top1_before:.2%}", f"{r.top1_after:.2%}",
                                         f"{r.change:+.2%}"] for r in engine.levels.itertuples()]
    finally:
        panel.close_engine()


def test_no_run_says_run_a_sweep_first(qtbot, gui_env, tmp_path):
    from core.labels.labelset import LabelSet
    from semscale_gui.synonym_editor import SynonymEditor

    w = shown(qtbot, SynonymEditor(), 1100, 700)
    try:
        w.doc.load_labelset(LabelSet(names={"cat": ["cat"], "dog": ["dog"]}))
        assert w.whatif.find_runs() == []
        assert "run a sweep first" in w.whatif.message.text()
        (tmp_path / "broken").mkdir()
        w.whatif.set_run(tmp_path / "broken")
        assert "run a sweep first" in w.whatif.message.text()
    finally:
        w.whatif.close_engine()


def test_pick_the_backbone_of_a_two_backbone_run(qtbot, gui_env, two_backbone_run):
    import pandas as pd
    from PySide6.QtCore import Qt

    from core.labels.labelset import LabelSet
    from semscale_gui.synonym_editor import SynonymEditor

    w = shown(qtbot, SynonymEditor(), 1300, 800)
    panel = w.whatif
    try:
        w.doc.load_labelset(LabelSet(names={c: list(v) for c, v in CLASSES.items()}))
        panel.search_roots = [two_backbone_run.parent]
        assert panel.find_runs() == [two_backbone_run.resolve()]
        assert [panel.backbones.itemText(i) for i in range(panel.backbones.count())] == ["A", "B"]
        qtbot.waitUntil(lambda: panel.result is not None, timeout=60_000)
        panel.backbones.setCurrentIndex(1)  # what choosing "B" in the list does
        panel.backbones.activated.emit(1)
        qtbot.waitUntil(lambda: panel.result is not None and "Comparing with run (B)" in panel.message.text(),
                        timeout=60_000)
        levels = pd.read_csv(two_backbone_run / "levels.csv")
        want = levels[(levels["backbone"] == "B") & (levels["names"] == "synonyms") & (levels["ordering"] == 0)]
        assert list(panel.result.levels["top1_before"]) == list(want["top1"])  # unedited: the run's own numbers
        assert list(panel.result.levels["top1_after"]) == list(want["top1"])
        assert panel.per_class.rowCount() == 0  # nothing edited, nothing changed
        w.model.setData(w.model.index(w.model.row_of("yellow bar"), 1), "lemon stripe", Qt.ItemDataRole.EditRole)
        qtbot.waitUntil(lambda: panel.result is not None and panel.result.edited == ["yellow bar"], timeout=60_000)
        assert panel.engine.scorer.source.backbone == "B"
    finally:
        panel.close_engine()
