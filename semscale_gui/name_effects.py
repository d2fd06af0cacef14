"""Each name's measured effect in the last run, for the Names view and the synonym editor.

A name's *effect* is the run's ``credit_change`` (correct predictions with the name minus
without it) at the last level that measured it — the longest lists, which is what the editor
holds; in pooled mode, the level the name enters. The editor tints a name by it — red-ish for a name that cost images, green-ish
for one that brought them, stronger for a bigger effect — with the numbers in its tooltip and a
legend under the table, and offers *Remove harmful names…*: the engine's harmful names
(:func:`core.results.names.harmful_names`) that are still in the list, shown before anything is
removed and removed as one undoable edit.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QToolButton, QVBoxLayout, QWidget,
)

from core.util.names import name_key

HARMFUL = QColor("#f2a6a0")  # the strongest tints; weaker effects blend towards white
HELPFUL = QColor("#9fd8ab")
WHITE = QColor("#ffffff")
MIN_TINT = 0.3  # the weakest effect still shows


def fmt_count(v: Any) -> str:
    """An image count: whole numbers plain, a tie-shared count with one decimal."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return ""
    if math.isnan(x):
        return "–"
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.1f}"


def fmt_signed(v: Any) -> str:
    """A change with its sign (a real minus sign), '–' when unknown."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return ""
    if math.isnan(x):
        return "–"
    s = fmt_count(abs(x))
    return "0" if s in ("0", "0.0") else ("+" if x > 0 else "−") + s


def effect_colour(value: Any, scale: Optional[float]) -> Optional[QColor]:
    """Red-ish for a negative effect, green-ish for a positive one, by its size against ``scale``
    (the largest effect of the run); None for no effect."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(v) or abs(v) < 1e-9:
        return None
    s = float(scale) if scale and scale > 0 else abs(v)
    t = MIN_TINT + (1 - MIN_TINT) * min(1.0, abs(v) / s) ** 0.5
    end = HARMFUL if v < 0 else HELPFUL
    return QColor(round(WHITE.red() + (end.red() - WHITE.red()) * t),
                  round(WHITE.green() + (end.green() - WHITE.green()) * t),
                  round(WHITE.blue() + (end.blue() - WHITE.blue()) * t))


def effect_brush(value: Any, scale: Optional[float]) -> Optional[QBrush]:
    c = effect_colour(value, scale)
    return QBrush(c) if c is not None else None


def entering_level(rank: int, levels: Sequence[int]) -> Optional[int]:
    """The first level that uses a name of this rank (level k uses ranks 1…k)."""
    for k in sorted(levels):
        if k >= rank:
            return int(k)
    return None


def entering_rows(d: pd.DataFrame, levels: Sequence[int]) -> pd.Series:
    """True for the rows at the level their name enters."""
    if not len(d):
        return pd.Series(dtype=bool)
    enter = d["rank"].astype(int).map(lambda r: entering_level(r, levels))
    return d["level"].astype(int) == enter


@dataclass
class Effect:
    cls: str
    name: str
    rank: int
    level: Optional[int]  # where it enters
    at: Optional[int] = None  # the level its effect is read at: the last one that measured it
    won: float = float("nan")
    own: float = float("nan")
    taken: float = float("nan")
    net: float = float("nan")
    n_owners: int = 1
    harmful: bool = False


