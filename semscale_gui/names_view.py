"""Names: which names win images, which take them from other classes, and what each one
changes when it enters a class's list (the run's ``names.csv``).

The most harmful names of the run come first, as sentences; under them a table lists each
class's names in rank order with, at the chosen level, the images each name wins, how many of
them it takes from other classes and its net effect on the credit. The table is a
:class:`QAbstractTableModel` over numpy columns sorted with numpy, so 1,000 classes × 16 names
cost no more than a screenful of rows. A click on the "won" or "taken" cell opens the gallery
on those images (the engine's :func:`core.results.names.name_images`); a click on the "net
effect" cell opens the flips at the level the name enters; a double-click anywhere on a row
opens the images it won.

The file is read on a pool thread; the view also publishes each name's measured effect
(:class:`semscale_gui.name_effects.NameEffects`) for the synonym editor's colours.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QHeaderView, QLabel, QLineEdit, QListWidget, QListWidgetItem,
    QPushButton, QSplitter, QStackedWidget, QTableView, QVBoxLayout, QWidget,
)

from core.results.views import ResultsData
from semscale_gui.name_effects import NameEffects, effect_brush, entering_rows, fmt_count, fmt_signed
from semscale_gui.plots.base import _controls, _labelled, refill_combo
from semscale_gui.tasks import run_task

NAMES_FILE = "names.csv"
HARMFUL_TOP = 12  # sentences in the "most harmful" list
NO_NAMES = ("This run has no names.csv, and its names could not be scored again (that needs every image and "
            "name embedding of the run in the embedding cache). Runs made with this version write names.csv.")
LIVE = "Names are measured when the run finishes."

# (header, names.csv column, tooltip); the model's columns in this order
COLUMNS = [
    ("class", "class", "the class the name belongs to"),
    ("rank", "rank", "the name's rank in its class's list: level k uses ranks 1…k"),
    ("name", "name", "the name"),
    ("won", "images_won", "images whose best-scoring category is this name (a tie shares the image); "
                          "click to see them"),
    ("own", "won_correct", "of those, images of the name's own class"),
    ("taken", "won_from_other_classes", "of those, images of other classes: what the name takes from them; "
                                        "click to see them"),
    ("net", "credit_change", "correct predictions (credit) with the name minus without it, at this level "
                                    "(leave-one-out): below zero, the class list is better off without it; click "
                                    "for the flips when it enters"),
    ("shared", "n_owners", "classes listing this name (a shared name splits its images among them)"),
]
COL_CLASS, COL_RANK, COL_NAME, COL_WON, COL_OWN, COL_TAKEN, COL_NET, COL_OWNERS = range(len(COLUMNS))
NUMERIC = {COL_RANK, COL_WON, COL_OWN, COL_TAKEN, COL_NET, COL_OWNERS}


def read_names(run_dir: str) -> tuple[Optional[pd.DataFrame], str]:
    """(the run's names.csv, only its committed rows, or the engine's recomputation for an older
    run; why not, when neither is possible). Pool thread."""
    from core.results.runs import committed_length, read_csv
    from core.util.errors import InputError

    path = Path(run_dir) / NAMES_FILE
    if path.is_file():
        df = read_csv(path, committed_length(path))
        return (df, "") if len(df) else (None, f"{path} has no rows")
    try:
        import core

        df = core.load_run(run_dir).names
    except InputError as e:
        return None, str(e)
    except AttributeError:  # an engine without per-name attribution
        return None, NO_NAMES
    return (df, "") if df is not None and len(df) else (None, NO_NAMES)


def harmful_predictions(path: Any) -> Optional[pd.DataFrame]:
    """The columns of predictions.csv that say whose images a name took (pool thread); None without it."""
    from core.results.runs import committed_length, read_csv

    if path is None or not Path(path).is_file():
        return None
    cols = {"image", "true_class", "predicted_class", "predicted_classes", "predicted_label", "n_owners", "level",
            "backbone", "ordering", "names"}
    return read_csv(Path(path), committed_length(Path(path)), usecols=lambda c: c in cols)


def _of_backbone(h: pd.DataFrame, backbone: str) -> pd.DataFrame:
    return h[h["backbone"].astype(str) == backbone] if len(h) and "backbone" in h else h


def synonym_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Ordering 0 of the synonyms (controls name random words, not the user's names)."""
    from core.labels.controls import SYNONYMS

    if "names" in df:
        df = df[df["names"].astype(str) == SYNONYMS]
    if "ordering" in df:
        df = df[df["ordering"].astype(int) == 0]
    return df


