"""The report's figures: matplotlib's SVG backend, inlined into the page.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the SVG canvas directly
(never ``pyplot``), so no global backend is chosen and drawing is safe on a worker thread.
Text stays text (``svg.fonttype = none``) and ids are salted with a fixed value, so the same
run gives the same bytes and the file stays small.
"""

from __future__ import annotations

import io
import re
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from core.labels.controls import SYNONYMS

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def to_svg(fig, salt: str = "semscale") -> str:
    """The figure as an ``<svg>`` element (no XML prolog), for inlining into HTML."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    FigureCanvasSVG(fig)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt, "font.size": 9,
                                "font.family": ["DejaVu Sans", "Arial", "sans-serif"]}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    start = text.find("<svg")
    # matplotlib's RDF metadata block names vocabularies by URL: nothing a reader needs
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text[start:], count=1, flags=re.S)
    # the page's CSS shrinks a figure to the column (max-width: 100%); the viewBox keeps the proportions
    return text.replace("<svg ", '<svg role="img" ', 1)


def colours(names: Sequence[str]) -> dict[str, str]:
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(dict.fromkeys(names))}


def _level_axis(ax, levels: Sequence[int]) -> None:
    levels = sorted({int(v) for v in levels})
    if levels and min(levels) > 0 and max(levels) / min(levels) >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(levels)
    ax.set_xticklabels([str(v) for v in levels])
    ax.minorticks_off()
    ax.set_xlabel("names per class (level)")


def accuracy_curves(levels: pd.DataFrame, title: str = "", salt: str = "acc") -> Optional[str]:
    """Top-1 vs level per backbone (ordering 0) with the 95% CI band; control curves dashed."""
    if levels is None or levels.empty:
        return None
    df = levels[levels["ordering"] == 0] if "ordering" in levels.columns else levels
    names_col = "names" if "names" in df.columns else None
    fig = _figure(7.0, 3.8)
    ax = fig.add_subplot()
    col = colours(list(df["backbone"].astype(str)))
    kinds = list(dict.fromkeys(df[names_col])) if names_col else [SYNONYMS]
    markers = ("o", "s", "^", "v", "D")
    for bb, c in col.items():
        for i, kind in enumerate(kinds):
            d = df[df["backbone"].astype(str) == bb]
            if names_col:
                d = d[d[names_col] == kind]
            d = d.sort_values("level")
            if d.empty:
                continue
            dashed = kind != SYNONYMS
            ax.plot(d["level"], d["top1"], marker=markers[i % len(markers)], color=c, lw=1.2 if dashed else 2,
                    ls="--" if dashed else "-", alpha=0.8 if dashed else 1,
                    label=f"{bb}" + (f" · {kind}" if len(kinds) > 1 else ""))
            if {"ci_low", "ci_high"} <= set(d.columns) and d["ci_low"].notna().any():
                ax.fill_between(d["level"], d["ci_low"], d["ci_high"], color=c, alpha=0.08 if dashed else 0.18,
                                lw=0)
    _level_axis(ax, df["level"])
    ax.set_ylabel("top-1 accuracy")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return to_svg(fig, salt)


def class_changes(table: pd.DataFrame, first: str, last: str, salt: str = "cls") -> Optional[str]:
    """Per class, recall at the first level → the last level (one panel per backbone)."""
    if table is None or table.empty:
        return None
    backbones = list(dict.fromkeys(table["backbone"]))
    n = max(table.groupby("backbone").size())
    fig = _figure(3.4 * len(backbones) + 1.2, max(2.4, 1.0 + 0.22 * n))
    axes = fig.subplots(1, len(backbones), squeeze=False)[0]
    for ax, bb in zip(axes, backbones):
        d = table[table["backbone"] == bb].sort_values("change")
        y = np.arange(len(d))
        colour = np.where(d["change"] < 0, "#d62728", np.where(d["change"] > 0, "#2ca02c", "#7f7f7f"))
        ax.hlines(y, d[first], d[last], color=colour, lw=2)
        ax.scatter(d[first], y, color="#7f7f7f", s=14, zorder=3)
        ax.scatter(d[last], y, color=colour, s=18, zorder=3, marker="D")
        ax.set_yticks(y)
        ax.set_yticklabels(d["class"].astype(str))
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("recall")
        ax.set_title(str(bb))
        ax.grid(axis="x", alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="#7f7f7f", marker="o", ls="", label=first),
               Line2D([], [], color="#333333", marker="D", ls="", label=last)]
    fig.legend(handles=handles, fontsize=7, loc="outside lower center", ncols=2, frameon=False)
    return to_svg(fig, salt)


def name_effects(table: pd.DataFrame, salt: str = "names") -> Optional[str]:
    """Net credit change of the listed names (harmful red, helpful green)."""
    if table is None or table.empty:
        return None
    d = table.iloc[::-1]
    fig = _figure(7.0, 0.6 + 0.22 * len(d))
    ax = fig.add_subplot()
    y = np.arange(len(d))
    ax.barh(y, d["credit_change"], color=np.where(d["credit_change"] < 0, "#d62728", "#2ca02c"))
    ax.set_yticks(y)
    ax.set_yticklabels([f"{n} ({c}, level {lv}, {b})" for n, c, lv, b in
                        zip(d["name"], d["class"], d["level"], d["backbone"])], fontsize=7)
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_xlabel("credit with the name minus without it (images)")
    ax.grid(axis="x", alpha=0.3)
    return to_svg(fig, salt)


def backbones_and_ensembles(backbones: Optional[pd.DataFrame], fixed: Optional[pd.DataFrame],
                            salt: str = "ens") -> Optional[str]:
    """Each backbone's top-1 per level next to the fixed ensembles (k = 0) and the oracle."""
    if backbones is None or backbones.empty:
        return None
    fig = _figure(7.0, 3.6)
    ax = fig.add_subplot()
    col = colours(list(backbones["backbone"].astype(str)))
    for bb, c in col.items():
        d = backbones[backbones["backbone"].astype(str) == bb].sort_values("level")
        ax.plot(d["level"], d["top1"], marker="o", color=c, lw=2, label=bb)
    if fixed is not None and not fixed.empty:
        styles = {"oracle": ("#000000", ":"), "mean_logits": ("#ff7f0e", "--"), "mean_probs": ("#8c564b", "--"),
                  "majority_vote": ("#17becf", "-.")}
        for method, (c, ls) in styles.items():
            d = fixed[fixed["method"] == method].sort_values("level")
            if not d.empty:
                ax.plot(d["level"], d["top1"], color=c, ls=ls, lw=1.4, marker=".", label=method)
    _level_axis(ax, backbones["level"])
    ax.set_ylabel("top-1 accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return to_svg(fig, salt)


def frequency_scatter(frequency: Optional[pd.DataFrame], level: int, salt: str = "freq") -> Optional[str]:
    """Per-class recall against log10 frequency at one level, one colour per backbone."""
    if frequency is None or frequency.empty or "log_frequency" not in frequency.columns:
        return None
    d = frequency[frequency["level"] == level]
    if d.empty:
        return None
    fig = _figure(6.0, 3.4)
    ax = fig.add_subplot()
    for bb, c in colours(list(d["backbone"].astype(str))).items():
        e = d[d["backbone"].astype(str) == bb]
        ax.scatter(e["log_frequency"], e["recall"], color=c, s=18, alpha=0.8, label=bb)
    ax.set_xlabel("log10 class frequency")
    ax.set_ylabel(f"recall at level {level}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    return to_svg(fig, salt)


def study_deltas(by_level: Optional[pd.DataFrame], salt: str = "study") -> Optional[str]:
    """Mean change of top-1 vs level 1 across datasets, with its bootstrap CI over datasets."""
    if by_level is None or by_level.empty:
        return None
    fig = _figure(7.0, 3.6)
    ax = fig.add_subplot()
    for bb, c in colours(list(by_level["backbone"].astype(str))).items():
        d = by_level[by_level["backbone"].astype(str) == bb].sort_values("level")
        ax.plot(d["level"], d["mean_delta_top1"], marker="o", color=c, lw=2, label=bb)
        if d["delta_ci_low"].notna().any():
            ax.fill_between(d["level"], d["delta_ci_low"], d["delta_ci_high"], color=c, alpha=0.18, lw=0)
    ax.axhline(0, color="#333", lw=0.8)
    _level_axis(ax, by_level["level"])
    ax.set_ylabel("mean change in top-1 vs level 1")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    return to_svg(fig, salt)
