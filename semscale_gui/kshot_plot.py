"""How much labelled data an adaptive ensemble needs: top-1 against shots per class.

Reads the engine's ``ensembles`` table (rows with ``k > 0``: one per level, method, k and
split). Each adaptive method (``global`` weights, the input-aware logit controller
``nlc``) is drawn as its mean over the seeded splits with the spread over splits as error
bars; the best single backbone and the plain mean of logits, scored on the very same
held-out images, are dashed reference lines, so a point above them is a real gain and
not a different evaluation set.

With linear probes (``--probe-shots``, the ``probes`` table) the plot adds, for one backbone,
the probe's top-1 (mean over splits, its 95% interval as error bars) and that backbone's
zero-shot top-1 on the very same held-out images (dotted): the gap between the two is what
the image features know about the classes that the names do not reach. ``all`` shots (half
of each class) sits one step right of the largest k.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from semscale_gui.plots import _controls, _labelled, _style_plot, colour, refill_combo, tick_font
from core.results.views import ResultsData, kshot_table  # noqa: F401  (kshot_table re-exported)

ADAPTIVE = (("global", "global weights"), ("nlc", "logit controller (NLC)"))
DODGE = 0.035  # log2 units: the methods' error bars side by side instead of on top of each other
REFERENCES = (("best_single_oracle", "best single backbone", "#555555"),
              ("mean_logits", "mean of logits", "#009E73"))
PROBE_COLOUR = "#CC79A7"  # not one of the adaptive methods' colours
ZEROSHOT_COLOUR = "#7A7A7A"


def probe_table(results: ResultsData, backbone: str) -> pd.DataFrame:
    """The probes table's summary rows of one backbone: shots (text), mean, ci_low, ci_high, zero-shot, splits."""
    cols = ["shots", "mean", "ci_low", "ci_high", "zeroshot", "n"]
    df = results.table("probes")
    if df.empty or not {"backbone", "shots", "split", "top1"} <= set(df.columns):
        return pd.DataFrame(columns=cols)
    d = df[(df["backbone"].astype(str) == backbone) & (df["split"].astype(str) == "mean")]
    out = pd.DataFrame({"shots": d["shots"].astype(str).to_numpy(), "mean": d["top1"].astype(float).to_numpy(),
                        "ci_low": pd.to_numeric(d["ci_low"], errors="coerce").to_numpy(),
                        "ci_high": pd.to_numeric(d["ci_high"], errors="coerce").to_numpy(),
                        "zeroshot": d["zeroshot_top1"].astype(float).to_numpy(),
                        "n": pd.to_numeric(d["n_splits"], errors="coerce").to_numpy()})
    order = out["shots"].map(lambda k: float("inf") if k == "all" else float(k))
    return out.assign(_o=order).sort_values("_o").drop(columns="_o").reset_index(drop=True)


def probe_backbones(results: ResultsData) -> list[str]:
    df = results.table("probes")
    if df.empty or "backbone" not in df.columns:
        return []
    return list(dict.fromkeys(df["backbone"].astype(str)))


