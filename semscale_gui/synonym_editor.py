"""Synonym editor: classes (rows) × ranked names (columns), so level k is simply the first
k columns.

Edit a cell to rename, type into the first empty cell of a row to add, Delete to remove,
Ctrl+Shift+←/→ (or drag a name within its row) to change its rank; every edit is undoable.
Names used by two classes are tinted red with a tooltip, classes without names or without
images get a warning icon; the list under the table explains each warning. *Suggest…*
asks WordNet or the selected backbone for more names (on a worker thread) and lets the
user review them before they are added as one undoable edit. The right side holds the
prompt templates and a preview of what each level contains.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Optional, Sequence

from PySide6.QtCore import QAbstractTableModel, QMimeData, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QFont, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QInputDialog, QLabel, QListWidget,
    QListWidgetItem, QPlainTextEdit, QProgressBar, QPushButton, QSplitter, QTableView, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget, QGroupBox, QMenu, QToolButton,
)

from core.util.names import name_key

from semscale_gui import settings
from semscale_gui.dialogs import show_error
from semscale_gui.icons import icon
from semscale_gui.labels_document import LabelsDocument
from semscale_gui.suggest_dialog import SuggestDialog
from semscale_gui.suggest_job import SuggestedName, SuggestOutcome, SuggestRequest, SuggestionRunner
from semscale_gui.suggest_review import SuggestionReview
from semscale_gui.template_editor import TemplateEditor
from semscale_gui.widgets import make_action, single_shot_timer, text_toolbar

DUP_BRUSH = QBrush(QColor("#f8d0cc"))
LEVEL_BRUSH = QBrush(QColor("#e4eef8"))
MIME = "application/x-semscale-name"


def _runs(rows: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted row numbers as (first, last) runs of consecutive rows."""
    out: list[tuple[int, int]] = []
    for r in rows:
        if out and r == out[-1][1] + 1:
            out[-1] = (out[-1][0], r)
        else:
            out.append((r, r))
    return out


