"""Results views fed directly with table rows: the k-shot curve (live and per level) and
PNG/SVG export of every plot."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.gui.conftest import shown


def _frequency_rows(backbones=("demo-vit", "demo-resnet"), levels=(1, 2, 4, 8)) -> tuple[list[dict], list[dict]]:
    rows, summary = [], []
    for b in backbones:
        for k in levels:
            for i, c in enumerate(["house", "ball", "tree", "star"]):
                rows.append({"backbone": b, "level": k, "class": c, "frequency": 10 ** (i + 1),
                             "log_frequency": float(i + 1), "recall": 0.2 + 0.2 * i})
            summary.append({"backbone": b, "level": k, "spearman_rho": 1.0, "p_value": 0.0})
    return rows, summary


def test_kshot_curve_mean_and_spread_per_method_with_reference_lines(qtbot, gui_env):
    from semscale_gui.kshot_plot import KShotPlot, sample_kshot_rows
    from core.results.views import ResultsData

    rows = sample_kshot_rows(levels=(1, 4), shots=(1, 2, 4), splits=3)
    fixed = [{"level": 4, "method": "mean_logits", "k": 0, "split": 0, "n_fit": 0, "n_eval": 300, "top1": 0.5}]
    res = ResultsData()
    res.add_table_rows("ensembles", fixed + rows)  # fixed ensembles (k = 0) are not part of the curve
    w = KShotPlot()
    qtbot.addWidget(w)
    w.set_results(res)
    assert [w.level.itemText(i) for i in range(w.level.count())] == ["1", "4"]
    assert w.level.currentText() == "4"
    assert set(w.curves) == {"global", "nlc", "best_single_oracle", "mean_logits"}

    df = pd.DataFrame(rows)
    d = df[(df["level"] == 4) & (df["method"] == "nlc")]
    k, mean, lo, hi = w.curves["nlc"]
    assert list(k) == [1, 2, 4]
    expect = d.groupby("k")["top1"].mean().to_numpy() * 100
    sd = d.groupby("k")["top1"].std().to_numpy() * 100
    np.testing.assert_allclose(mean, expect)
    np.testing.assert_allclose(hi - mean, sd)
    np.testing.assert_allclose(mean - lo, sd)
    w.spread.setCurrentIndex(1)  # min – max over splits
    _, _, lo, hi = w.curves["nlc"]
    np.testing.assert_allclose(lo, d.groupby("k")["top1"].min().to_numpy() * 100)
    np.testing.assert_allclose(hi, d.groupby("k")["top1"].max().to_numpy() * 100)
    ticks = w.plot.getAxis("bottom")._tickLevels[0]
    assert [(round(x, 6), t) for x, t in ticks] == [(0.0, "1"), (1.0, "2"), (2.0, "4")]  # log2 axis
    assert "3 splits per k" in w.summary.text() and "best single backbone" in w.summary.text()

    w.level.setCurrentText("1")
    k1 = df[(df["level"] == 1) & (df["method"] == "global")].groupby("k")["top1"].mean().to_numpy() * 100
    np.testing.assert_allclose(w.curves["global"][1], k1)


def test_kshot_tab_updates_live_from_table_events(qtbot, gui_env):
    from semscale_gui.kshot_plot import sample_kshot_rows
    from semscale_gui.results_panel import ResultsPanel

    p = ResultsPanel()
    qtbot.addWidget(p)
    p.show()
    assert p.tabs.tabText(p.tabs.indexOf(p.kshot)) == "k-shot"
    assert p.tabs.indexOf(p.kshot) == p.tabs.indexOf(p.ensembles) + 1
    p.tabs.setCurrentWidget(p.kshot)
    assert p.kshot.curves == {}
    rows = sample_kshot_rows(levels=(2,), shots=(1, 2), splits=2)
    with qtbot.waitSignal(p.refreshed, timeout=5000):  # TableRows("ensembles", …) as the worker delivers it
        p.add_table_rows("ensembles", [r for r in rows if r["k"] == 1])
    assert list(p.kshot.curves["global"][0]) == [1]
    with qtbot.waitSignal(p.refreshed, timeout=5000):
        p.add_table_rows("ensembles", [r for r in rows if r["k"] == 2])
    assert list(p.kshot.curves["global"][0]) == [1, 2]


def test_every_plot_exports_png_and_svg(qtbot, gui_env, tmp_path):
    from PySide6.QtGui import QImage

    from semscale_gui.kshot_plot import sample_kshot_rows
    from semscale_gui.plots import sample_results
    from semscale_gui.results_panel import ResultsPanel

    res = sample_results()
    freq, summary = _frequency_rows()
    res.add_table_rows("frequency", freq)
    res.add_table_rows("frequency_summary", summary)
    res.add_table_rows("ensembles", sample_kshot_rows(splits=2))
    res.add_table_rows("backbones", [{"level": k, "backbone": b, "top1": 0.5} for k in (1, 2, 4, 8)
                                     for b in ("demo-vit", "demo-resnet")])
    p = shown(qtbot, ResultsPanel(), 1000, 650)
    p.results = res
    p.refresh()
    for tab in ("kshot", "frequency", "comparison", "ensembles", "accuracy"):
        view = getattr(p, tab)
        p.tabs.setCurrentWidget(view)
        if tab == "frequency":
            assert view.points == 4
        if tab == "comparison":
            assert view.table.rowCount() == 2
        for suffix in ("png", "svg"):
            out = p.export_plot(tmp_path / f"{tab}.{suffix}")
            assert out is not None and out.stat().st_size > 1000, (tab, suffix)
        img = QImage(str(tmp_path / f"{tab}.png"))
        assert img.width() >= 2 * view.view.width() - 2, tab  # 2x the on-screen size
        assert (tmp_path / f"{tab}.svg").read_text().lstrip().startswith("<?xml"), tab
