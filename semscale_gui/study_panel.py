"""The Study tab: many datasets × backbones under one protocol, run as a queue.

The tab edits a :class:`core.study.study.Study` (open/save a TOML study file, add datasets and
backbones, set the shared protocol), runs it on the worker thread
(:class:`~semscale_gui.study_worker.StudyController`) with a status per dataset, and
shows the summaries the engine writes after every dataset: the aggregate plot and one
table per summary file. Double-clicking a dataset asks the window to open its run in
Results.
"""

from __future__ import annotations

import copy
import shutil
from functools import partial
from pathlib import Path
from typing import Any, Optional

import pandas as pd
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QDialog, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
    QLineEdit, QListWidget, QProgressBar, QPushButton, QSpinBox, QSplitter, QTableWidget, QTableWidgetItem,
    QTabWidget, QVBoxLayout, QWidget,
)

from semscale_gui import settings
from semscale_gui.backbone_picker import _ok_cancel_layout
from semscale_gui.dialogs import show_error
from semscale_gui.widgets import make_action, text_toolbar
from semscale_gui.study_plot import StudyPlot
from semscale_gui.study_worker import StudyController
from semscale_gui.tasks import run_task
from core.study.summary import run_path

SUMMARY_TABS = (("summary_by_level", "By level"), ("summary", "All rows"), ("thresholds", "Thresholds"),
                ("ensembles_summary", "Ensembles"), ("frequency_summary", "Frequency"), ("controls_summary", "Controls"))
STAGES = {"hash": "hashing", "encode-images": "encoding images", "encode-text": "encoding prompts",
          "score": "scoring", "ensembles": "ensembles", "load-model": "loading model"}
STATUS_TEXT = {"completed": "✔ completed", "skipped": "✔ up to date (not re-run)", "cancelled": "■ cancelled",
               "interrupted": "■ interrupted",
               "failed": "✖ failed", "queued": "… queued", "pending": "… not run yet"}


def default_out(study_file: Path) -> Path:
    """A study's results sit next to its file: ``<folder>/<stem>-results``."""
    return study_file.parent / f"{study_file.stem}-results"


def _row_browse(edit: QLineEdit, *buttons: QPushButton) -> QWidget:
    w = QWidget()
    row = QHBoxLayout(w)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit, 1)
    for b in buttons:
        row.addWidget(b)
    return w


def _row_browse_widgets(*widgets: QWidget) -> QWidget:
    w = QWidget()
    row = QHBoxLayout(w)
    row.setContentsMargins(0, 0, 0, 0)
    for x in widgets:
        row.addWidget(x, 1)
    return w


