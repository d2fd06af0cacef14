"""Results at scale: class search, sorts and top N in the heatmaps, the confusion list,
frequency labels, plain-percent axes, and comparing runs. The runs are real run
directories written by ``benchmarks.synthetic_run`` (predictions made up, everything else
computed from them); expectations are recomputed here from the CSV files with pandas."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.synthetic_run import write_synthetic_run
from tests.gui.conftest import shown


@pytest.fixture
def small_run(tmp_path):
    return write_synthetic_run(tmp_path / "run-a", n_classes=120, n_images=1200, levels=(1, 2, 4), kshot=False)


def _panel(qtbot, run_dir):
    from semscale_gui.results_panel import ResultsPanel

    p = shown(qtbot, ResultsPanel(), 1300, 850)
    with qtbot.waitSignal(p.run_opened, timeout=60000):
        p.open_run(run_dir)
    return p


def _label_order(run_dir) -> list[str]:
    return list(json.loads((run_dir / "run.json").read_text())["config"]["labels_resolved"])


def test_select_classes_sorts_like_pandas():
    from core.results.class_order import ClassSelection, select_classes

    rng = np.random.default_rng(3)
    n = 200
    classes = [f"c{i:03d} {'Owl' if i % 7 == 0 else 'frog'}" for i in range(n)]
    recall = np.round(rng.random(n), 1)  # many ties: the sort must keep label order among them
    recall[::13] = np.nan
    change = recall - np.round(rng.random(n), 1)
    freq = rng.lognormal(size=n)
    df = pd.DataFrame({"c": classes, "recall": recall, "change": change, "freq": freq})
    keys = {"recall_low": df.recall, "recall_high": -df.recall, "change": -df.change.abs(), "gain": -df.change,
            "loss": df.change, "frequent": -df.freq, "rare": df.freq}
    for sort, key in keys.items():
        expected = df.assign(k=key).sort_values("k", kind="stable", na_position="last")["c"].head(40).tolist()
        got = select_classes(classes, ClassSelection("", sort, 40), recall, change, freq)
        assert [classes[i] for i in got] == expected, sort
    owls = select_classes(classes, ClassSelection("OWL", "label", 0), recall, change, freq)
    assert [classes[i] for i in owls] == [c for c in classes if "owl" in c.lower()]
    assert len(select_classes(classes, ClassSelection("", "frequent", 0), recall, change, None)) == n  # no key: all
    assert list(select_classes(classes, ClassSelection("", "frequent", 5), recall, change, None)) == [0, 1, 2, 3, 4]


def test_recall_heatmap_sorts_filters_cuts_and_labels_what_fits(qtbot, gui_env, small_run):
    p = _panel(qtbot, small_run)
    p.tabs.setCurrentWidget(p.heatmap)
    h = p.heatmap
    qtbot.waitUntil(lambda: h.matrix.shape == (40, 3), timeout=20000)
    assert h.filter.sort.currentData() == "change" and h.filter.count.text() == "40 of 120 classes"
    pc = pd.read_csv(small_run / "per_class.csv")
    d = pc[pc["backbone"] == h.backbone.currentText()]
    pv = d.pivot_table(index="class", columns="level", values="recall").reindex(_label_order(small_run))
    order = pv.assign(k=-(pv[4] - pv[1]).abs()).sort_values("k", kind="stable").index[:40]
    assert h._classes == list(order)
    np.testing.assert_allclose(h.matrix, pv.loc[order, [1, 2, 4]].to_numpy())
    assert "points from 1 name" in h.describe_cell(0, 2) and order[0] in h.describe_cell(0, 2)

    h.filter.sort.setCurrentIndex(h.filter.sort.findData("recall_low"))
    qtbot.waitUntil(lambda: h._classes[0] == pv[4].sort_values(kind="stable").index[0], timeout=5000)
    h.filter.search.setText("owl")
    owls = [c for c in pv.index if "owl" in c.lower()]
    qtbot.waitUntil(lambda: len(h._classes) == min(40, len(owls)), timeout=5000)
    assert set(h._classes) <= set(owls)

    h.filter.search.clear()
    h.filter.show_all.setChecked(True)
    qtbot.waitUntil(lambda: h.matrix.shape == (120, 3), timeout=5000)
    qtbot.wait(50)
    shown = h.left_axis.visible_labels()
    assert 5 < len(shown) < 120  # 120 rows do not all fit: every n-th is named
    step = h.left_axis.label_step(0, 120, h.left_axis.geometry().height())
    assert shown[:3] == [h.left_axis.short(h._classes[i]) for i in (0, step, 2 * step)]
    h.plot.setYRange(0, 8, padding=0)  # zoomed in, every row has room for its name
    qtbot.wait(50)
    assert h.left_axis.visible_labels() == [h.left_axis.short(c) for c in h._classes[:8]]
    h.fit()
    assert h.plot.vb.viewRange()[1] == pytest.approx([0, 120])


def test_confusion_counts_top_n_other_column_and_list(qtbot, gui_env, small_run):
    p = _panel(qtbot, small_run)
    p.tabs.setCurrentWidget(p.confusion)
    c = p.confusion
    qtbot.waitUntil(lambda: c.counts.size > 0, timeout=20000)
    classes = _label_order(small_run)
    pred = pd.read_csv(small_run / "predictions.csv")
    level, backbone = int(c.level.currentText()), c.backbone.currentText()
    d = pred[(pred["level"] == level) & (pred["backbone"] == backbone)]
    ct = pd.crosstab(d["true_class"], d["predicted_class"]).reindex(index=classes, columns=classes, fill_value=0)
    np.testing.assert_array_equal(c.counts, ct.to_numpy())
    recall = pd.Series(np.diag(ct.to_numpy()) / ct.sum(axis=1).to_numpy(), index=classes)
    rows = list(recall.sort_values(kind="stable").index[:40])  # default: lowest recall first, top 40
    assert [c.classes[i] for i in c._rows] == rows
    assert c.shown_counts.shape == (40, 41) and c.col_labels[-1] == "(other classes)"
    np.testing.assert_array_equal(c.shown_counts[:, :40], ct.loc[rows, rows].to_numpy())
    np.testing.assert_array_equal(c.shown_counts[:, 40], ct.loc[rows].sum(axis=1) - ct.loc[rows, rows].sum(axis=1))
    assert "(other classes)" in c.describe_cell(0, 40)

    listed = c.confusion_rows()
    off = ct.to_numpy().copy()
    np.fill_diagonal(off, 0)
    assert [n for _, _, n in listed] == sorted(off[off > 0], reverse=True)[: len(listed)]
    assert all(ct.loc[a, b] == n for a, b, n in listed)
    c.filter.search.setText("owl")
    qtbot.waitUntil(lambda: all("owl" in a.lower() or "owl" in b.lower() for a, b, _ in c.confusion_rows()),
                    timeout=5000)
    assert c.splitter.widget(1).width() > 250  # the list has room to be read, and the splitter resizes it


def test_frequency_labels_only_hovered_clicked_or_searched(qtbot, gui_env, small_run):
    import pyqtgraph as pg

    from semscale_gui.plots.frequency import MAX_LABELS

    p = _panel(qtbot, small_run)
    p.tabs.setCurrentWidget(p.frequency)
    f = p.frequency
    qtbot.waitUntil(lambda: f.points == 120, timeout=10000)
    texts = [it for it in f.plot.items if isinstance(it, pg.TextItem)]
    assert len(texts) == 1 and not texts[0].isVisible()  # the hover label, hidden until a point is hovered
    assert f.labelled_classes() == []
    f.search.setText("o")
    matching = [n for n in f._names if "o" in n.lower()]
    assert len(matching) > MAX_LABELS and f.labelled_classes() == matching[:MAX_LABELS]
    f.search.clear()
    pt = f._scatter.points()[5]
    f._clicked(f._scatter, [pt], None)  # what a click on a point delivers
    assert f.labelled_classes() == [f._names[5]]
    f._hovered(f._scatter, [pt], None)
    assert f._hover_text.isVisible() and f._names[5] in f._hover_text.toPlainText()
    fr = pd.read_csv(small_run / "frequency.csv")
    row = fr[(fr["backbone"] == f.backbone.currentText()) & (fr["level"] == int(f.level.currentText()))].iloc[5]
    assert f"recall {row['recall'] * 100:.1f}%" in f.describe_point(5)


def test_accuracy_axis_plain_percent_and_power_of_two_ticks(qtbot, gui_env):
    from semscale_gui.plots import AccuracyPlot
    from core.results.views import ResultsData

    w = shown(qtbot, AccuracyPlot(), 800, 500)
    ticks = w.plot.getAxis("bottom")._tickLevels[0]
    assert [(round(x, 6), t) for x, t in ticks] == [(0.0, "1"), (1.0, "2"), (2.0, "4"), (3.0, "8")]
    res = ResultsData()
    for k, acc in ((1, 0.001), (2, 0.004), (4, 0.007)):  # 0.1 – 0.7 %: pyqtgraph would rescale to "x0.001"
        res.add_level({"backbone": "b", "ordering": 0, "level": k, "n_categories": 10 * k, "n_images": 1000,
                       "top1": acc, "top5": acc * 3, "ci_low": acc / 2, "ci_high": acc * 1.5})
    w.set_results(res)
    qtbot.wait(50)
    left = w.plot.getAxis("left")
    assert left.autoSIPrefixScale == 1.0 and "x0.0" not in left.labelString()
    lo, hi = w.plot.vb.viewRange()[1]
    assert lo < 0.1 and 0.7 < hi < 5  # percent, not fractions or thousandths


def test_compare_runs_overlays_curves_and_tabulates_differences(qtbot, gui_env, small_run, tmp_path):
    from PySide6.QtGui import QImage

    other = write_synthetic_run(tmp_path / "run-b", n_classes=120, n_images=1200, levels=(1, 2, 4, 8), mode="pooled",
                                seed=1, kshot=False, frequency=False)
    p = _panel(qtbot, small_run)
    p.tabs.setCurrentWidget(p.compare)
    cmp = p.compare
    p.compare_open_run()
    qtbot.waitUntil(lambda: not cmp.loading and len(cmp.runs) == 1, timeout=20000)
    cmp.add_runs([other, small_run])  # the open run again is not added twice
    qtbot.waitUntil(lambda: not cmp.loading and len(cmp.runs) == 2, timeout=20000)
    assert [r.title for r in cmp.runs] == ["run-a", "run-b"]
    assert cmp.curve_labels() == ["run-a · ViT-B-32", "run-a · RN50", "run-b · ViT-B-32", "run-b · RN50"]
    assert len(cmp.legend.items) == 4
    a, b = (pd.read_csv(d / "levels.csv") for d in (small_run, other))
    df = cmp.frame
    row = df[(df["run"] == "run-b") & (df["backbone"] == "RN50")].iloc[0]
    assert "mode: pooled" in row["differs from the reference in"]
    for k in (1, 2, 4):
        want = (b[(b.backbone == "RN50") & (b.level == k)].top1.iloc[0] - a[(a.backbone == "RN50") & (a.level == k)].top1.iloc[0]) * 100
        assert row[f"Δ top-1 at {k} (points)"] == pytest.approx(want, abs=0.006)
    assert np.isnan(row["Δ top-1 at 8 (points)"])  # the reference has no level 8
    rb = b[b.backbone == "RN50"].set_index("level").top1
    assert row["peak level"] == rb.idxmax() and row["peak top-1 (%)"] == pytest.approx(rb.max() * 100, abs=0.006)
    assert cmp.table.rowCount() == 4 and cmp.table.item(3, 0).text() == "run-b"
    out = p.export_plot(tmp_path / "compare.png")
    assert out is not None and QImage(str(out)).width() >= 2 * cmp.view.width() - 2
    cmp.list.item(0).setSelected(True)
    cmp.remove_selected()
    assert [r.title for r in cmp.runs] == ["run-b"] and cmp.table.rowCount() == 2
