"""Suggesting names in the synonym editor: options, the background job, the review list,
one undoable apply with sources kept, and a clear dialog when WordNet is missing.

WordNet is the tiny database the engine's own tests write (never this machine's).
"""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest
from PySide6.QtWidgets import QMessageBox

# the engine tests' tiny WordNet, and their fixture that hides every real WordNet/nltk folder
from tests.core.test_synonyms import _isolated_wordnet, write_tiny_wordnet  # noqa: F401

from core.labels.lexicon import lexicon_path as _BUNDLED_LEXICON  # noqa: E402 - before the fixture hides it
from tests.gui.conftest import shown

needs_nltk = pytest.mark.skipif(importlib.util.find_spec("nltk") is None, reason="nltk is not installed")


@pytest.fixture
def tiny_wordnet_env(tmp_path, monkeypatch):
    from core.synonyms import WORDNET_ENV

    root = write_tiny_wordnet(tmp_path / "wordnet")
    monkeypatch.setenv(WORDNET_ENV, str(root))
    return root


def _editor(qtbot, names):
    from core.labels.labelset import LabelSet
    from semscale_gui.synonym_editor import SynonymEditor

    w = shown(qtbot, SynonymEditor(), 1100, 600)
    w.doc.load_labelset(LabelSet(names=names, sources={c: ["class"] + ["user"] * (len(v) - 1) for c, v in names.items()}))
    return w


def _suggest(qtbot, w, dlg, per_class: int, **options):
    """Fill in the options dialog, press Suggest, and return the review dialog."""
    qtbot.waitUntil(lambda: dlg._wordnet_found is not None, timeout=20000)
    dlg.per_class.setValue(per_class)
    if options.get("related"):
        dlg.related.setChecked(True)
    w.review = None
    dlg.ok_button.click()
    qtbot.waitUntil(lambda: w.review is not None and w.review.isVisible(), timeout=60000)
    return w.review


@needs_nltk
def test_suggest_all_review_apply_as_one_undo_with_sources(qtbot, gui_env, tiny_wordnet_env, tmp_path):
    w = _editor(qtbot, {"dog": ["dog"], "cat": ["cat"], "car": ["car", "my ride"]})
    dlg = w.suggest_for_all()
    assert dlg.windowTitle() == "Suggest names for all 3 classes"
    qtbot.waitUntil(lambda: dlg._wordnet_found is not None, timeout=20000)
    assert "found: WordNet at" in dlg.wordnet_status.text()
    review = _suggest(qtbot, w, dlg, per_class=3)
    rows = [(it.cls, it.name, it.source) for it in review.outcome.items]
    assert rows == [("dog", "domestic dog", "wordnet"), ("dog", "Canis familiaris", "wordnet"),
                    ("cat", "true cat", "wordnet"), ("car", "automobile", "wordnet")]
    assert review.table.rowCount() == 4 and review.table.isColumnHidden(4)  # no similarity for WordNet
    assert [review.table.item(r, 2).text() for r in range(4)] == ["domestic dog", "Canis familiaris", "true cat",
                                                                 "automobile"]
    review.reject_all_btn.click()
    assert not review.add_button.isEnabled() and review.accepted_items() == []
    review.accept_all_btn.click()
    review.set_checked(1, False)  # reject 'Canis familiaris'
    assert review.add_button.text() == "Add 3 names"
    depth = w.doc.undo_stack.count()
    review.add_button.click()

    assert w.doc.names("dog") == ["dog", "domestic dog"]
    assert w.doc.names("car") == ["car", "my ride", "automobile"]  # after the user's own names
    assert w.doc.sources("car") == ["class", "user", "wordnet"]
    assert w.doc.undo_stack.count() == depth + 1
    out = w.export_to(tmp_path / "labels.csv")
    saved = pd.read_csv(out)
    assert list(saved.columns) == ["class", "synonym", "source"]
    assert saved[saved["synonym"] == "true cat"]["source"].item() == "wordnet"
    w.undo_action.trigger()  # one undo removes the whole batch
    assert w.doc.as_dict() == {"dog": ["dog"], "cat": ["cat"], "car": ["car", "my ride"]}


