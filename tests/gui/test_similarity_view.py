"""The Backbones tab's similarity matrix: a real two-backbone run opened in the results panel,
the measure and class picked with real clicks, every cell checked against similarity.csv."""

from __future__ import annotations

import pandas as pd
import pytest
from PySide6.QtCore import Qt

from tests.gui.conftest import shown


def pick(qtbot, combo, text: str) -> None:
    """Choose ``text`` in a combo box with the keyboard, as a user would after clicking it."""
    qtbot.mouseClick(combo, Qt.MouseButton.LeftButton)
    target = combo.findText(text)
    assert target >= 0, text
    steps = target - combo.currentIndex()
    key = Qt.Key.Key_Down if steps > 0 else Qt.Key.Key_Up
    view = combo.view()
    on = view if view.isVisible() else combo  # the open list, or the closed box (arrows step it)
    for _ in range(abs(steps)):
        qtbot.keyClick(on, key)
    if on is view:
        qtbot.keyClick(view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: combo.currentText() == text, timeout=3000)


def cell(m, a: str, b: str) -> str:
    names = m.backbones()
    return m.table.item(names.index(a), names.index(b)).text()


@pytest.fixture
def panel(qtbot, gui_env, two_backbone_run):
    from semscale_gui.results_panel import ResultsPanel

    p = shown(qtbot, ResultsPanel(), 1300, 850)
    qtbot.waitExposed(p)
    with qtbot.waitSignal(p.predictions_loaded, timeout=30000):
        p.open_run(two_backbone_run)
    return p


def test_similarity_matrix_in_the_backbones_tab(qtbot, panel, two_backbone_run):
    sim = pd.read_csv(two_backbone_run / "similarity.csv", keep_default_na=False, na_values=[""])
    tab_bar = panel.tabs.tabBar()
    idx = [panel.tabs.tabText(i) for i in range(panel.tabs.count())].index("Backbones")
    qtbot.mouseClick(tab_bar, Qt.MouseButton.LeftButton, pos=tab_bar.tabRect(idx).center())
    assert panel.tabs.currentWidget() is panel.comparison
    m = panel.comparison.similarity
    qtbot.waitUntil(m.isVisible, timeout=5000)
    assert m.backbones() == ["A", "B"]
    overall = sim[sim.scope == "overall"].iloc[0]
    assert cell(m, "A", "B") == cell(m, "B", "A") == f"{overall.cka:.3f}"
    assert cell(m, "A", "A") == "1.000"
    assert "linear CKA" in m.table.item(0, 1).toolTip()
    # the k-NN agreement, then one class's CKA
    pick(qtbot, m.measure, "k-NN agreement")
    assert cell(m, "A", "B") == f"{overall.knn_agreement:.3f}"
    assert "nearest neighbours" in m.note.text()
    pick(qtbot, m.measure, "linear CKA")
    pick(qtbot, m.scope, "green circle")
    row = sim[(sim.scope == "class") & (sim["class"] == "green circle")].iloc[0]
    assert cell(m, "A", "B") == f"{row.cka:.3f}"
    assert "class green circle" in m.note.text() and "4 images" in m.note.text()
    # darker cells for larger values: the diagonal (1) is the darkest
    diag = m.table.item(0, 0).background().color().lightness()
    off = m.table.item(0, 1).background().color().lightness()
    assert diag < off


def test_similarity_matrix_hidden_without_the_file(qtbot, gui_env):
    from core.results.views import ResultsData
    from semscale_gui.plots.comparison import BackboneComparison

    v = shown(qtbot, BackboneComparison(), 800, 500)
    v.set_results(ResultsData())
    assert not v.similarity.isVisible()


def test_similarity_preview_opens(qtbot, gui_env):
    from semscale_gui.plots.similarity import preview

    w = shown(qtbot, preview(), 560, 300)
    qtbot.waitExposed(w)
    names = w.backbones()
    assert names == ["ViT-B-32", "ViT-B-16", "RN50"]
    # the two related made-up backbones are more alike than either with the unrelated one
    alike = float(cell(w, "ViT-B-32", "ViT-B-16"))
    assert alike > float(cell(w, "ViT-B-32", "RN50")) and alike > float(cell(w, "ViT-B-16", "RN50"))