@dataclass
class NameEffects:
    """What one run measured for each name of one backbone.

    Built with pandas on a pool thread: ``index`` maps (class, name) to the row of names.csv its
    effect is read from, ``rows_of`` to all its rows (every level); an :class:`Effect` is made only
    when asked for (a painted cell, a tooltip).
    """

    run_dir: str
    backbone: str
    frame: pd.DataFrame  # the backbone's names.csv rows, by level
    index: dict[tuple[str, str], int]  # (class, name) -> row of its effect
    rows_of: dict[tuple[str, str], np.ndarray]  # (class, name) -> its rows, by level
    aliases: dict[tuple[str, str], tuple[str, str]]  # (class, name key) -> (class, name as the run wrote it)
    levels: list[int]
    scale: float  # the largest |net effect| (colours are relative to it)
    harmful: list[tuple[str, str]]  # (class, name) that cost correct predictions, worst first, as the engine ranks
    harmful_rows: list[dict] = field(default_factory=list)  # the engine's rows of those (their worst level)

    @classmethod
    def from_names(cls, d: pd.DataFrame, backbone: str, run_dir: str,
                   harmful: Optional[pd.DataFrame] = None) -> "NameEffects":
        """From names.csv's rows of one backbone (synonyms, ordering 0) and the engine's harmful names."""
        d = d.sort_values("level", kind="stable").reset_index(drop=True)
        levels = sorted(int(v) for v in pd.unique(d["level"].dropna())) if len(d) else []
        g = pd.DataFrame({"c": d["class"].astype(str), "n": d["name"].astype(str), "i": np.arange(len(d))})
        last = g.groupby(["c", "n"], sort=False)["i"].last()
        measured = g[d["credit_change"].notna().to_numpy()].groupby(["c", "n"], sort=False)["i"].last()
        last.loc[measured.index] = measured  # the last level that measured it, else its last row
        index = dict(zip(last.index, last.to_numpy().tolist()))
        rows_of = g.groupby(["c", "n"], sort=False).indices
        # a name typed differently in the editor ("Orb" for "orb") finds its row by its key
        keys = {n: name_key(n) for n in pd.unique(g["n"])}
        aliases = {(c, keys[n]): (c, n) for c, n in index}
        net = pd.to_numeric(d["credit_change"], errors="coerce").to_numpy(dtype=float)
        at = net[last.to_numpy()] if len(last) else np.zeros(0)
        scale = float(np.nanmax(np.abs(at))) if len(at) and np.isfinite(at).any() else 0.0
        out = cls(run_dir, backbone, d, index, rows_of, aliases, levels, scale, [], [])
        if harmful is not None:
            out.set_harmful(harmful)
        return out

    def set_harmful(self, harmful: pd.DataFrame) -> None:
        """The engine's harmful names of this backbone (pool thread: their sentences are worded here).
        Only those that cost correct predictions count for removal: taking images alone is not enough."""
        from semscale_gui.names_view import harmful_text

        listed: dict[tuple[str, str], dict] = {}
        if harmful is not None and len(harmful):
            costly = harmful[pd.to_numeric(harmful["credit_change"], errors="coerce") < 0]
            for r in costly.to_dict("records"):
                key = (str(r["class"]), str(r["name"]))
                if key in self.index and key not in listed:
                    listed[key] = dict(r, sentence=harmful_text(r))
        self.harmful, self.harmful_rows = list(listed), list(listed.values())

    def _row(self, cls: str, name: str) -> Optional[int]:
        i = self.index.get((cls, name))
        if i is None:
            exact = self.aliases.get((cls, name_key(name)))
            i = self.index.get(exact) if exact is not None else None
        return i

    def _value(self, i: int, col: str) -> float:
        v = self.frame[col].iat[i] if col in self.frame else np.nan
        try:
            return float(v)
        except (TypeError, ValueError):
            return float("nan")

    def get(self, cls: str, name: str) -> Optional[Effect]:
        i = self._row(cls, name)
        if i is None:
            return None
        f = self.frame
        rank = int(f["rank"].iat[i])
        owners = self._value(i, "n_owners")
        return Effect(cls, str(f["name"].iat[i]), rank, entering_level(rank, self.levels), at=int(f["level"].iat[i]),
                      won=self._value(i, "images_won"), own=self._value(i, "won_correct"),
                      taken=self._value(i, "won_from_other_classes"), net=self._value(i, "credit_change"),
                      n_owners=int(owners) if owners == owners else 1,
                      harmful=(cls, str(f["name"].iat[i])) in set(self.harmful))

    def measured(self, cls: str, name: str) -> bool:
        """The run has this name of this class."""
        return self._row(cls, name) is not None

    def net(self, cls: str, name: str) -> float:
        """The name's net effect (NaN when the run did not measure it): what the colours are made of."""
        i = self._row(cls, name)
        return self._value(i, "credit_change") if i is not None else float("nan")

    def per_level(self, cls: str, name: str) -> list[tuple[int, float, float, float, float]]:
        i = self._row(cls, name)
        rows = self.rows_of.get((cls, str(self.frame["name"].iat[i])), []) if i is not None else []
        return [(int(self.frame["level"].iat[i]), self._value(i, "images_won"), self._value(i, "won_correct"),
                 self._value(i, "won_from_other_classes"), self._value(i, "credit_change")) for i in rows]

    def entered_at(self, cls: str, name: str) -> Optional[int]:
        e = self.get(cls, name)
        return e.level if e is not None else None

    def brush(self, cls: str, name: str) -> Optional[QBrush]:
        return effect_brush(self.net(cls, name), self.scale)

    def colour(self, cls: str, name: str) -> Optional[QColor]:
        return effect_colour(self.net(cls, name), self.scale)

    @property
    def run_name(self) -> str:
        return Path(self.run_dir).name if self.run_dir else "the last run"

    def tooltip(self, cls: str, name: str, per_level: bool = False) -> str:
        """The name's numbers in words (and, with ``per_level``, at every level)."""
        e = self.get(cls, name)
        if e is None:
            return ""
        where = f"at level {e.level}" if e.level is not None else "at no level of the run"
        lines = [f"'{e.name}' ({e.cls}), rank {e.rank}: enters {where} in {self.run_name} ({self.backbone})"]
        if e.won == e.won:
            lines.append(f"at level {e.at} it wins {fmt_count(e.won)} image(s): {fmt_count(e.own)} of its own "
                         f"class, {fmt_count(e.taken)} taken from other classes")
        lines.append(f"net effect at level {e.at}: {fmt_signed(e.net)} correct with it than without it")
        if e.n_owners > 1:
            lines.append(f"listed under {e.n_owners} classes")
        if e.harmful:
            lines.append("harmful: the run is better off without it (Remove harmful names…)")
        steps = self.per_level(cls, name) if per_level else []
        if steps:
            lines.append("level: won / own / taken / net")
            lines += [f"  {k}: {fmt_count(w)} / {fmt_count(o)} / {fmt_count(t)} / {fmt_signed(n)}"
                      for k, w, o, t, n in steps]
        return "\n".join(lines)