# ---------------------------------------------------------------- gallery selections


@dataclass(frozen=True)
class NameImages:
    """The images one name won at one level (``part='taken'``: only those of other classes), as
    :func:`core.results.names.name_images` lists them, shown as the gallery shows any selection."""

    backbone: str
    level: int
    cls: str
    name: str
    part: str = "won"  # won | taken

    @property
    def title(self) -> str:
        what = "taken from other classes by" if self.part == "taken" else "won by"
        return f"images {what} '{self.name}' ({self.cls}) · {self.backbone}, {self.level} name(s) per class"

    def image_ids(self, run: Any) -> list[str]:
        from types import SimpleNamespace

        from core.results.names import name_images

        # the gallery's RunImages holds what name_images reads: predictions, the config, the folder
        src = run if hasattr(run, "config") else SimpleNamespace(
            predictions=run.predictions, config=(run.meta or {}).get("config", {}), dir=run.dir)
        rows = name_images(src, self.backbone, self.level, self.cls, self.name)
        if self.part == "taken":
            rows = rows[rows["taken"].astype(bool)]
        return list(dict.fromkeys(map(str, rows["image"])))

    def rows(self, run: Any) -> pd.DataFrame:
        from core.results.drilldown import GALLERY_COLUMNS, correctness, owners_of
        from core.stats.flips import credit_column

        ids = self.image_ids(run)
        at = run.at_level(self.level, self.backbone)
        at = at.drop_duplicates("image").set_index(at["image"].astype(str)).reindex(ids)
        at = at[at["image"].notna()]
        own = at["true_class"].astype(str) == self.cls
        group = np.where(own, correctness(at[credit_column(at)]).to_numpy(), "taken")
        out = pd.DataFrame({
            "image": at.index.astype(str), "true_class": at["true_class"].astype(str).to_numpy(),
            "predicted_label": at["predicted_label"].to_numpy() if "predicted_label" in at else self.name,
            "predicted_class": at["predicted_class"].to_numpy(), "score": at["score"].to_numpy() if "score" in at
            else np.nan, "correct": at[credit_column(at)].to_numpy(), "level": self.level,
            "backbone": self.backbone, "group": group,
            "detail": [f"won by '{self.name}' ({self.cls})" + ("" if o else f", taken from '{t}'")
                       for o, t in zip(own, at["true_class"].astype(str))],
            "owners": owners_of(at.reset_index(drop=True)).to_numpy(),
        })
        return out.reindex(columns=GALLERY_COLUMNS).reset_index(drop=True)


@dataclass(frozen=True)
class NameFlips:
    """The flips when a name enters its class's list: images whose correctness changes from the level
    before to ``level`` and whose winning name at ``level`` is this one (what it rescued, what it stole);
    in pooled mode, where no single name wins, the flips into or out of its class."""

    backbone: str
    from_level: int
    level: int
    cls: str
    name: str

    @property
    def title(self) -> str:
        return (f"flips when '{self.name}' ({self.cls}) enters · {self.backbone}, "
                f"{self.from_level} → {self.level} name(s) per class")

    def rows(self, run: Any) -> pd.DataFrame:
        from core.results.drilldown import LevelFlips
        from core.util.names import name_key

        rows = LevelFlips(self.backbone, self.from_level, self.level).rows(run)
        if not len(rows):
            return rows
        owners = rows["owners"].astype(str).str.split("|").map(lambda o: self.cls in o).astype(bool)
        if (getattr(run, "meta", {}) or {}).get("config", {}).get("mode") == "pooled":
            # no name wins an image in pooled mode: the class's flips (what its entering names changed)
            return rows[owners | (rows["true_class"].astype(str) == self.cls)].reset_index(drop=True)
        by_name = rows["predicted_label"].astype(str).map(name_key) == name_key(self.name)
        return rows[by_name & owners].reset_index(drop=True)


