"""Synonym editor: edits through the table model, duplicate warnings, reorder, undo/redo,
import/export and the level preview."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from tests.gui.conftest import shown


def _editor(qtbot, names=None):
    from core.labels.labelset import LabelSet
    from semscale_gui.synonym_editor import SynonymEditor

    w = shown(qtbot, SynonymEditor(), 1100, 600)
    w.doc.load_labelset(LabelSet(names=names or {"cat": ["cat", "kitty"], "dog": ["dog", "puppy", "hound"]}))
    return w


def _set(w, row: int, col: int, text: str) -> None:
    """What the table's inline editor does when the user types a name and presses Enter."""
    assert w.model.setData(w.model.index(row, col), text, Qt.ItemDataRole.EditRole)


def test_duplicate_name_is_flagged_inline_and_in_the_list(qtbot, gui_env):
    from semscale_gui.synonym_editor import DUP_BRUSH

    w = _editor(qtbot)
    assert w.issues.count() == 0
    _set(w, 1, 3, "Kitty")  # typed into dog's empty "+ add" cell; same name as cat's, other case
    assert w.doc.names("dog") == ["dog", "puppy", "hound", "Kitty"]
    messages = [w.issues.item(i).text() for i in range(w.issues.count())]
    assert any("'Kitty' of 'dog' also appears under 'cat'" in m for m in messages)
    assert w.model.data(w.model.index(1, 3), Qt.ItemDataRole.BackgroundRole) == DUP_BRUSH
    assert w.model.data(w.model.index(0, 1), Qt.ItemDataRole.BackgroundRole) == DUP_BRUSH
    assert "also appears under 'cat'" in w.model.data(w.model.index(1, 3), Qt.ItemDataRole.ToolTipRole)
    assert "duplicated" in w.issues_title.text()
    assert any("appears under" in m for m in w.doc.to_labelset().warnings)


def test_rename_reorder_remove_and_undo_redo(qtbot, gui_env):
    w = _editor(qtbot)
    _set(w, 1, 1, "pup")
    assert w.doc.names("dog") == ["dog", "pup", "hound"]
    w.select_cell("dog", 2)
    w.rank_up_action.trigger()
    assert w.doc.names("dog") == ["dog", "hound", "pup"]
    assert w.current_cell() == ("dog", 1)
    w.remove_name_action.trigger()
    assert w.doc.names("dog") == ["dog", "pup"]
    w.undo_action.trigger()
    assert w.doc.names("dog") == ["dog", "hound", "pup"]
    w.undo_action.trigger()
    w.undo_action.trigger()
    assert w.doc.names("dog") == ["dog", "puppy", "hound"]
    w.redo_action.trigger()
    assert w.doc.names("dog") == ["dog", "pup", "hound"]
    _set(w, 0, 1, "")  # clearing a cell removes the name
    assert w.doc.names("cat") == ["cat"]


def test_drag_a_name_to_another_rank(qtbot, gui_env):
    w = _editor(qtbot)
    m = w.model
    md = m.mimeData([m.index(1, 2)])
    assert m.canDropMimeData(md, Qt.DropAction.MoveAction, -1, -1, m.index(1, 0))
    assert not m.canDropMimeData(md, Qt.DropAction.MoveAction, -1, -1, m.index(0, 0))  # only within its row
    m.dropMimeData(md, Qt.DropAction.MoveAction, -1, -1, m.index(1, 0))
    assert w.doc.names("dog") == ["hound", "dog", "puppy"]


def test_class_without_names_and_missing_classes_are_warned(qtbot, gui_env):
    w = _editor(qtbot)
    w.set_data_classes(["cat", "dog", "bird"])
    _set(w, 0, 1, "")
    _set(w, 0, 0, "")
    assert w.doc.names("cat") == []
    text = "\n".join(w.issues.item(i).text() for i in range(w.issues.count()))
    assert "class 'cat' has no names" in text
    assert "class 'bird' is in the dataset but has no names" in text
    assert w.model.headerData(0, Qt.Orientation.Vertical, Qt.ItemDataRole.DecorationRole) is not None
    assert w.doc.to_labelset().names["cat"] == ["cat"]  # falls back to the class name
    assert not w.fix_missing.isHidden()
    w.fix_missing.linkActivated.emit("add")
    assert "bird" in w.doc.classes


def test_import_error_shows_a_dialog_and_keeps_edits(qtbot, gui_env, tmp_path):
    w = _editor(qtbot)
    _set(w, 0, 2, "tabby")
    bad = tmp_path / "bad.csv"
    bad.write_text("class,synonym\ncat,kitty\ndog,puppy,x,y\n", encoding="utf-8")
    assert not w.load_file(bad, undoable=True)
    boxes = [b for b in w.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "bad.csv:3" in boxes[0].text()
    boxes[0].close()
    assert w.doc.names("cat") == ["cat", "kitty", "tabby"]


def test_export_and_import_csv_and_json_round_trip(qtbot, gui_env, tmp_path):
    from core.labels.labelset import load_labels

    w = _editor(qtbot)
    _set(w, 0, 2, "feline, domestic")  # a comma must survive CSV quoting
    for suffix in ("csv", "json"):
        out = w.export_to(tmp_path / f"names.{suffix}")
        assert load_labels(out).names == w.doc.as_dict()
    w2 = _editor(qtbot, {"x": ["y"]})
    assert w2.load_file(tmp_path / "names.json", undoable=True)
    assert w2.doc.as_dict() == w.doc.as_dict()
    w2.undo_action.trigger()
    assert w2.doc.as_dict() == {"x": ["y"]}


def test_level_preview_counts_categories(qtbot, gui_env):
    w = _editor(qtbot)
    w.set_levels_text("1,2,3")
    rows = [[w.level_table.item(r, c).text() for c in range(4)] for r in range(w.level_table.rowCount())]
    assert rows == [["1", "2", "2", "0"], ["2", "4", "2", "0"], ["3", "5", "2", "1"]]
    w.level_table.selectRow(1)
    assert w.model.highlight_level == 2
    w.show()  # the category text is built lazily, once the preview is on screen
    qtbot.waitUntil(lambda: "cat: cat, kitty" in w.level_categories.toPlainText(), timeout=5000)
    w.set_levels_text("auto")
    assert w.levels == [1, 2, 3]
    w.set_levels_text("1,x")
    assert "showing auto" in w.levels_caption.text()


def test_templates_presets_and_custom_validation(qtbot, gui_env):
    from semscale_gui.template_editor import TemplateEditor

    t = TemplateEditor()
    qtbot.addWidget(t)
    t.set_value("plain")
    assert t.value() == "plain" and t.error() is None
    t.text.setPlainText("a photo of a {}.\na drawing of a {}.")
    assert t.preset.currentData() == "custom"
    assert t.value() == ["a photo of a {}.", "a drawing of a {}."]
    t.text.setPlainText("no placeholder here")
    assert "placeholder" in t.error()
    assert "placeholder" in t.status.text()