# ---------------------------------------------------------------- the synonym editor's side


class RemoveHarmfulDialog(QDialog):
    """The harmful names that would be removed, each ticked; OK removes the ticked ones."""

    def __init__(self, items: Sequence[tuple[str, str, str]], run: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Remove harmful names")
        self.list = QListWidget()
        for cls, name, why in items:
            it = QListWidgetItem(why or f"'{name}' ({cls})")
            it.setToolTip(f"remove '{name}' from {cls}")
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Checked)
            it.setData(Qt.ItemDataRole.UserRole, (cls, name))
            self.list.addItem(it)
        text = QLabel(f"{len(items)} name(s) cost correct predictions in {html.escape(run)}: the run got more "
                      "images right without them. Untick any to keep; the removal is one step that Undo reverses.")
        text.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(f"Remove {len(items)} name(s)")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.list.itemChanged.connect(self._count)
        lay = QVBoxLayout(self)
        lay.addWidget(text)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.buttons)
        self.list.setWordWrap(True)
        self.resize(720, 380)

    def _count(self, *_args: Any) -> None:
        n = len(self.chosen())
        self.ok_button.setText(f"Remove {n} name(s)")
        self.ok_button.setEnabled(n > 0)

    def chosen(self) -> list[tuple[str, str]]:
        out = []
        for i in range(self.list.count()):
            it = self.list.item(i)
            if it.checkState() == Qt.CheckState.Checked:
                out.append(tuple(it.data(Qt.ItemDataRole.UserRole)))
        return out