class SynonymTableModel(QAbstractTableModel):
    """Rows = classes, columns = ranks (+1 empty column to type a new name into)."""

    def __init__(self, doc: LabelsDocument, parent=None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.highlight_level = 0
        self._dups: dict[str, list[str]] = {}
        self._classes: list[str] = []
        self._names: dict[str, tuple[str, ...]] = {}  # what the view was last told about
        self._columns = 1
        self.effects: Any = None  # semscale_gui.name_effects.NameEffects of the last run (colours, tooltips)
        doc.changed.connect(self._doc_changed)
        self._reset()

    def _reset(self) -> None:
        self.beginResetModel()
        self._take_state()
        self.endResetModel()

    def _take_state(self) -> None:
        self._classes = self.doc.classes
        self._names = {c: tuple(self.doc.names(c)) for c in self._classes}
        self._dups = self.doc.duplicates()
        self._columns = self.doc.max_names + 1

    def _doc_changed(self) -> None:
        """Tell the view only what changed: a cell edit at 1,000 × 16 names must not reset
        the model (which drops the selection and makes the view re-measure every row).

        Rows whose names changed, and rows whose names became or stopped being duplicates,
        get ``dataChanged``; a longest list that grew or shrank inserts or removes columns.
        Adding, removing or reordering classes resets.
        """
        classes = self.doc.classes
        if classes != self._classes:
            self._reset()
            return
        old_names, old_dups = self._names, self._dups
        names = {c: tuple(self.doc.names(c)) for c in classes}
        dups = self.doc.duplicates()
        row_of = {c: i for i, c in enumerate(classes)}
        rows = {i for i, c in enumerate(classes) if names[c] != old_names.get(c)}
        for key in (set(dups) ^ set(old_dups)) | {k for k in dups if dups[k] != old_dups.get(k)}:
            for c in dups.get(key, []) + old_dups.get(key, []):
                if c in row_of:
                    rows.add(row_of[c])
        columns, old_columns = self.doc.max_names + 1, self._columns
        if columns > self._columns:
            self.beginInsertColumns(QModelIndex(), self._columns, columns - 1)
            self._names, self._dups, self._columns = names, dups, columns
            self.endInsertColumns()
        elif columns < self._columns:
            self.beginRemoveColumns(QModelIndex(), columns, self._columns - 1)
            self._names, self._dups, self._columns = names, dups, columns
            self.endRemoveColumns()
        else:
            self._names, self._dups = names, dups
        if columns != old_columns:  # the "+ add" column moved
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, columns - 1)
        last = self.columnCount() - 1
        for lo, hi in _runs(sorted(rows)):
            self.dataChanged.emit(self.index(lo, 0), self.index(hi, last))
            self.headerDataChanged.emit(Qt.Orientation.Vertical, lo, hi)

    def set_highlight_level(self, level: int) -> None:
        if level == self.highlight_level:
            return
        self.highlight_level = level
        if self.rowCount() and self.columnCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, self.columnCount() - 1),
                                  [Qt.ItemDataRole.BackgroundRole])

    def class_at(self, row: int) -> str:
        return self._classes[row]

    def row_of(self, cls: str) -> int:
        return self._classes.index(cls) if cls in self._classes else -1

    # ---------------------------------------------------------------- Qt API

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._classes)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else self._columns

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        cls = self._classes[index.row()]
        names = self.doc.names(cls)
        col = index.column()
        name = names[col] if col < len(names) else None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return name or ""
        if role == Qt.ItemDataRole.BackgroundRole:
            if name is not None and self.effects is not None and self.effects.measured(cls, name):
                brush = self.effects.brush(cls, name)  # the last run's effect; a shared name is set in italics
                if brush is not None:
                    return brush
            elif name is not None and name_key(name) in self._dups:
                return DUP_BRUSH
            if name is not None and col < self.highlight_level:
                return LEVEL_BRUSH
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if name is None:
                return "type here to add a name" if col == len(names) else None
            others = [o for o in self._dups.get(name_key(name), []) if o != cls]
            measured = self.effects.tooltip(cls, name) if self.effects is not None else ""
            if others:
                return f"'{name}' also appears under " + ", ".join(f"'{o}'" for o in others) + \
                    ": an image of either class predicted as this name counts for the first class listed" + \
                    (f"\n{measured}" if measured else "")
            return f"rank {col + 1} of {cls}" + (" (canonical name)" if col == 0 else "") + \
                (f"\n{measured}" if measured else "")
        if role == Qt.ItemDataRole.FontRole and name is not None and self.effects is not None \
                and name_key(name) in self._dups and self.effects.measured(cls, name):
            f = QFont()
            f.setItalic(True)
            return f
        if role == Qt.ItemDataRole.ForegroundRole and name is None:
            return QBrush(QColor("#999999"))
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                if section == self._columns - 1:
                    return "+ add"
                return "1 · canonical" if section == 0 else str(section + 1)
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"names of rank {section + 1}: level k uses ranks 1…k"
            return None
        if section >= len(self._classes):
            return None
        cls = self._classes[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return cls
        if role == Qt.ItemDataRole.DecorationRole:
            bad = not self.doc.names(cls) or (self.doc.data_classes and cls not in self.doc.data_classes)
            return icon("warning") if bad else None
        if role == Qt.ItemDataRole.ToolTipRole:
            if not self.doc.names(cls):
                return "no names: the class name will be used"
            if self.doc.data_classes and cls not in self.doc.data_classes:
                return "no images of this class in the dataset"
            return f"{len(self.doc.names(cls))} names"
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.ItemIsDropEnabled
        n = len(self.doc.names(self._classes[index.row()]))
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDropEnabled
        if index.column() <= n:
            f |= Qt.ItemFlag.ItemIsEditable
        if index.column() < n:
            f |= Qt.ItemFlag.ItemIsDragEnabled
        return f

    def setData(self, index: QModelIndex | QPersistentModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        cls = self._classes[index.row()]
        n = len(self.doc.names(cls))
        text = str(value).strip()
        if index.column() < n:
            self.doc.rename(cls, index.column(), text)
        elif text:
            self.doc.insert_name(cls, n, text)
        return True

    # ---------------------------------------------------------------- drag a name within its row

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        md = QMimeData()
        if indexes:
            ix = indexes[0]
            md.setData(MIME, f"{ix.row()},{ix.column()}".encode())
        return md

    def canDropMimeData(self, data: QMimeData, action, row: int, column: int, parent) -> bool:
        if not data.hasFormat(MIME) or not parent.isValid():
            return False
        src_row, _ = (int(x) for x in bytes(data.data(MIME)).decode().split(","))
        return src_row == parent.row()

    def dropMimeData(self, data: QMimeData, action, row: int, column: int, parent) -> bool:
        if not self.canDropMimeData(data, action, row, column, parent):
            return False
        src_row, src_col = (int(x) for x in bytes(data.data(MIME)).decode().split(","))
        cls = self._classes[src_row]
        dest = min(parent.column(), len(self.doc.names(cls)) - 1)
        self.doc.move_name(cls, src_col, dest)
        return False  # the document already moved it; Qt must not remove the source


class SynonymEditor(QWidget):
    """Edit ranked names per class, templates, and preview the levels."""

    labels_changed = Signal()  # after any edit (debounced)
    status_message = Signal(str)

    def __init__(self, doc: Optional[LabelsDocument] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.doc = doc or LabelsDocument(self)
        self.levels: list[int] = []
        self._levels_text = "auto"
        self.model = SynonymTableModel(self.doc, self)
        self.suggester = SuggestionRunner(self)
        self.suggest_dialog: Optional[SuggestDialog] = None
        self.review: Optional[SuggestionReview] = None
        self._backbones: list[tuple[str, Any]] = []
        self._cache_dir: Optional[str] = None
        self._use_cache = True
        self._build()
        self._debounce = single_shot_timer(self, 250, self.labels_changed)
        self._preview_dirty = True
        self._preview_timer = single_shot_timer(self, 150, self.fill_level_preview)
        self.doc.changed.connect(self._on_doc_changed)
        self._on_doc_changed()

    # ---------------------------------------------------------------- layout

    def _build(self) -> None:
        tb = text_toolbar()
        self.undo_action = self.doc.undo_stack.createUndoAction(self, "Undo")
        self.undo_action.setIcon(icon("undo"))
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.doc.undo_stack.createRedoAction(self, "Redo")
        self.redo_action.setIcon(icon("redo"))
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)

        def act(text: str, ico: str, slot, shortcut=None, tip: str = "") -> QAction:
            return make_action(self, text, ico, slot, tip or text, shortcut, add_to=self,
                               context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

        self.add_name_action = act("Add name", "add", self.add_name, "Ctrl+Return", "Insert a name after the selected one")
        self.remove_name_action = act("Remove", "remove", self.remove_selected, QKeySequence.StandardKey.Delete,
                                      "Remove the selected name")
        self.rank_up_action = act("Rank up", "left", lambda: self.move_selected(-1), "Ctrl+Shift+Left",
                                  "Move the selected name one rank earlier")
        self.rank_down_action = act("Rank down", "right", lambda: self.move_selected(+1), "Ctrl+Shift+Right",
                                    "Move the selected name one rank later")
        self.add_class_action = act("Add class…", "add", self.add_class_dialog)
        self.remove_class_action = act("Remove class", "remove", self.remove_current_class)
        self.import_action = act("Import…", "import", self.import_dialog, None, "Import a labels CSV or JSON")
        self.export_action = act("Export…", "export", self.export_dialog, None, "Save the names as CSV or JSON")
        self.save_action = act("Save", "export", self.save, QKeySequence.StandardKey.Save,
                               "Save the names to the file they were opened from (Ctrl+S)")
        self.source_path: Optional[Path] = None  # the labels file the names came from (Save writes it)
        self.suggest_class_action = act("Suggest…", "suggest", self.suggest_for_selected, "Ctrl+Shift+S",
                                        "Suggest more names for the selected class (WordNet or embedding "
                                        "neighbours), to review before adding (Ctrl+Shift+S)")
        self.suggest_all_action = act("Suggest all…", "suggest", self.suggest_for_all, None,
                                      "Suggest more names for every class, to review before adding")
        for a in (self.undo_action, self.redo_action):
            self.addAction(a)
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        tb.addAction(self.undo_action)
        tb.addAction(self.redo_action)
        tb.addSeparator()
        for a in (self.add_name_action, self.remove_name_action, self.rank_up_action, self.rank_down_action):
            tb.addAction(a)
        tb.addSeparator()
        classes_btn = QToolButton()
        classes_btn.setText("Classes")
        classes_btn.setIcon(icon("dataset"))
        classes_btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        classes_btn.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(classes_btn)
        menu.addAction(self.add_class_action)
        menu.addAction(self.remove_class_action)
        menu.addSeparator()
        self.benchmark_menu = menu.addMenu("CLIP_benchmark class names")
        self.benchmark_menu.setToolTip("Replace the names with LAION CLIP_benchmark's curated names of a benchmark")
        self.benchmark_menu.aboutToShow.connect(self._fill_benchmark_menu)
        classes_btn.setMenu(menu)
        tb.addWidget(classes_btn)
        tb.addSeparator()
        tb.addAction(self.suggest_class_action)
        tb.addAction(self.suggest_all_action)
        tb.addSeparator()
        tb.addAction(self.import_action)
        tb.addAction(self.save_action)
        tb.addAction(self.export_action)
        for a in (self.undo_action, self.redo_action, self.rank_up_action, self.rank_down_action,
                  self.import_action, self.export_action):
            btn = tb.widgetForAction(a)
            if btn is not None:  # icon-only (tooltips name them) so the row fits narrow windows
                btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.undo_action.setToolTip("Undo (Ctrl+Z)")
        self.redo_action.setToolTip("Redo (Ctrl+Shift+Z)")
        self.rank_up_action.setToolTip("Rank up: move the selected name one rank earlier (Ctrl+Shift+Left)")
        self.rank_down_action.setToolTip("Rank down: move the selected name one rank later (Ctrl+Shift+Right)")
        self.import_action.setToolTip("Import a labels CSV or JSON (Ctrl+I)")
        self.export_action.setToolTip("Export the names as CSV (with each name's source) or JSON (Ctrl+E)")
        self.toolbar = tb

        # shown while a suggestion job runs: what it is doing, and a way to stop it
        self.suggest_status = QLabel()
        self.suggest_bar = QProgressBar()
        self.suggest_bar.setRange(0, 0)
        self.suggest_bar.setMaximumWidth(120)
        self.suggest_bar.setMaximumHeight(14)
        self.suggest_cancel = QPushButton(icon("stop"), "Stop")
        self.suggest_cancel.clicked.connect(self.suggester.cancel)
        busy = QWidget()
        bl = QHBoxLayout(busy)
        bl.setContentsMargins(4, 0, 4, 0)
        bl.addWidget(self.suggest_bar)
        bl.addWidget(self.suggest_status, 1)
        bl.addWidget(self.suggest_cancel)
        busy.setVisible(False)
        self.suggest_busy = busy
        r = self.suggester
        r.progress.connect(self.suggest_status.setText)
        r.started.connect(lambda req: self.suggest_status.setText(f"Suggesting names for {req.scope} …"))
        r.busy_changed.connect(self._suggest_busy_changed)
        r.finished.connect(self._suggestions_ready)
        r.failed.connect(self._suggestions_failed)
        r.cancelled.connect(lambda: self.status_message.emit("Suggestions cancelled"))

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed
                                   | QAbstractItemView.EditTrigger.AnyKeyPressed)
        self.table.setDragEnabled(True)
        self.table.setAcceptDrops(True)
        self.table.setDropIndicatorShown(True)
        self.table.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.table.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setDefaultSectionSize(120)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.setAlternatingRowColors(False)
        self.table.selectionModel().currentChanged.connect(lambda *_: self._update_suggest_actions())
        # every edit resets the model; keep the user's place (and so what "Suggest…" applies to)
        self._kept_cell: Optional[tuple[str, int]] = None
        self.model.modelAboutToBeReset.connect(self._keep_cell)
        self.model.modelReset.connect(self._restore_cell)
        # measuring every row is what made an edit slow at 1,000 classes: only when the shape changes
        self.model.modelReset.connect(self._fit_columns)
        self.model.columnsInserted.connect(self._fit_columns)

        self.issues = QListWidget()
        self.issues.setMaximumHeight(130)
        self.issues.itemActivated.connect(self._goto_issue)
        self.issues.itemClicked.connect(self._goto_issue)
        self.issues_title = QLabel("Warnings")
        self.fix_missing = QLabel('<a href="add">Add the dataset\'s missing classes</a>')
        self.fix_missing.linkActivated.connect(lambda _: self.doc.add_classes(
            [c for c in self.doc.data_classes if c not in self.doc.classes]))
        self.fix_missing.setVisible(False)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(tb)
        ll.addWidget(self.suggest_busy)
        ll.addWidget(self.table, 1)
        from semscale_gui.name_effects import EditorEffects

        self.name_effects = EditorEffects(self)  # colours by the last run's measured effects, "Remove harmful…"
        ll.addWidget(self.name_effects.bar)
        ll.addWidget(self.issues_title)
        ll.addWidget(self.fix_missing)
        ll.addWidget(self.issues)

        self.templates = TemplateEditor()
        tbox = QGroupBox("Prompt templates")
        tl = QVBoxLayout(tbox)
        tl.addWidget(self.templates)

        self.level_table = QTableWidget(0, 5)
        self.level_table.setHorizontalHeaderLabels(["level", "categories", "pooled", "< k names", "from"])
        for c, tip in enumerate(["names per class (k)",
                                 "categories in flat mode: one per distinct name (a name listed under several "
                                 "classes is one category), as the run scores them",
                                 "categories in pooled mode: one per distinct set of names",
                                 "classes with fewer than k names (they use all they have)",
                                 "where the level comes from"]):
            self.level_table.horizontalHeaderItem(c).setToolTip(tip)
        self.level_table.verticalHeader().setVisible(False)
        self.level_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.level_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.level_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.level_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.level_table.horizontalHeader().setStretchLastSection(True)
        self.level_table.itemSelectionChanged.connect(self._level_selected)
        self.level_categories = QPlainTextEdit()
        self.level_categories.setReadOnly(True)
        self.level_categories.setPlaceholderText("Select a level to see its categories")
        lbox = QGroupBox("Levels preview")
        lv = QVBoxLayout(lbox)
        self.levels_caption = QLabel()
        self.levels_caption.setWordWrap(True)
        lv.addWidget(self.levels_caption)
        lv.addWidget(self.level_table, 2)
        lv.addWidget(self.level_categories, 3)

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(tbox)
        right.addWidget(lbox)
        from semscale_gui.whatif_panel import WhatIfPanel  # live what-if: edits re-scored against the last run

        self.whatif = WhatIfPanel(self)
        right.addWidget(self.whatif)
        right.setSizes([220, 480])

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([820, 380])
        lay = QVBoxLayout(self)
        lay.addWidget(split)

    # ---------------------------------------------------------------- public API

    def set_levels_text(self, text: str) -> None:
        """Levels as typed in the run panel ("auto" or "1,2,4,8")."""
        self._levels_text = text or "auto"
        self._update_levels()

    def set_data_classes(self, classes: Sequence[str]) -> None:
        self.doc.data_classes = list(classes)
        if classes:
            first = classes[0]
            names = self.doc.names(first)
            self.templates.set_example_name(names[0] if names else first)
        self._on_doc_changed()
        self.model._reset()

    def load_file(self, path: str | Path, undoable: bool = False) -> bool:
        """Load a labels file; an error is shown and the current names are kept."""
        from core.util.errors import InputError
        from core.labels.labelset import load_labels

        try:
            labels = load_labels(path)
        except InputError as e:
            show_error(self, "Cannot read the labels file", str(e))
            return False
        self.doc.load_labelset(labels, undoable=undoable, text=f"Import {Path(path).name}")
        self.source_path = Path(path)
        self.save_action.setToolTip(f"Save the names to {self.source_path} (Ctrl+S)")
        for w in labels.warnings:
            if "duplicate name" in w:
                self.status_message.emit(w)
        return True

    def _fill_benchmark_menu(self) -> None:
        """Listed when first opened: the names come from the installed clip_benchmark package."""
        if self.benchmark_menu.actions():
            return
        from core.labels.presets import PREFIX, preset_names
        from core.util.errors import InputError

        try:
            names = preset_names()
        except InputError as e:
            a = self.benchmark_menu.addAction("clip_benchmark is not installed")
            a.setEnabled(False)
            a.setToolTip(str(e))
            return
        for name in names:
            a = self.benchmark_menu.addAction(name)
            a.triggered.connect(lambda _checked=False, n=name: self.load_benchmark_classes(PREFIX + n))

    def load_benchmark_classes(self, spec: str) -> bool:
        """Replace the names with a CLIP_benchmark preset, matched to the open dataset's classes (undoable)."""
        from core.labels.presets import preset_labels
        from core.util.errors import InputError

        try:
            labels = preset_labels(spec, dataset_classes=self.doc.data_classes or None)
        except InputError as e:
            show_error(self, "Cannot load the CLIP_benchmark names", str(e))
            return False
        self.doc.load_labelset(labels, undoable=True, text=f"Load {spec}")
        for w in labels.warnings:
            self.status_message.emit(w)
        return True

    def current_cell(self) -> Optional[tuple[str, int]]:
        ix = self.table.currentIndex()
        if not ix.isValid():
            return None
        return self.model.class_at(ix.row()), ix.column()

    def select_cell(self, cls: str, col: int) -> None:
        row = self.model.row_of(cls)
        if row >= 0:
            ix = self.model.index(row, max(0, min(col, self.model.columnCount() - 1)))
            self.table.setCurrentIndex(ix)
            self.table.scrollTo(ix)

    # ---------------------------------------------------------------- actions

    def add_name(self) -> None:
        cur = self.current_cell()
        if cur is None:
            return
        cls, col = cur
        n = len(self.doc.names(cls))
        pos = min(col + 1, n)
        base, k = "new name", 1
        existing = {name_key(x) for c in self.doc.classes for x in self.doc.names(c)}
        name = base
        while name_key(name) in existing:
            k += 1
            name = f"{base} {k}"
        self.doc.insert_name(cls, pos, name)
        self.select_cell(cls, pos)
        self.table.edit(self.table.currentIndex())

    def remove_selected(self) -> None:
        cur = self.current_cell()
        if cur is None:
            return
        cls, col = cur
        if col < len(self.doc.names(cls)):
            self.doc.remove_name(cls, col)
            self.select_cell(cls, min(col, max(0, len(self.doc.names(cls)) - 1)))

    def move_selected(self, step: int) -> None:
        cur = self.current_cell()
        if cur is None:
            return
        cls, col = cur
        n = len(self.doc.names(cls))
        dest = col + step
        if col < n and 0 <= dest < n:
            self.doc.move_name(cls, col, dest)
            self.select_cell(cls, dest)

    def add_class_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Add class", "Class name (as in the dataset):")
        if ok and name.strip():
            self.doc.add_class(name.strip())
            self.select_cell(name.strip(), 0)

    def remove_current_class(self) -> None:
        cur = self.current_cell()
        if cur is not None:
            self.doc.remove_class(cur[0])

    def import_dialog(self) -> None:
        start = settings.get_str("last/labels_dir", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(self, "Import labels", start, "Labels (*.csv *.json *.txt);;All files (*)")
        if path:
            settings.set_value("last/labels_dir", str(Path(path).parent))
            self.load_file(path, undoable=True)

    def save(self) -> Optional[Path]:
        """Write the names back to the file they were opened from (CSV or JSON, as it was)."""
        if self.source_path is None or self.source_path.suffix.lower() not in (".csv", ".json"):
            self.export_dialog()
            return None
        return self.export_to(self.source_path)

    def export_dialog(self) -> None:
        if self.source_path is not None:  # beside the file the names came from, not in the home folder
            start, name = str(self.source_path.parent), self.source_path.name
        else:
            start, name = settings.get_str("last/labels_dir", str(Path.home())), "labels.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Export labels", str(Path(start) / name),
                                              "CSV (*.csv);;JSON (*.json)")
        if path:
            settings.set_value("last/labels_dir", str(Path(path).parent))
            self.export_to(path)

    def export_to(self, path: str | Path) -> Optional[Path]:
        try:
            out = self.doc.save(path)
        except OSError as e:
            show_error(self, "Cannot save the labels", f"{path}: {e.strerror or e}")
            return None
        self.status_message.emit(f"Labels saved to {out}")
        return out

    def _fit_columns(self, *_args) -> None:
        self.table.resizeColumnsToContents()
        for c in range(self.model.columnCount()):
            self.table.setColumnWidth(c, max(90, min(220, self.table.columnWidth(c) + 16)))

    def _keep_cell(self) -> None:
        self._kept_cell = self.current_cell()

    def _restore_cell(self) -> None:
        cell, self._kept_cell = self._kept_cell, None
        if cell is not None and cell[0] in self.doc.classes:
            self.select_cell(*cell)
        elif self.model.rowCount():
            self.table.setCurrentIndex(self.model.index(0, 0))

    # ---------------------------------------------------------------- suggestions

    def set_run_context(self, backbones: Sequence[tuple[str, Any]], cache_dir: Optional[str] = None,
                        use_cache: bool = True) -> None:
        """The backbones ticked in the Run panel ((title, BackboneSpec), first = default) and the
        embedding cache the neighbour source should share with sweeps."""
        self._backbones = list(backbones)
        self._cache_dir, self._use_cache = cache_dir, use_cache

    def suggest_for_selected(self) -> Optional[SuggestDialog]:
        cur = self.current_cell()
        if cur is None:
            self.status_message.emit("Select a class (any of its names) to suggest names for it")
            return None
        return self.open_suggest_dialog([cur[0]])

    def suggest_for_all(self) -> Optional[SuggestDialog]:
        return self.open_suggest_dialog(self.doc.classes)

    def open_suggest_dialog(self, classes: Sequence[str]) -> Optional[SuggestDialog]:
        """Ask where the names should come from; the job starts when the dialog is accepted."""
        if not classes or self.suggester.busy:
            return None
        longest = max((len(self.doc.names(c)) for c in classes), default=0)
        dlg = SuggestDialog(classes, longest, self._backbones, sweep_templates=self.templates.value(),
                            cache_dir=self._cache_dir, use_cache=self._use_cache, parent=self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.accepted.connect(lambda: self.start_suggestions(dlg.request()))
        self.suggest_dialog = dlg
        dlg.open()
        return dlg

    def start_suggestions(self, request: SuggestRequest) -> bool:
        """Compute suggestions in the background; the review dialog opens when they arrive."""
        return self.suggester.start(self.doc.to_labelset(), request)

    def _suggest_busy_changed(self, busy: bool) -> None:
        self.suggest_busy.setVisible(busy)
        self._update_suggest_actions()

    def _update_suggest_actions(self) -> None:
        idle = not self.suggester.busy
        self.suggest_class_action.setEnabled(idle and self.current_cell() is not None)
        self.suggest_all_action.setEnabled(idle and bool(self.doc.classes))

    def _suggestions_ready(self, outcome: SuggestOutcome) -> None:
        review = SuggestionReview(outcome, self)
        review.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        review.accepted.connect(lambda: self.apply_suggestions(review.accepted_items()))
        self.review = review
        review.open()

    def _suggestions_failed(self, exc: Exception, message: str, details: str) -> None:
        from core.synonyms import WordNetUnavailable  # its message says where it looked and how to get one

        title = "WordNet is not available" if isinstance(exc, WordNetUnavailable) else "Cannot suggest names"
        show_error(self, title, message, details)

    def apply_suggestions(self, items: Sequence[SuggestedName]) -> int:
        """Append the accepted names (with their sources) as one undoable edit."""
        additions: dict[str, list[tuple[str, str]]] = {}
        for it in items:
            additions.setdefault(it.cls, []).append((it.name, it.source))
        n = len(items)
        added = self.doc.add_names(additions, f"Add {n} suggested name{'s' if n != 1 else ''}") if items else 0
        self.status_message.emit(f"Added {added} suggested name(s); Undo removes them all" if added
                                 else "No names added")
        return added

    # ---------------------------------------------------------------- reactions

    def _on_doc_changed(self) -> None:
        issues = self.doc.issues()
        self.issues.clear()
        for it in issues:
            item = QListWidgetItem(icon("warning"), it.message)
            item.setData(Qt.ItemDataRole.UserRole, (it.cls, it.index))
            self.issues.addItem(item)
        n_dup = sum(1 for i in issues if i.kind == "duplicate")
        self.issues_title.setText(
            f"Warnings: {len(issues)}" + (f" ({n_dup} duplicated names)" if n_dup else "") if issues
            else "Warnings: none — every class has names and no name is shared")
        self.fix_missing.setVisible(any(i.kind == "not-in-labels" for i in issues))
        self._update_levels()
        self._update_suggest_actions()
        self._debounce.start()

    def _goto_issue(self, item: QListWidgetItem) -> None:
        cls, idx = item.data(Qt.ItemDataRole.UserRole)
        self.select_cell(cls, max(idx, 0))

    def _update_levels(self) -> None:
        from core.util.errors import InputError
        from core.labels.labelset import parse_levels

        max_names = max(1, self.doc.max_names)
        auto = self._levels_text in ("", "auto")
        try:
            self.levels = parse_levels(self._levels_text, max_names)
            note = ""
        except InputError as e:
            self.levels = parse_levels("auto", max_names)
            auto = True
            note = f" <span style='color:#b00'>({html.escape(e.message)}; showing auto)</span>"
        infos = self.doc.level_info(self.levels, auto=auto)
        self._infos = infos
        self.levels_caption.setText(
            f"{len(self.doc.classes)} classes, up to {self.doc.max_names} names each; levels "
            f"{', '.join(map(str, self.levels))}{note}")
        sel = self.level_table.currentRow()
        self.level_table.blockSignals(True)
        self.level_table.setRowCount(len(infos))
        for r, info in enumerate(infos):
            for c, v in enumerate((info.level, info.n_categories, info.n_classes, info.n_short)):
                item = QTableWidgetItem()
                item.setData(Qt.ItemDataRole.DisplayRole, v)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.level_table.setItem(r, c, item)
            origin = QTableWidgetItem(info.origin)
            origin.setToolTip(info.origin)
            self.level_table.setItem(r, 4, origin)
        self.level_table.blockSignals(False)
        if infos:
            self.level_table.selectRow(sel if 0 <= sel < len(infos) else 0)
        self._level_selected()

    def _level_selected(self) -> None:
        row = self.level_table.currentRow()
        if row < 0 or row >= len(self.levels):
            self.model.set_highlight_level(0)
            return
        self.model.set_highlight_level(self.levels[row])
        self._preview_dirty = True
        self._preview_timer.start()  # the category text is built once typing pauses, and only when shown

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's API
        super().showEvent(event)
        if self._preview_dirty:
            self._preview_timer.start()

    def fill_level_preview(self) -> None:
        """The categories of the selected level (up to 500 classes), when the preview is on screen."""
        row = self.level_table.currentRow()
        if row < 0 or row >= len(self.levels) or not self.level_categories.isVisible():
            return
        self._preview_dirty = False
        k = self.levels[row]
        cats = self.doc.categories(k)
        lines = [f"{c}: {', '.join(v)}" for c, v in list(cats.items())[:500]]
        if len(cats) > 500:
            lines.append(f"… and {len(cats) - 500} more classes")
        infos = getattr(self, "_infos", [])
        info = infos[row] if row < len(infos) else None
        n = info.n_categories if info else sum(len(v) for v in cats.values())
        listed = sum(len(v) for v in cats.values())
        shared = f" ({listed} names listed; a name under several classes is one category)" if listed != n else ""
        origin = f"; {info.origin}" if info and info.origin else ""
        self.level_categories.setPlainText(f"Level {k}: {n} categories{shared}{origin} (highlighted in the table)\n"
                                           + "\n".join(lines))


def preview() -> QWidget:
    """The editor with the demo's ranked names (or a small built-in list)."""
    from core.labels.labelset import LabelSet

    try:
        from core.demo.data import demo_labels

        names = demo_labels()
    except ImportError:
        names = {"house": ["house", "cabin", "home"], "ball": ["ball", "sphere", "orb"], "moon": ["moon", "orb"]}
    w = SynonymEditor()
    w.doc.load_labelset(LabelSet(names=names))
    w.resize(1200, 700)
    w.setWindowTitle("semscale — synonym editor preview")
    return w


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