class KShotPlot(QWidget):
    """Top-1 (%) vs shots per class (log₂ axis) at one level, for each adaptive method."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.level = QComboBox()
        self.probe_backbone = QComboBox()
        self.probe_backbone.setToolTip("The backbone whose linear probe and zero-shot top-1 are drawn")
        self.spread = QComboBox()
        self.spread.addItem("± 1 SD over splits", "sd")
        self.spread.addItem("min – max over splits", "range")
        for cb in (self.level, self.spread, self.probe_backbone):
            cb.currentIndexChanged.connect(self._redraw)
        self.view = pg.PlotWidget()
        self.plot: pg.PlotItem = self.view.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        # top left: accuracy grows with k, so that corner is the one the curves leave empty
        self.legend = self.plot.addLegend(offset=(10, 10), labelTextSize="10pt")
        self.legend.setBrush(pg.mkBrush(255, 255, 255, 220))
        self.legend.setPen(pg.mkPen("#cccccc"))
        self.summary = QLabel(" ")
        self.summary.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(_controls(_labelled("names per class:", self.level), _labelled("probe of:", self.probe_backbone),
                                _labelled("error bars:", self.spread)))
        lay.addWidget(self.summary)
        lay.addWidget(self.view, 1)
        self.results = ResultsData()
        # what is drawn, per method: (k, mean, low, high) — the numbers behind the picture
        self.curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._redraw()

    def set_results(self, results: ResultsData) -> None:
        self.results = results
        df = results.table("ensembles")
        levels: list[str] = []
        if not df.empty and {"k", "level"} <= set(df.columns):
            levels = [str(v) for v in sorted({int(x) for x in df.loc[df["k"].astype(int) > 0, "level"]})]
        refill_combo(self.level, levels, prefer_last=True)
        refill_combo(self.probe_backbone, probe_backbones(results))
        self.probe_backbone.setEnabled(self.probe_backbone.count() > 0)
        self._redraw()

    def _redraw(self) -> None:
        plot = self.plot
        plot.clear()
        self.legend.clear()
        self.curves = {}
        _style_plot(plot, "top-1 accuracy on held-out images (%)", "labelled images per class, k (log₂ scale)")
        probes = probe_table(self.results, self.probe_backbone.currentText()) if self.probe_backbone.count() else None
        if not self.level.currentText() and (probes is None or probes.empty):
            plot.getAxis("bottom").setTicks(None)
            msg = pg.TextItem("Tick two or more backbones and “k-shot ensembles”, or “linear probes”, in the Run panel:\n"
                              "accuracy against the number of labelled images per class appears here",
                              color="#777777", anchor=(0.5, 0.5))
            msg.setFont(tick_font())
            plot.addItem(msg)
            msg.setPos(1.0, 50)
            plot.setXRange(0, 2, padding=0)
            plot.setYRange(0, 100, padding=0)
            self.summary.setText(" ")
            return
        level = int(self.level.currentText()) if self.level.currentText() else None
        t = kshot_table(self.results, level) if level is not None else kshot_table(ResultsData(), 0)
        numeric = [] if probes is None else [int(k) for k in probes["shots"] if k != "all"]
        ks = sorted({int(k) for k in t["k"]} | set(numeric))
        use_range = self.spread.currentData() == "range"
        for i, (method, title) in enumerate(ADAPTIVE):
            m = t[t["method"] == method].sort_values("k")
            if m.empty:
                continue
            k = m["k"].to_numpy(dtype=float)
            mean = m["mean"].to_numpy(dtype=float) * 100
            if use_range:
                lo, hi = m["min"].to_numpy(dtype=float) * 100, m["max"].to_numpy(dtype=float) * 100
            else:
                sd = m["sd"].to_numpy(dtype=float) * 100
                lo, hi = mean - sd, mean + sd
            x = np.log2(k) + (i - (len(ADAPTIVE) - 1) / 2) * 2 * DODGE
            col = colour(i)
            plot.addItem(pg.ErrorBarItem(x=x, y=mean, top=hi - mean, bottom=mean - lo, beam=0.08,
                                         pen=pg.mkPen(col, width=1.5)))
            plot.plot(x, mean, pen=pg.mkPen(col, width=2.5), symbol="o", symbolSize=9, symbolBrush=col,
                      symbolPen="w", name=title)
            self.curves[method] = (k, mean, lo, hi)
        for method, title, col in REFERENCES:
            m = t[t["method"] == method].sort_values("k")
            if m.empty:
                continue
            k = m["k"].to_numpy(dtype=float)
            mean = m["mean"].to_numpy(dtype=float) * 100
            plot.plot(np.log2(k), mean, pen=pg.mkPen(col, width=1.8, style=Qt.PenStyle.DashLine),
                      symbol="s", symbolSize=5, symbolBrush=col, symbolPen=None, name=f"{title} (same splits)")
            self.curves[method] = (k, mean, mean, mean)
        ticks = [(math.log2(k), str(k)) for k in ks]
        if probes is not None and not probes.empty:
            x_all = math.log2(max(ks)) + 1 if ks else 0.0
            ticks += [(x_all, "all")] if (probes["shots"] == "all").any() else []
            self._draw_probe(probes, x_all)
        # six entries with a probe: two columns keep the legend above the curves
        self.legend.setColumnCount(2 if "probe" in self.curves and len(self.curves) > 2 else 1)
        plot.getAxis("bottom").setTicks([ticks, []] if ticks else None)
        if ticks:
            lo_x, hi_x = min(x for x, _ in ticks), max(x for x, _ in ticks)
            plot.setXRange(lo_x - 0.3, hi_x + 0.3 + (0.3 if lo_x == hi_x else 0), padding=0)
        drawn = [v for c in self.curves.values() for v in (*c[2], *c[3]) if np.isfinite(v)]
        if drawn:
            lo_y, hi_y = min(drawn), max(drawn)
            span = max(hi_y - lo_y, 2.0)
            # headroom above the curves for the legend's rows (two more with a probe)
            room = 0.45 + (0.25 if "probe" in self.curves else 0.0)
            plot.setYRange(max(0.0, lo_y - 0.1 * span), min(100.0, hi_y + room * span) + 0.5, padding=0)
        text = self._summary(t, level) if level is not None else ""
        if probes is not None and not probes.empty:
            text = " ".join(x for x in (text, self._probe_summary(probes)) if x)
        self.summary.setText(text or " ")

    def _draw_probe(self, probes: pd.DataFrame, x_all: float) -> None:
        """The probe's mean over splits with its 95% interval, and zero-shot on the same held-out images."""
        plot, name = self.plot, self.probe_backbone.currentText()
        x = np.array([x_all if k == "all" else math.log2(int(k)) for k in probes["shots"]], dtype=float)
        mean = probes["mean"].to_numpy(dtype=float) * 100
        lo = np.where(np.isfinite(probes["ci_low"].to_numpy(dtype=float)), probes["ci_low"].to_numpy(dtype=float) * 100, mean)
        hi = np.where(np.isfinite(probes["ci_high"].to_numpy(dtype=float)), probes["ci_high"].to_numpy(dtype=float) * 100, mean)
        plot.addItem(pg.ErrorBarItem(x=x, y=mean, top=hi - mean, bottom=mean - lo, beam=0.08,
                                     pen=pg.mkPen(PROBE_COLOUR, width=1.5)))
        plot.plot(x, mean, pen=pg.mkPen(PROBE_COLOUR, width=2.5), symbol="t", symbolSize=10, symbolBrush=PROBE_COLOUR,
                  symbolPen="w", name=f"linear probe of {name} (95% CI)")
        zs = probes["zeroshot"].to_numpy(dtype=float) * 100
        plot.plot(x, zs, pen=pg.mkPen(ZEROSHOT_COLOUR, width=1.8, style=Qt.PenStyle.DotLine), symbol="d", symbolSize=7,
                  symbolBrush=ZEROSHOT_COLOUR, symbolPen=None, name=f"zero-shot {name} (same held-out images)")
        self.curves["probe"] = (probes["shots"].to_numpy(), mean, lo, hi)
        self.curves["zeroshot"] = (probes["shots"].to_numpy(), zs, zs, zs)

    def _probe_summary(self, probes: pd.DataFrame) -> str:
        last = probes.iloc[-1]
        gap = (last["mean"] - last["zeroshot"]) * 100
        shots = "half of each class" if last["shots"] == "all" else f"{last['shots']} image(s) per class"
        return (f"Linear probe of <b>{self.probe_backbone.currentText()}</b> with {shots}: "
                f"{last['mean'] * 100:.1f}% vs zero-shot {last['zeroshot'] * 100:.1f}% on the same held-out images "
                f"({gap:+.1f} points).")

    def _summary(self, t: pd.DataFrame, level: int) -> str:
        adaptive = t[t["method"].isin([m for m, _ in ADAPTIVE])]
        if adaptive.empty:
            return f"At {level} name(s) per class: no adaptive ensemble rows yet."
        best = adaptive.loc[adaptive["mean"].idxmax()]
        title = dict(ADAPTIVE)[best["method"]]
        parts = [f"At {level} name(s) per class, best: <b>{title}</b> with {int(best['k'])} image(s) per class, "
                 f"{best['mean'] * 100:.1f}%"]
        ref = t[(t["method"] == "best_single_oracle") & (t["k"] == best["k"])]
        if len(ref):
            gain = (best["mean"] - ref.iloc[0]["mean"]) * 100
            parts.append(f"{gain:+.1f} points over the best single backbone on the same held-out images")
        n = int(adaptive["n"].max())
        parts.append(f"{n} split{'s' if n != 1 else ''} per k")
        return "; ".join(parts) + "."