@needs_nltk
def test_one_class_leaves_out_other_classes_names_and_runs_one_job_at_a_time(qtbot, gui_env, tiny_wordnet_env):
    w = _editor(qtbot, {"dog": ["dog"], "cat": ["cat", "puppy"]})
    w.select_cell("dog", 0)
    dlg = w.suggest_for_selected()
    assert dlg.windowTitle() == "Suggest names for class 'dog'"
    qtbot.waitUntil(lambda: dlg._wordnet_found is not None, timeout=20000)
    dlg.per_class.setValue(8)
    dlg.related.setChecked(True)
    req = dlg.request()
    assert req.classes == ["dog"] and req.include_related
    dlg.reject()

    assert w.start_suggestions(req)
    assert not w.start_suggestions(req)  # a second job waits for the first (the WordNet reader is shared)
    assert not w.suggest_all_action.isEnabled() and not w.suggest_busy.isHidden()
    qtbot.waitUntil(lambda: w.review is not None, timeout=60000)
    review = w.review
    names = [it.name for it in review.outcome.items]
    assert names[:2] == ["domestic dog", "Canis familiaris"]
    assert "puppy" not in names  # already a name of 'cat'
    assert any("'puppy'" in d and "'cat'" in d for d in review.outcome.dropped)
    assert review.dropped.isVisibleTo(review)
    assert {it.source for it in review.outcome.items} <= {"wordnet", "wordnet-hypernym", "wordnet-hyponym"}
    assert w.suggest_all_action.isEnabled() and w.suggest_busy.isHidden()
    review.reject()
    assert w.doc.names("dog") == ["dog"]  # nothing added without Add


@needs_nltk
def test_bundled_lexicon_works_with_no_wordnet_on_the_machine(qtbot, gui_env, monkeypatch):
    # _isolated_wordnet hides this machine's WordNet; give back only the lexicon semscale ships
    from core.labels import lexicon

    monkeypatch.setattr(lexicon, "lexicon_path", _BUNDLED_LEXICON)
    w = _editor(qtbot, {"dog": ["dog"], "car": ["car"]})
    dlg = w.suggest_for_all()
    qtbot.waitUntil(lambda: dlg._wordnet_found is not None, timeout=20000)
    assert dlg._wordnet_found and "[bundled]" in dlg.wordnet_status.text()
    review = _suggest(qtbot, w, dlg, per_class=3)
    rows = [(it.cls, it.name, it.source) for it in review.outcome.items]
    # WordNet 3.0's first senses, lemmas by tagged count (car 71, automobile 15, auto 2)
    assert rows == [("dog", "domestic dog", "wordnet"), ("dog", "Canis familiaris", "wordnet"),
                    ("car", "automobile", "wordnet"), ("car", "auto", "wordnet")]
    review.reject()


def test_missing_wordnet_is_a_dialog_with_the_engines_help(qtbot, gui_env):
    # _isolated_wordnet hides every real database: the engine cannot find one
    w = _editor(qtbot, {"dog": ["dog"]})
    dlg = w.suggest_for_all()
    qtbot.waitUntil(lambda: dlg._wordnet_found is False, timeout=20000)
    assert "no WordNet database found" in dlg.wordnet_status.text()
    dlg.ok_button.click()  # running anyway explains how to get one
    qtbot.waitUntil(lambda: any(b.isVisible() for b in w.findChildren(QMessageBox)), timeout=30000)
    box = next(b for b in w.findChildren(QMessageBox) if b.isVisible())
    assert box.windowTitle() == "WordNet is not available"
    assert "apt-get install wordnet-base" in box.text() and "nltk.downloader wordnet" in box.text()
    box.close()
    assert w.review is None and w.suggest_all_action.isEnabled()


@needs_nltk
def test_neighbours_use_the_run_panels_backbone_and_a_word_list(qtbot, loaded_window, tmp_path):
    w = loaded_window
    ed = w.editor
    assert [t for t, _ in ed._backbones] == ["tiny"]  # what the Run panel has ticked
    vocab = tmp_path / "words.txt"
    vocab.write_text("# colours and shapes\ncrimson\nsquare\nemerald\nsphere\nazure\nwedge\n", encoding="utf-8")
    ed.select_cell("yellow bar", 0)
    dlg = ed.suggest_for_selected()
    dlg.neighbours_radio.setChecked(True)
    dlg.vocab_file_radio.setChecked(True)
    dlg.vocab_file.setText(str(vocab))
    assert dlg.ok_button.isEnabled() and not dlg.wordnet_box.isEnabled()  # a word list needs no WordNet
    review = _suggest(qtbot, ed, dlg, per_class=3)
    items = review.outcome.items
    assert len(items) == 2 and all(it.cls == "yellow bar" for it in items)
    assert all(it.source.startswith("neighbours:") and it.similarity is not None for it in items)
    assert not review.table.isColumnHidden(4)
    assert review.table.item(0, 4).text() == f"{items[0].similarity:.2f}"
    assert "tiny" in review.details.text()
    review.add_button.click()
    assert ed.doc.names("yellow bar")[1:] == [it.name for it in items]
    assert ed.doc.sources("yellow bar")[1:] == [it.source for it in items]