# ---------------------------------------------------------------- table


class NamesModel(QAbstractTableModel):
    """Rows of names.csv for one backbone and level, held as numpy columns; sorted with numpy."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.frame = pd.DataFrame()
        self._cols: list[np.ndarray] = []
        self._text: list[list[Optional[str]]] = []
        self._order = np.zeros(0, dtype=int)
        self._sort: tuple[int, Qt.SortOrder] = (-1, Qt.SortOrder.AscendingOrder)
        self.effects: Optional[NameEffects] = None
        self.tooltip_of: Any = None  # (class, name) -> the name's numbers at every level

    def set_frame(self, df: pd.DataFrame) -> None:
        """Rows in label order, each class's names by rank (the default, "unsorted" order)."""
        self.beginResetModel()
        self.frame = df.reset_index(drop=True)
        self._cols = [self.frame[c].to_numpy() if c in self.frame else np.full(len(self.frame), np.nan)
                      for _h, c, _t in COLUMNS]
        self._text = [[None] * len(self.frame) for _ in COLUMNS]
        self._order = self._sorted_order(*self._sort)
        self.endResetModel()

    def _sorted_order(self, column: int, order: Qt.SortOrder) -> np.ndarray:
        n = len(self.frame)
        if column < 0 or n == 0:
            return np.arange(n)
        v = self._cols[column]
        if column in NUMERIC:
            key = pd.to_numeric(pd.Series(v), errors="coerce").to_numpy(dtype=float)
            if order == Qt.SortOrder.DescendingOrder:
                key = -key
            # NaN last either way; ties keep the default order (label order, then rank)
            return np.argsort(np.where(np.isnan(key), np.inf, key), kind="stable")
        keys = pd.Series(v).astype(str).str.casefold()
        idx = np.argsort(keys.to_numpy(), kind="stable")
        return idx[::-1] if order == Qt.SortOrder.DescendingOrder else idx

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        self._sort = (column, order)
        self._order = self._sorted_order(column, order)
        self.layoutChanged.emit()

    def row_at(self, r: int) -> int:
        """The frame row shown in view row ``r``."""
        return int(self._order[r])

    def record(self, r: int) -> dict:
        return self.frame.iloc[self.row_at(r)].to_dict()

    def view_row_of(self, cls: str, name: str) -> int:
        if not len(self.frame):
            return -1
        hit = np.flatnonzero((self.frame["class"].astype(str).to_numpy() == cls)
                             & (self.frame["name"].astype(str).to_numpy() == name))
        if not len(hit):
            return -1
        pos = np.flatnonzero(self._order == hit[0])
        return int(pos[0]) if len(pos) else -1

    # Qt API

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        if role == Qt.ItemDataRole.ToolTipRole:
            return COLUMNS[section][2]
        return None

    def _display(self, c: int, i: int) -> str:
        t = self._text[c][i]
        if t is None:
            v = self._cols[c][i]
            if c == COL_NET:
                t = fmt_signed(v)
            elif c in NUMERIC:
                t = fmt_count(v)
            else:
                t = "" if v is None or v != v else str(v)
            self._text[c][i] = t
        return t

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        c, i = index.column(), self.row_at(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(c, i)
        if role == Qt.ItemDataRole.UserRole:
            return self._cols[c][i]
        if role == Qt.ItemDataRole.TextAlignmentRole and c in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and c == COL_NET:  # at the last level: the editor's colours
            return effect_brush(self._cols[COL_NET][i], self.effects.scale if self.effects else None)
        if role == Qt.ItemDataRole.ForegroundRole and c == COL_TAKEN:
            v = self._cols[c][i]
            return QColor("#a02020") if v == v and v and float(v) > 0 else None
        if role == Qt.ItemDataRole.FontRole and c == COL_NAME:
            f = QFont()
            f.setBold(True)
            return f
        if role == Qt.ItemDataRole.ToolTipRole:
            cls, name = str(self._cols[COL_CLASS][i]), str(self._cols[COL_NAME][i])
            if c in (COL_NAME, COL_NET) and self.tooltip_of is not None:
                return self.tooltip_of(cls, name)
            return COLUMNS[c][2]
        return None


@dataclass
class _Shown:
    backbone: str = ""
    level: int = 0


class NamesView(QWidget):
    """The most harmful names, then every class's names with their numbers at one level."""

    images_requested = Signal(object)  # NameImages or NameFlips (the results panel opens the gallery)
    effects_changed = Signal(object)  # NameEffects of the backbone shown (the synonym editor's colours)
    drawn = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.results = ResultsData()
        self.names: Optional[pd.DataFrame] = None  # synonym rows of names.csv
        self.harmful = pd.DataFrame()
        self.effects: Optional[NameEffects] = None
        self.shown = _Shown()
        self._loaded_key: Any = None
        self._generation = 0
        self._by_key: dict[tuple[str, int], pd.DataFrame] = {}
        self._effects: dict[str, NameEffects] = {}
        self.loading = False  # the run's names are being read
        self._build()

    def _build(self) -> None:
        self.backbone = QComboBox()
        self.backbone.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.level = QComboBox()
        self.level.setToolTip("The level whose numbers the table shows: k names per class")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter classes or names…")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(150)
        self.search.setMaximumWidth(240)
        self.entering_only = QCheckBox("entering names only")
        self.entering_only.setToolTip("Only the names that enter at this level (those the level adds)")
        self.backbone.currentIndexChanged.connect(self._backbone_changed)
        self.level.currentIndexChanged.connect(self._redraw)
        self.search.textChanged.connect(self._redraw)
        self.entering_only.toggled.connect(self._redraw)

        self.harmful_title = QLabel("<b>Most harmful names</b>")
        self.harmful_list = QListWidget()
        self.harmful_list.setWordWrap(True)
        self.harmful_list.setToolTip("Click: find the name in the table. Double-click: see the images it takes.")
        self.harmful_list.itemClicked.connect(self._harmful_clicked)
        self.harmful_list.itemActivated.connect(self._harmful_activated)

        self.summary = QLabel(" ")
        self.summary.setWordWrap(True)
        self.model = NamesModel(self)
        self.model.tooltip_of = self.name_tooltip
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        h.setStretchLastSection(False)
        for c, w in zip(range(len(COLUMNS)), (120, 36, 120, 46, 42, 46, 52, 52)):
            self.table.setColumnWidth(c, w)
        h.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)  # the room the window gives
        self.table.clicked.connect(self._cell_clicked)
        self.table.doubleClicked.connect(self._row_activated)
        self.table.activated.connect(self._row_activated)  # Enter on a row

        self.won_btn = QPushButton("Images won")
        self.won_btn.setToolTip("The images the selected name wins at this level (double-click a row)")
        self.won_btn.clicked.connect(lambda: self.open_current("won"))
        self.taken_btn = QPushButton("Images taken")
        self.taken_btn.setToolTip("The images of other classes the selected name wins at this level")
        self.taken_btn.clicked.connect(lambda: self.open_current("taken"))
        self.flips_btn = QPushButton("Flips")
        self.flips_btn.setToolTip("The images that change from right to wrong, or back, when the selected name "
                                  "enters its class's list")
        self.flips_btn.clicked.connect(lambda: self.open_current("flips"))
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._enable())

        self.empty = QLabel(NO_NAMES)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.empty.setStyleSheet("color: #555; padding: 12px;")

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.harmful_title)
        tl.addWidget(self.harmful_list)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addLayout(_controls(_labelled("backbone:", self.backbone), _labelled("level:", self.level)))
        bl.addLayout(_controls(self.search, self.entering_only))
        bl.addWidget(self.summary)
        bl.addWidget(self.table, 1)
        bl.addLayout(_controls(self.won_btn, self.taken_btn, self.flips_btn))
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([150, 450])
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.splitter)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.stack)
        self._enable()

    # ---------------------------------------------------------------- data

    def set_results(self, results: ResultsData) -> None:
        """Read the run's names (again only when names.csv changed), on a pool thread."""
        self.results = results
        run_dir = results.run_dir
        if results.status == "running":  # the editor keeps the colours of the last finished run meanwhile
            if self._loaded_key != LIVE:
                self._loaded_key = LIVE
                self._generation += 1
                self.empty.setText(LIVE)
                self.stack.setCurrentWidget(self.empty)
            return
        path = Path(run_dir) / NAMES_FILE if run_dir else None
        key = (run_dir, path.stat().st_mtime_ns if path is not None and path.is_file() else None)
        if key == self._loaded_key:
            return
        self._loaded_key = key
        self._generation += 1
        gen = self._generation
        if not run_dir:
            self._set_names(None, "No run yet.")
            return
        self.summary.setText("reading the names…")
        self.loading = True

        pred_path = results.predictions_path

        def read() -> tuple[Optional[pd.DataFrame], Any]:
            df, why = read_names(str(run_dir))
            if df is None:
                return None, why
            syn = synonym_rows(df)
            effects = {b: NameEffects.from_names(d, b, str(run_dir))
                       for b, d in syn.groupby(syn["backbone"].astype(str), sort=False)}
            return syn, (pd.DataFrame(), effects)

        def rank(syn: pd.DataFrame, effects: dict) -> pd.DataFrame:
            """Second, and slower (it reads whose images each name took): the engine's harmful names."""
            harmful = harmful_for(syn, harmful_predictions(pred_path))
            for b, e in effects.items():
                e.set_harmful(_of_backbone(harmful, b))
            return harmful

        def ranked(harmful: pd.DataFrame) -> None:
            if gen == self._generation:
                self.loading = False
                self.harmful = harmful
                self._fill_harmful()
                self.effects_changed.emit(self.effects)  # the editor's "Remove harmful names…"

        def done(out: tuple[Optional[pd.DataFrame], Any]) -> None:
            if gen != self._generation:
                return
            self._set_names(*out)
            if out[0] is None:
                self.loading = False
                return
            syn, effects = out[0], out[1][1]
            self.harmful_title.setText("<b>Most harmful names</b> · ranking them…")
            run_task(lambda: rank(syn, effects), ranked, rank_failed, context=self)

        def rank_failed(e: Exception, _tb: str) -> None:
            if gen == self._generation:
                self.loading = False
                self.harmful_title.setText(f"<b>Most harmful names</b> · cannot rank them: {html.escape(str(e))}")

        def failed(e: Exception, _tb: str) -> None:
            if gen == self._generation:
                self.loading = False
                self._set_names(None, f"cannot read the names of {run_dir}: {e}")

        run_task(read, done, failed, context=self)

    def _set_names(self, df: Optional[pd.DataFrame], harmful: Any = "") -> None:
        self.names = df
        self._by_key = {}
        if df is None or df.empty:
            self.harmful = pd.DataFrame()
            self.empty.setText(harmful if isinstance(harmful, str) and harmful else NO_NAMES)
            self.stack.setCurrentWidget(self.empty)
            refill_combo(self.backbone, [])
            refill_combo(self.level, [])
            self.model.set_frame(pd.DataFrame(columns=[c for _h, c, _t in COLUMNS]))
            self.harmful_list.clear()
            self.effects = None
            self.effects_changed.emit(None)
            self.drawn.emit()
            return
        self.harmful, self._effects = harmful if isinstance(harmful, tuple) else (harmful, {})
        self.stack.setCurrentWidget(self.splitter)
        refill_combo(self.backbone, [str(b) for b in pd.unique(df["backbone"].astype(str))])
        self._backbone_changed()

    def _backbone_changed(self, *_args: Any) -> None:
        df = self.names
        if df is None:
            return
        b = self.backbone.currentText()
        d = df[df["backbone"].astype(str) == b]
        levels = [str(int(v)) for v in sorted(pd.unique(d["level"].dropna()))]
        refill_combo(self.level, levels, prefer_last=True)
        if self.level.currentIndex() < 0 and levels:
            self.level.setCurrentIndex(len(levels) - 1)
        self.effects = self._effects.get(b)
        if self.effects is None:
            self.effects = self._effects[b] = NameEffects.from_names(d, b, self.results.run_dir or "",
                                                                     self._harmful_of(b))
        self.model.effects = self.effects
        self._fill_harmful()
        self._redraw()
        self.effects_changed.emit(self.effects)

    def _harmful_of(self, backbone: str) -> pd.DataFrame:
        return _of_backbone(self.harmful, backbone)

    def _fill_harmful(self) -> None:
        self.harmful_list.clear()
        rows = self._harmful_of(self.backbone.currentText())
        for r in rows.head(HARMFUL_TOP).to_dict("records"):
            item = QListWidgetItem(harmful_text(r))
            item.setData(Qt.ItemDataRole.UserRole, (str(r["class"]), str(r["name"]), int(r["level"])))
            item.setToolTip(self.name_tooltip(str(r["class"]), str(r["name"])))
            self.harmful_list.addItem(item)
        n = len(rows)
        self.harmful_title.setText(
            f"<b>Most harmful names</b> · {self.backbone.currentText()}" + (
                f" · {min(n, HARMFUL_TOP)} of {n}" if n else " · none: no name takes more than it brings"))

    def frame_at(self, backbone: str, level: int) -> pd.DataFrame:
        """names.csv's rows for one backbone and level, in label order and rank (kept per key)."""
        key = (backbone, level)
        hit = self._by_key.get(key)
        if hit is None and self.names is not None:
            df = self.names
            d = df[(df["backbone"].astype(str) == backbone) & (df["level"].astype(int) == level)]
            order = {c: i for i, c in enumerate(self.results.classes() or pd.unique(d["class"].astype(str)))}
            d = d.assign(_o=d["class"].astype(str).map(order).fillna(len(order)))
            hit = self._by_key[key] = d.sort_values(["_o", "rank"], kind="stable").drop(columns="_o")
        return hit if hit is not None else pd.DataFrame()

    def _redraw(self, *_args: Any) -> None:
        if self.names is None or not self.level.currentText():
            return
        b, level = self.backbone.currentText(), int(self.level.currentText())
        d = self.frame_at(b, level)
        text = self.search.text().strip().casefold()
        if text:
            d = d[d["class"].astype(str).str.casefold().str.contains(text, regex=False)
                  | d["name"].astype(str).str.casefold().str.contains(text, regex=False)]
        if self.entering_only.isChecked():
            d = d[entering_rows(d, self._levels())]
        self.shown = _Shown(b, level)
        self.model.set_frame(d)
        n_classes = d["class"].nunique() if len(d) else 0
        taken = pd.to_numeric(d["won_from_other_classes"], errors="coerce").sum() if len(d) else 0
        self.summary.setText(f"{len(d)} names of {n_classes} classes at {level} name(s) per class · "
                             f"{fmt_count(taken)} images won by another class's name · "
                             "click <i>won</i> or <i>taken</i> for the images, <i>net</i> for the flips")
        self._enable()
        self.drawn.emit()

    def _levels(self) -> list[int]:
        return [int(self.level.itemText(i)) for i in range(self.level.count())]

    # ---------------------------------------------------------------- words

    def name_tooltip(self, cls: str, name: str) -> str:
        """The name's numbers at every level of the backbone shown."""
        if self.effects is None:
            return ""
        return self.effects.tooltip(cls, name, per_level=True)

    # ---------------------------------------------------------------- opening images

    def selection_for(self, view_row: int, what: str) -> Optional[Any]:
        """The gallery selection behind a row: ``won``, ``taken`` or ``flips``."""
        if view_row < 0 or view_row >= self.model.rowCount():
            return None
        r = self.model.record(view_row)
        b, level, cls, name = self.shown.backbone, self.shown.level, str(r["class"]), str(r["name"])
        if what == "flips":
            enter = self.effects.entered_at(cls, name) if self.effects is not None else None
            levels = self._levels()
            if enter is None or enter not in levels or levels.index(enter) == 0:
                return None
            return NameFlips(b, levels[levels.index(enter) - 1], enter, cls, name)
        return NameImages(b, level, cls, name, part=what)

    def open_row(self, view_row: int, what: str) -> bool:
        sel = self.selection_for(view_row, what)
        if sel is not None:
            self.images_requested.emit(sel)
        return sel is not None

    def open_current(self, what: str) -> bool:
        return self.open_row(self.table.currentIndex().row(), what)

    def _cell_clicked(self, index: QModelIndex) -> None:
        what = {COL_WON: "won", COL_OWN: "won", COL_TAKEN: "taken", COL_NET: "flips"}.get(index.column())
        if what is not None:
            self.open_row(index.row(), what)

    def _row_activated(self, index: QModelIndex) -> None:
        if index.isValid() and index.column() not in (COL_WON, COL_OWN, COL_TAKEN, COL_NET):
            self.open_row(index.row(), "won")

    def _enable(self) -> None:
        row = self.table.currentIndex().row()
        ok = 0 <= row < self.model.rowCount()
        self.won_btn.setEnabled(ok)
        self.taken_btn.setEnabled(ok)
        self.flips_btn.setEnabled(ok and self.selection_for(row, "flips") is not None)

    def select_name(self, cls: str, name: str, level: Optional[int] = None) -> int:
        """Show ``level`` and select the name's row (clearing a filter that hides it); its view row."""
        if level is not None and str(level) != self.level.currentText():
            self.level.setCurrentText(str(level))
        row = self.model.view_row_of(cls, name)
        if row < 0 and (self.search.text() or self.entering_only.isChecked()):
            self.search.clear()
            self.entering_only.setChecked(False)
            row = self.model.view_row_of(cls, name)
        if row >= 0:
            ix = self.model.index(row, COL_NAME)
            self.table.setCurrentIndex(ix)
            self.table.scrollTo(ix, QAbstractItemView.ScrollHint.PositionAtCenter)
            # again once the new rows are laid out (a level change resets the model)
            QTimer.singleShot(0, lambda: self.table.scrollTo(self.table.currentIndex(),
                                                             QAbstractItemView.ScrollHint.PositionAtCenter))
        return row

    def _harmful_clicked(self, item: QListWidgetItem) -> None:
        cls, name, level = item.data(Qt.ItemDataRole.UserRole)
        self.select_name(cls, name, level)

    def _harmful_activated(self, item: QListWidgetItem) -> None:
        cls, name, level = item.data(Qt.ItemDataRole.UserRole)
        row = self.select_name(cls, name, level)
        if row >= 0:
            self.open_row(row, "taken")


# ---------------------------------------------------------------- the engine's harmful names


def harmful_for(names: pd.DataFrame, predictions: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """The engine's harmful names of every backbone, each backbone's worst first (pool thread); with
    predictions.csv, from how many classes each takes its images."""
    from core.results.names import harmful_names

    parts = [harmful_names(names, top=None, backbone=b, predictions=predictions)
             for b in pd.unique(names["backbone"].astype(str))]
    parts = [p for p in parts if p is not None and len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def harmful_text(row: dict) -> str:
    """The engine's sentence for one harmful name, as plain text (its *emphasis* becomes quotes)."""
    import re

    from core.results.names import name_sentence

    return re.sub(r"\*([^*]+)\*", r"“\1”", name_sentence(row))


def preview() -> QWidget:
    """The view on a run folder given on the command line."""
    import sys

    w = NamesView()
    w.resize(1000, 700)
    if len(sys.argv) > 1:
        r = ResultsData(run_dir=sys.argv[1], status="completed")
        w.set_results(r)
    w.setWindowTitle("semscale — names preview")
    return w


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