def sample_kshot_rows(levels=(1, 2, 4, 8), shots=(1, 2, 4, 8), splits: int = 5) -> list[dict]:
    """Plausible ensembles rows (k > 0) for the preview and tests: NLC gains most with more shots."""
    rng = np.random.default_rng(1)
    rows = []
    for level in levels:
        base = 0.55 + 0.04 * math.log2(level)
        for k in shots:
            lk = math.log2(k)
            for split in range(splits):
                means = {"best_single_oracle": base, "best_single": base - 0.02, "mean_logits": base + 0.02,
                         "global": base + 0.03 + 0.01 * lk, "nlc": base + 0.01 + 0.03 * lk}
                for method, v in means.items():
                    rows.append({"level": level, "method": method, "k": k, "split": split, "n_fit": 10 * k,
                                 "n_eval": 300 - 10 * k, "top1": float(np.clip(v + rng.normal(0, 0.015), 0, 1))})
    return rows


def sample_probe_rows(backbones=("ViT-B-32", "RN50"), shots=(1, 2, 4, 8, "all")) -> list[dict]:
    """Plausible probes summary rows: the probe overtakes zero-shot after a few shots."""
    rows = []
    for b, bb in enumerate(backbones):
        for k in shots:
            lk = 5.0 if k == "all" else math.log2(k)
            top1 = min(0.95, 0.40 + 0.09 * lk - 0.03 * b)
            rows.append({"backbone": bb, "shots": k, "split": "mean", "n_train": 0, "n_test": 0, "top1": top1,
                         "ci_low": top1 - 0.03, "ci_high": top1 + 0.03, "zeroshot_top1": 0.6 - 0.03 * b,
                         "n_splits": 5})
    return rows


def preview() -> QWidget:
    res = ResultsData()
    res.add_table_rows("ensembles", sample_kshot_rows())
    res.add_table_rows("probes", sample_probe_rows())
    w = KShotPlot()
    w.set_results(res)
    w.resize(800, 500)
    w.setWindowTitle("semscale — k-shot ensembles preview")
    return w


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