class EditorEffects(QObject):
    """Installed on a :class:`semscale_gui.synonym_editor.SynonymEditor`: colours its names by the
    last run's measurements, and a bar under the table with the legend and *Remove harmful names…*."""

    def __init__(self, editor: Any) -> None:
        super().__init__(editor)
        from semscale_gui.widgets import make_action

        self.editor = editor
        self.effects: Optional[NameEffects] = None
        self.dialog: Optional[RemoveHarmfulDialog] = None
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.remove_action = make_action(editor, "Remove harmful names…", "remove", self.open_dialog,
                                         "Remove the names that cost more images than they brought in the last "
                                         "run (you see the list first; Undo restores them)")
        self.remove_action.setEnabled(False)
        self.remove_button = QToolButton()
        self.remove_button.setDefaultAction(self.remove_action)
        self.remove_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.bar = QWidget()  # under the names table: the legend, and the action beside it
        row = QHBoxLayout(self.bar)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.legend, 1)
        row.addWidget(self.remove_button, 0, Qt.AlignmentFlag.AlignTop)
        self.bar.hide()
        editor.doc.changed.connect(self._update)

    def set_effects(self, effects: Optional[NameEffects]) -> None:
        """The measurements to show (None: none), from the Names view of the last run opened."""
        self.effects = effects
        model = self.editor.model
        model.effects = effects
        if model.rowCount() and model.columnCount():
            model.dataChanged.emit(model.index(0, 0), model.index(model.rowCount() - 1, model.columnCount() - 1),
                                   [Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ToolTipRole])
        self._update()

    def harmful_names(self) -> list[tuple[str, str, str]]:
        """(class, name, why) of the run's harmful names still in the list; never a class's first
        (canonical) name."""
        if self.effects is None:
            return []
        doc, out = self.editor.doc, []
        rows = self.effects.harmful_rows or [{} for _ in self.effects.harmful]
        for (cls, name), row in zip(self.effects.harmful, rows):
            names = doc.names(cls)  # as the run wrote it: a name typed since is a new name, not measured
            if name in names[1:]:
                out.append((cls, name, str(row.get("sentence", ""))))
        return out

    def _update(self) -> None:
        e = self.effects
        if e is None:
            self.bar.hide()
            self.remove_action.setEnabled(False)
            return
        n = len(self.harmful_names())
        self.remove_action.setEnabled(n > 0)
        sw = "<span style='background:{};'>&nbsp;&nbsp;&nbsp;&nbsp;</span>"
        self.legend.setText(
            f"Colours: each name's net effect (correct with it minus without it) measured in "
            f"<b>{html.escape(e.run_name)}</b>, {html.escape(e.backbone)}: "
            f"{sw.format(effect_colour(-1, 1).name())} cost images {sw.format(effect_colour(1, 1).name())} "
            f"brought images, stronger = bigger; a shared name in <i>italics</i>; hover a name for its numbers. "
            f"{n} harmful name(s) in this list.")
        self.bar.show()

    def open_dialog(self) -> Optional[RemoveHarmfulDialog]:
        items = self.harmful_names()
        if not items:
            self.editor.status_message.emit("No harmful names of the last run are in this list")
            return None
        dlg = RemoveHarmfulDialog(items, self.effects.run_name if self.effects else "", self.editor)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.accepted.connect(lambda: self.remove(dlg.chosen()))
        self.dialog = dlg
        dlg.open()
        return dlg

    def remove(self, chosen: Sequence[tuple[str, str]]) -> int:
        """Remove (class, name) pairs as one undoable edit."""
        removals: dict[str, list[str]] = {}
        for cls, name in chosen:
            removals.setdefault(cls, []).append(name)
        n = self.editor.doc.remove_names(removals, f"Remove {len(chosen)} harmful name(s)")
        self.editor.status_message.emit(f"Removed {n} harmful name(s); Undo restores them" if n else
                                        "No names removed")
        return n