class DatasetDialog(QDialog):
    """Name, source (folder, file, tv:/hf: id, or a recent dataset), labels and templates."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a dataset to the study")
        self.name = QLineEdit()
        self.name.setPlaceholderText("folder name of its run, e.g. cifar10")
        self.path = QLineEdit()
        self.path.setPlaceholderText("ImageFolder, manifest, CIFAR folder, parquet, tv:CIFAR10, hf:org/name …")
        self.path.textChanged.connect(self._suggest_name)
        folder, file = QPushButton("Folder…"), QPushButton("File…")
        folder.clicked.connect(lambda: self._pick(self.path, folder=True))
        file.clicked.connect(lambda: self._pick(self.path, folder=False))
        self.recent = QComboBox()
        self.recent.addItem("(recent datasets)")
        from semscale_gui.dataset_browser import RECENT_KEY

        for p in settings.recent(RECENT_KEY):
            self.recent.addItem(p)
        self.recent.activated.connect(lambda i: i > 0 and self.path.setText(self.recent.itemText(i)))
        self.torchvision = QComboBox()
        self.torchvision.addItem("(torchvision dataset by name)")
        try:
            from core.data.tv import SPECS

            self.torchvision.addItems(sorted(SPECS))
        except ImportError:  # an engine without torchvision readers
            self.torchvision.setEnabled(False)
        self.torchvision.activated.connect(
            lambda i: i > 0 and self.path.setText(f"tv:{self.torchvision.itemText(i)}"))
        self.split = QLineEdit()
        self.split.setPlaceholderText("Hugging Face / torchvision split (empty: test, else validation, else the only one)")
        self.labels = QLineEdit()
        self.labels.setPlaceholderText("labels file (CSV/JSON); empty: the dataset's class names")
        lab = QPushButton("File…")
        lab.clicked.connect(lambda: self._pick(self.labels, folder=False))
        self.templates = QLineEdit()
        self.templates.setPlaceholderText("empty: the study's templates")
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Source", _row_browse(self.path, folder, file))
        form.addRow("", _row_browse_widgets(self.recent, self.torchvision))
        form.addRow("Split", self.split)
        form.addRow("Labels", _row_browse(self.labels, lab))
        form.addRow("Templates", self.templates)
        _ok_cancel_layout(self, form)
        self.resize(680, 250)

    def _pick(self, edit: QLineEdit, folder: bool) -> None:
        start = edit.text() or settings.get_str("last/dataset", "")
        path = (QFileDialog.getExistingDirectory(self, "Choose a folder", start) if folder
                else QFileDialog.getOpenFileName(self, "Choose a file", start)[0])
        if path:
            edit.setText(path)

    def _suggest_name(self, text: str) -> None:
        if self.name.isModified() or not text:
            return
        import re

        stem = Path(text.split(":", 1)[-1] if text[:3] in ("tv:", "hf:") else text).name.lower()
        if stem in ("images", "manifest.csv", "test.parquet") or "." in stem:
            stem = Path(text).parent.name if stem in ("images", "manifest.csv", "test.parquet") else Path(stem).stem
        self.name.setText(re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "dataset")

    def value(self):
        from core.study.study import StudyDataset

        t = self.templates.text().strip()
        return StudyDataset(name=self.name.text().strip(), path=self.path.text().strip(),
                            labels=self.labels.text().strip() or None, templates=t or None,
                            split=self.split.text().strip() or None)


class BackboneDialog(QDialog):
    """A backbone: a bundled demo model, an open_clip name with a tag, or a checkpoint file."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a backbone to the study")
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItems(["demo-vit", "demo-resnet", "ViT-B-32", "ViT-B-16", "RN50", "ViT-L-14"])
        self.pretrained = QLineEdit()
        self.pretrained.setPlaceholderText("open_clip tag, e.g. laion2b_s34b_b79k (see 'semscale models')")
        self.checkpoint = QLineEdit()
        self.checkpoint.setPlaceholderText("or a local checkpoint file")
        ck = QPushButton("File…")
        ck.clicked.connect(self._pick)
        self.label = QLineEdit()
        self.label.setPlaceholderText("optional display name")
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Pretrained", self.pretrained)
        form.addRow("Checkpoint", _row_browse(self.checkpoint, ck))
        form.addRow("Label", self.label)
        _ok_cancel_layout(self, form)
        self.resize(560, 200)

    def _pick(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Checkpoint", "", "Checkpoints (*.pt *.pth *.bin *.safetensors);;All (*)")
        if path:
            self.checkpoint.setText(path)

    def value(self):
        from core.models.openclip import BackboneSpec

        return BackboneSpec(model=self.model.currentText().strip(), pretrained=self.pretrained.text().strip() or None,
                            checkpoint=self.checkpoint.text().strip() or None, label=self.label.text().strip() or None)


class SummaryTable(QTableWidget):
    """A summary CSV as a read-only, sortable table (floats to 4 digits)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)

    def set_frame(self, df: pd.DataFrame) -> None:
        self.setSortingEnabled(False)
        self.clear()
        self.setColumnCount(len(df.columns))
        self.setRowCount(len(df))
        self.setHorizontalHeaderLabels([str(c) for c in df.columns])
        for r, row in enumerate(df.itertuples(index=False)):
            for c, v in enumerate(row):
                if isinstance(v, float):
                    whole = str(df.columns[c]).startswith("n_") and not pd.isna(v) and float(v).is_integer()
                    text = "" if pd.isna(v) else (f"{int(v)}" if whole else f"{v:.4f}")
                else:
                    text = str(v)
                item = QTableWidgetItem(text)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    item.setData(Qt.ItemDataRole.UserRole, v)
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(r, c, item)
        self.resizeColumnsToContents()
        self.setSortingEnabled(True)
        self.filter_rows(self._filter)

    _filter = ""

    def filter_rows(self, text: str) -> None:
        """Show only rows with a cell containing ``text`` (e.g. a dataset, a method, "(mean)")."""
        self._filter = text.strip().lower()
        for r in range(self.rowCount()):
            cells = (self.item(r, c) for c in range(self.columnCount()))
            hit = not self._filter or any(it is not None and self._filter in it.text().lower() for it in cells)
            self.setRowHidden(r, not hit)


class StudyPanel(QWidget):
    """Edit, run and read a study; see the module docstring."""

    open_run_requested = Signal(str)  # a run directory
    status_message = Signal(str)
    log_message = Signal(str, str)  # message, level: what the study did, for the Log
    study_finished = Signal(str, str)  # status, study folder
    summaries_loaded = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        from core.study.study import Study

        super().__init__(parent)
        self.study = Study()
        self.controller = StudyController(self)
        self.out_dir: Optional[Path] = None
        self.summaries: dict[str, pd.DataFrame] = {}
        self.statuses: dict[str, str] = {}
        self._build()
        self._wire()
        self._refresh_setup()

    # ---------------------------------------------------------------- layout

    def _build(self) -> None:
        tb = text_toolbar()
        act = partial(make_action, self, add_to=tb)  # act(text, icon, slot, tip)

        self.new_action = act("New", "", self.new_study, "Start an empty study")
        self.open_action = act("Open…", "open", self.open_dialog, "Open a study file (TOML)")
        self.save_action = act("Save", "export", self.save, "Save the study file")
        act("Save as…", "", self.save_as_dialog, "Save the study under another name")
        tb.addSeparator()
        self.demo_action = act("Demo study", "dataset", self.open_demo, "Write and open the offline three-dataset demo study")
        tb.addSeparator()
        self.run_action = act("Run all", "run", self.run_all, "Run every dataset that is not up to date")
        self.cancel_action = act("Cancel", "stop", self.cancel, "Stop after the current batch; finished datasets are kept")
        tb.addSeparator()
        act("Export summaries…", "export", self.export_dialog, "Copy every summary CSV and study.json to a folder")
        act("Export plot…", "export", self.export_plot_dialog, "Save the plot as PNG or SVG")
        self.export_report_action = act("Export report…", "export", self.export_report_dialog,
                                        "Save one HTML report of the study (the summary and every dataset)")

        # protocol
        self.levels = QLineEdit()
        self.levels.setPlaceholderText("1,2,4,8 (empty: 1, 2, 4 … up to the longest name list)")
        self.mode = QComboBox()
        self.mode.addItems(["flat", "pooled"])
        self.templates = QComboBox()
        self.templates.setEditable(True)
        self.templates.addItems(["simple", "plain", "openai"])
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("study folder: runs/<dataset>/ and the summary files")
        out_btn = QPushButton("…")
        out_btn.setFixedWidth(32)
        out_btn.clicked.connect(self._choose_out)
        proto = QGroupBox("Protocol (shared by every dataset)")
        form = QFormLayout(proto)
        form.addRow("Levels", self.levels)
        form.addRow("Mode", self.mode)
        form.addRow("Templates", self.templates)
        form.addRow("Seed", self.seed)
        form.addRow("Results folder", _row_browse(self.out_edit, out_btn))

        self.backbone_list = QListWidget()
        self.backbone_list.setMaximumHeight(72)
        add_bb, rm_bb = QPushButton("Add…"), QPushButton("Remove")
        add_bb.clicked.connect(self.add_backbone_dialog)
        rm_bb.clicked.connect(self.remove_backbone)
        bbox = QGroupBox("Backbones (all run on every dataset)")
        bl = QVBoxLayout(bbox)
        bl.addWidget(self.backbone_list)
        bl.addLayout(self._buttons(add_bb, rm_bb))

        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Dataset", "Status", "Source", "Labels"])
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideLeft)  # paths keep their file names; full text in tooltips
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setToolTip("Double-click a dataset to open its run in Results")
        add_ds, rm_ds = QPushButton("Add…"), QPushButton("Remove")
        add_ds.clicked.connect(self.add_dataset_dialog)
        rm_ds.clicked.connect(self.remove_dataset)
        dbox = QGroupBox("Datasets (one run folder each)")
        dl = QVBoxLayout(dbox)
        dl.addWidget(self.table, 1)
        dl.addLayout(self._buttons(add_ds, rm_ds))
        self.overall = QProgressBar()
        self.overall.setFormat("no study open")
        self.overall.setValue(0)
        self.state = QLabel("No study open: open a study file, or start from the demo study.")
        self.state.setWordWrap(True)
        dl.addWidget(self.overall)
        dl.addWidget(self.state)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(proto)
        ll.addWidget(bbox)
        ll.addWidget(dbox, 1)

        self.plot = StudyPlot()
        self.result_tabs = QTabWidget()
        self.result_tabs.addTab(self.plot, "Change vs level 1")
        self.tables: dict[str, SummaryTable] = {}
        self.table_pages: dict[str, QWidget] = {}
        for key, title in SUMMARY_TABS:
            t = SummaryTable()
            find = QLineEdit()
            find.setPlaceholderText("show rows containing … (a dataset, backbone, method, (mean), (max))")
            find.setClearButtonEnabled(True)
            find.textChanged.connect(t.filter_rows)
            page = QWidget()
            pl = QVBoxLayout(page)
            pl.setContentsMargins(2, 4, 2, 2)
            pl.addWidget(find)
            pl.addWidget(t, 1)
            self.tables[key] = t
            self.table_pages[key] = page
            self.result_tabs.addTab(page, title)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.result_tabs)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([520, 760])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(tb)
        lay.addWidget(split, 1)
        self.cancel_action.setEnabled(False)

    @staticmethod
    def _buttons(*buttons: QPushButton) -> QHBoxLayout:
        row = QHBoxLayout()
        for b in buttons:
            row.addWidget(b)
        row.addStretch(1)
        return row

    def _wire(self) -> None:
        c = self.controller
        c.dataset_started.connect(self._dataset_started)
        c.dataset_finished.connect(self._dataset_finished)
        c.progress.connect(self._progress)
        c.failed.connect(lambda msg, details: show_error(self, "The study could not run", msg, details))
        c.finished.connect(self._finished)
        self.table.cellDoubleClicked.connect(self._open_row)

    # ---------------------------------------------------------------- study ⇄ widgets

    def set_study(self, study: Any, out: Optional[Path] = None) -> None:
        """Show ``study``; ``out`` (default next to its file) is where it runs and its summaries are."""
        self.study = study
        if out is None and study.file:
            out = default_out(Path(study.file))
        self.out_dir = Path(out) if out else None
        p = study.protocol
        lv = p.get("levels")
        self.levels.setText(",".join(str(k) for k in lv) if isinstance(lv, list) else (lv or ""))
        self.mode.setCurrentText(p.get("mode", "flat"))
        t = p.get("templates", "simple")
        self.templates.setCurrentText(t if isinstance(t, str) else "; ".join(t))
        self.seed.setValue(int(p.get("seed", 0)))
        self.out_edit.setText(str(self.out_dir) if self.out_dir else "")
        self.statuses = {}
        self._refresh_setup()
        self.load_summaries()

    def sync_protocol(self) -> None:
        """Copy the protocol widgets into the study (raises InputError on bad levels)."""
        from core.util.errors import InputError

        p = self.study.protocol
        text = self.levels.text().strip()
        if text:
            try:
                p["levels"] = [int(x) for x in text.replace(" ", "").split(",") if x]
            except ValueError:
                raise InputError(f"levels must be comma-separated integers, got '{text}'", field="levels") from None
        else:
            p.pop("levels", None)
        p["mode"] = self.mode.currentText()
        t = self.templates.currentText().strip()
        if t and not (isinstance(p.get("templates"), list) and t == "; ".join(p["templates"])):
            p["templates"] = t
        p["seed"] = self.seed.value()
        self.out_dir = Path(self.out_edit.text().strip()) if self.out_edit.text().strip() else self.out_dir

    def _refresh_setup(self) -> None:
        self.backbone_list.clear()
        for b in self.study.backbones:
            self.backbone_list.addItem(b.display if not b.checkpoint or b.label else f"{b.display} ← {Path(b.checkpoint).name}")
        self.table.setRowCount(len(self.study.datasets))
        base = self.study.base if self.study.file else None
        for r, d in enumerate(self.study.datasets):
            for c, text in enumerate((d.name, self.statuses.get(d.name, ""), self._short(d.path, base),
                                      self._short(d.labels, base) if d.labels else "(class names)")):
                item = QTableWidgetItem(text)
                if c in (2, 3):
                    item.setToolTip(d.path if c == 2 else (d.labels or ""))
                self.table.setItem(r, c, item)
        head = self.table.horizontalHeader()
        for c, mode in enumerate((QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.Stretch,
                                  QHeaderView.ResizeMode.Interactive, QHeaderView.ResizeMode.Interactive)):
            head.setSectionResizeMode(c, mode)
        for c in (2, 3):
            self.table.setColumnWidth(c, 130)
        self.overall.setMaximum(max(1, len(self.study.datasets)))
        self.overall.setFormat("%v of %m datasets" if self.study.datasets else
                               "no datasets yet" if self.study.file else "no study open")
        if not self.controller.running:
            n, m = len(self.study.datasets), len(self.study.backbones)
            name = Path(self.study.file).name if self.study.file else "unsaved study"
            self.state.setText(f"{name}: {n} dataset(s) × {m} backbone(s)" if n or m else
                               "No study open: open a study file, or start from the demo study.")

    @staticmethod
    def _short(path: Optional[str], base: Optional[Path]) -> str:
        """A path as the study file would write it (relative to its folder when inside it)."""
        from core.study.study import _relative

        return (_relative(path, base) if base is not None else path) or ""

    def _set_status(self, name: str, text: str) -> None:
        self.statuses[name] = text
        for r, d in enumerate(self.study.datasets):
            if d.name == name:
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(r, 1, item)

    # ---------------------------------------------------------------- file actions

    def new_study(self) -> None:
        from core.study.study import Study

        if not self.controller.running:
            self.set_study(Study(), None)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a study file", settings.get_str("last/study", ""),
                                              "Study files (*.toml);;All files (*)")
        if path:
            self.open_study(path)

    def open_study(self, path: str | Path, out: Optional[Path] = None) -> bool:
        from core.util.errors import InputError
        from core.study.study import load_study

        try:
            study = load_study(path)
        except InputError as e:
            show_error(self, "Cannot open the study file", str(e))
            return False
        settings.set_value("last/study", str(path))
        self.set_study(study, out)
        self.status_message.emit(f"Opened study {path}")
        return True

    def open_demo(self) -> None:
        """Write the demo study into the data folder (in the background) and open it."""
        from core.demo.study import write_demo_study

        target = settings.data_dir() / "demo-study"
        self.status_message.emit("Writing the demo study …")
        done = target / "study.toml"
        if done.is_file():
            self.open_study(done)
            return
        run_task(lambda: write_demo_study(target), lambda p: self.open_study(p),
                 lambda e, tb: show_error(self, "Cannot write the demo study", str(e), tb), context=self)

    def save(self) -> bool:
        if not self.study.file:
            return self.save_as_dialog()
        return self.save_to(self.study.file)

    def save_as_dialog(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save the study", self.study.file or "study.toml",
                                              "Study files (*.toml)")
        return bool(path) and self.save_to(path)

    def save_to(self, path: str | Path) -> bool:
        from core.util.errors import InputError
        from core.study.study import save_study

        try:
            self.sync_protocol()
            save_study(self.study, path)
        except (InputError, OSError) as e:
            show_error(self, "Cannot save the study", str(e))
            return False
        if self.out_dir is None:
            self.out_dir = default_out(Path(path))
            self.out_edit.setText(str(self.out_dir))
        self._refresh_setup()
        self.status_message.emit(f"Saved {path}")
        return True

    def _choose_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Results folder of the study", self.out_edit.text())
        if path:
            self.out_edit.setText(path)
            self.out_dir = Path(path)
            self.load_summaries()

    # ---------------------------------------------------------------- entries

    def add_dataset_dialog(self) -> None:
        self._ask(DatasetDialog, self.add_dataset)

    def _ask(self, dialog_class, add) -> None:
        """Open an entry dialog; ``add`` gets its value once accepted."""
        dlg = dialog_class(self)
        dlg.accepted.connect(lambda: add(dlg.value()))
        dlg.open()

    def add_dataset(self, ds: Any) -> bool:
        return self._add(self.study.add_dataset, ds, "Cannot add the dataset")

    def _add(self, add, item: Any, title: str) -> bool:
        """``add(item)`` to the study, or the engine's reason in an error box."""
        from core.util.errors import InputError

        try:
            add(item)
        except InputError as e:
            show_error(self, title, e.message[:1].upper() + e.message[1:] + ".")
            return False
        self._refresh_setup()
        return True

    def remove_dataset(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        for r in rows:
            del self.study.datasets[r]
        self._refresh_setup()

    def add_backbone_dialog(self) -> None:
        self._ask(BackboneDialog, self.add_backbone)

    def add_backbone(self, spec: Any) -> bool:
        if not spec.model:  # the dialog left empty
            return False
        return self._add(self.study.add_backbone, spec, "Cannot add the backbone")

    def remove_backbone(self) -> None:
        for i in sorted((self.backbone_list.row(it) for it in self.backbone_list.selectedItems()), reverse=True):
            del self.study.backbones[i]
        self._refresh_setup()

    # ---------------------------------------------------------------- running

    def run_all(self) -> bool:
        """Run the study on the worker thread; False (with a message) when it cannot start."""
        from core.util.errors import InputError
        from core.study.study import StudyOptions

        if self.controller.running:
            return False
        try:
            self.sync_protocol()
        except InputError as e:
            show_error(self, "Invalid protocol", str(e))
            return False
        if not self.study.datasets or not self.study.backbones:
            show_error(self, "Nothing to run", "Add at least one dataset and one backbone.")
            return False
        if self.out_dir is None:
            show_error(self, "No results folder", "Choose where the study's runs and summaries go.")
            return False
        if not self.study.file:  # the folder keeps the file its runs came from
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if not self.save_to(self.out_dir / "study.toml"):
                return False
        options = StudyOptions(out=str(self.out_dir), num_workers=0)
        for d in self.study.datasets:
            self._set_status(d.name, STATUS_TEXT["queued"])
        self.overall.setValue(0)
        self.run_action.setEnabled(False)
        self.cancel_action.setEnabled(True)
        self.state.setText(f"Checking {len(self.study.datasets)} dataset(s) before anything runs …")
        self.controller.start((copy.deepcopy(self.study), options))
        return True

    def cancel(self) -> None:
        if self.controller.running:
            self.controller.cancel()
            self.state.setText("Cancelling: the current dataset stops after its current batch …")

    def _dataset_started(self, ev: Any) -> None:
        self._current = ev.name
        verb = "checking what is cached" if ev.action == "run" else "up to date"
        self._set_status(ev.name, f"▶ running ({ev.reason}) · {verb}" if ev.action == "run" else "✔ up to date")
        self.state.setText(f"Dataset {ev.index + 1} of {ev.total}: {ev.name}")
        self.log_message.emit(f"study: dataset {ev.index + 1} of {ev.total}, {ev.name}: "
                              + (f"running ({ev.reason})" if ev.action == "run" else "up to date"), "info")

    def _progress(self, ev: Any) -> None:
        name = getattr(self, "_current", None)
        if name and ev.total:
            who = f"{ev.backbone}: " if ev.backbone else ""
            self._set_status(name, f"▶ {who}{STAGES.get(ev.stage, ev.stage)} {ev.done}/{ev.total}")

    def _dataset_finished(self, ev: Any) -> None:
        text = STATUS_TEXT.get(ev.status, ev.status)
        if ev.status == "completed":
            text += f" ({ev.images_encoded} encoded)"
        if ev.error:
            text += f": {ev.error}"
        self._set_status(ev.name, text)
        self.log_message.emit(f"study: {ev.name} {text}", "info" if ev.status == "completed" else "warning")
        self.overall.setValue(ev.index + 1)
        self.load_summaries()

    def _finished(self, status: str, out: str, summary: Any) -> None:
        self._current = None
        self.run_action.setEnabled(True)
        self.cancel_action.setEnabled(False)
        datasets = (summary or {}).get("datasets", {})
        for name, info in datasets.items():
            if info.get("status") == "pending":
                self._set_status(name, STATUS_TEXT["pending"])
        done = sum(1 for i in datasets.values() if i.get("status") == "completed")
        self.state.setText(f"Study {status}: {done} of {len(self.study.datasets)} dataset(s) completed; "
                           f"results in {out or self.out_dir}")
        self.status_message.emit(f"Study {status}")
        self.log_message.emit(f"study {status}: {done} of {len(self.study.datasets)} dataset(s) completed; results in "
                              f"{out or self.out_dir}", "info" if status == "completed" else "warning")
        self.load_summaries()
        self.study_finished.emit(status, out)

    # ---------------------------------------------------------------- results

    def load_summaries(self) -> None:
        """Read the study folder's summary files in the background and show them."""
        out = self.out_dir
        self._generation = getattr(self, "_generation", 0) + 1
        if out is None or not (out / "summary.csv").exists():
            self._show_summaries({})
            return
        from core.study.summary import load_summaries

        generation = self._generation

        def done(frames: dict) -> None:
            if generation == self._generation:  # an older read finishing late never replaces a newer one
                self._show_summaries(frames)

        run_task(lambda: load_summaries(out), done, context=self)

    def _show_summaries(self, frames: dict) -> None:
        self.summaries = frames
        for key, table in self.tables.items():
            table.set_frame(frames.get(key, pd.DataFrame()))
            optional = key in ("ensembles_summary", "frequency_summary", "controls_summary")
            self.result_tabs.setTabVisible(self.result_tabs.indexOf(self.table_pages[key]),
                                           not optional or key in frames)
        self.plot.set_data(frames.get("summary", pd.DataFrame()), frames.get("summary_by_level", pd.DataFrame()))
        if frames and not self.controller.running:
            self._statuses_from_folder()
        self.summaries_loaded.emit()

    def _statuses_from_folder(self) -> None:
        from core.results.runs import run_status
        from core.util.tables import read_user_json

        done = 0
        for d in self.study.datasets:
            meta = run_path(self.out_dir, d.name) / "run.json" if self.out_dir else None
            if meta is None or not meta.exists():
                continue
            try:
                status = run_status(read_user_json(meta))
            except Exception:  # an unreadable run.json shows as not run
                continue
            done += status == "completed"
            if not self.statuses.get(d.name):  # what this session saw happen stays shown
                self._set_status(d.name, STATUS_TEXT.get(status, status))
        self.overall.setValue(done)

    def _open_row(self, row: int, _col: int) -> None:
        if self.out_dir is None or row >= len(self.study.datasets):
            return
        run = run_path(self.out_dir, self.study.datasets[row].name)
        if (run / "run.json").exists():
            self.open_run_requested.emit(str(run))
        else:
            self.status_message.emit(f"{self.study.datasets[row].name} has not run yet")

    def export_dialog(self) -> None:
        dest = QFileDialog.getExistingDirectory(self, "Export the study's summaries to", str(self.out_dir or ""))
        if dest:
            files = self.export_summaries(dest)
            self.status_message.emit(f"Exported {len(files)} files to {dest}")

    def export_summaries(self, dest: str | Path) -> list[Path]:
        """Copy every summary CSV (and study.json) of the study folder to ``dest``."""
        from core.study.summary import SUMMARY_FILES
        from core.util.tables import neutralise_csv

        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        out = []
        for name in SUMMARY_FILES + ("study.json",):
            src = (self.out_dir or Path()) / name
            if self.out_dir is not None and src.exists() and src.resolve() != (dest / name).resolve():
                if src.suffix == ".csv":  # for people: formula-like cells neutralised (core.util.tables)
                    neutralise_csv(src, dest / name)
                    out.append(dest / name)
                else:
                    out.append(Path(shutil.copy2(src, dest / name)))
        return out

    def export_report_dialog(self) -> None:
        if self.out_dir is None or not (self.out_dir / "study.json").exists():
            self.status_message.emit("Run the study first: the report is made from its runs and summaries")
            return
        start = self.out_dir / "report.html"
        path, _ = QFileDialog.getSaveFileName(self, "Export the study report", str(start), "HTML report (*.html)")
        if path:
            self.export_report(path)

    def export_report(self, path: str | Path) -> bool:
        """Write the study's HTML report to ``path`` in the background (semscale_gui.report_export)."""
        from semscale_gui.report_export import ReportExport

        if self.out_dir is None:
            return False
        if getattr(self, "report_export", None) is None:
            self.report_export = ReportExport(self)
            self.report_export.saved.connect(lambda p: self.status_message.emit(f"Report saved to {p}"))
        return self.report_export.start(self.out_dir, path)

    def export_plot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the plot", "study-change-vs-level1.png",
                                              "PNG image (*.png);;SVG vector (*.svg)")
        if path:
            self.plot.export(path)
            self.status_message.emit(f"Saved {path}")


def preview() -> QWidget:
    """The tab with the demo study's setup (not run)."""
    from core.models.openclip import BackboneSpec
    from core.study.study import Study, StudyDataset

    w = StudyPanel()
    w.set_study(Study(protocol={"levels": [1, 2, 4, 8], "templates": "plain"},
                      backbones=[BackboneSpec("demo-vit"), BackboneSpec("demo-resnet")],
                      datasets=[StudyDataset("shapes-folder", "datasets/shapes-folder", "labels/shapes-folder.csv"),
                                StudyDataset("shapes-cifar", "datasets/shapes-cifar", "labels/shapes-cifar.csv")]))
    w.resize(1200, 700)
    w.setWindowTitle("semscale — study preview")
    return w


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
