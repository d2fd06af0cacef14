"""Dataset browser: open a dataset, see its classes, thumbnails, one image, and problems.

Listing and validating run in the background (:mod:`semscale_gui.tasks`); thumbnails are
decoded lazily off the GUI thread (:mod:`semscale_gui.thumbnails`). The Problems tab also
lists the images the last run skipped (live from the worker, then from its
``skipped.csv``). The widget emits ``dataset_loaded`` and ``labels_suggested``; it never
decides what a run does.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListView,
    QPlainTextEdit, QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QTabWidget,
    QVBoxLayout, QWidget,
)

from semscale_gui import settings
from semscale_gui.icons import icon
from semscale_gui.tasks import run_task
from semscale_gui.thumbnails import THUMB_SIZE, DecodeJob, ThumbnailModel, decode_pool, next_decoder_id
from semscale_gui.widgets import single_shot_timer

RECENT_KEY = "recent/datasets"
PREVIEW_SIZE = 320
FULL_CHECK_LIMIT = 20000  # above this many images, opening each one is left to the run
PROBLEMS_REFRESH_MS = 250  # skipped images arrive one by one; the report is rebuilt at most this often


def read_skipped(path: Path) -> list[tuple[str, str]]:
    """(path, reason) rows of a run's skipped.csv ([] when it is missing or empty)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [(r.get("path", ""), r.get("reason", "")) for r in csv.DictReader(f) if r.get("path")]
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def suggested_labels(path: Path) -> Optional[Path]:
    """A labels file shipped with the dataset (``labels.csv``/``.json`` beside or above it)."""
    base = path if path.is_dir() else path.parent
    for folder in (base, base.parent):
        for name in ("labels.csv", "labels.json", "synonyms.csv", "synonyms.json"):
            p = folder / name
            if p.is_file():
                return p
    return None


class ImagePreview(QWidget):
    """One image at a readable size with its id, class and pixel size."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.image = QLabel("Select a thumbnail")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(220, 220)
        self.image.setStyleSheet("QLabel { background: #f3f5f7; border: 1px solid #d5dbe1; color: #777; }")
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.image, 1)
        lay.addWidget(self.info)
        self._pool, self._signals = decode_pool()
        self._signals.loaded.connect(self._on_loaded)
        self._signals.failed.connect(self._on_failed)
        self._id = next_decoder_id()
        self._generation = 0
        self._record: Any = None

    def show_record(self, dataset: Any, index: int) -> None:
        self._generation += 1
        rec = dataset.records[index]
        self._record = rec
        self.image.setText("loading…")
        self.image.setPixmap(QPixmap())
        self.info.setText(f"<b>{rec.id}</b><br>class: {rec.label}")
        self._pool.start(DecodeJob(dataset, index, PREVIEW_SIZE, (self._id, self._generation), self._signals))

    def clear(self) -> None:
        self._generation += 1
        self.image.setPixmap(QPixmap())
        self.image.setText("Select a thumbnail")
        self.info.setText("")

    def _on_loaded(self, stamp: tuple[int, int], _index: int, img, size: object) -> None:
        if stamp != (self._id, self._generation):
            return
        pm = QPixmap.fromImage(img)
        if pm.width() < 200:  # tiny images (CIFAR, demo) are shown enlarged, pixel-exact
            f = max(1, 256 // max(pm.width(), pm.height()))
            pm = pm.scaled(pm.width() * f, pm.height() * f, Qt.AspectRatioMode.KeepAspectRatio,
                           Qt.TransformationMode.FastTransformation)
        self.image.setPixmap(pm)
        w, h = size  # type: ignore[misc]
        self.info.setText(f"<b>{self._record.id}</b><br>class: {self._record.label} · {w}×{h} px")

    def _on_failed(self, stamp: tuple[int, int], _index: int, reason: str) -> None:
        if stamp != (self._id, self._generation):
            return
        self.image.setText("cannot show this image")
        self.info.setText(f"<b>{self._record.id}</b><br><span style='color:#b00'>unreadable: {reason}</span>")


class DatasetBrowser(QWidget):
    """Open (dialog, drag-and-drop, recent list) and inspect a labelled image dataset."""

    dataset_loaded = Signal(object)  # core.data.Dataset
    labels_suggested = Signal(str)  # path of a labels file found next to the dataset
    load_failed = Signal(str)
    problems_updated = Signal(int)  # number of problems in the report
    status_message = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.dataset: Any = None
        self.path: Optional[Path] = None
        self.labels: Any = None
        self._unreadable: Optional[list[tuple[str, str]]] = None
        self.run_skipped: list[tuple[str, str]] = []  # images the last run could not use
        self._check_note = ""
        self._loading = False
        self._problems_timer = single_shot_timer(self, PROBLEMS_REFRESH_MS, self._update_problems)
        self._build()
        self._refresh_recent()

    # ---------------------------------------------------------------- layout

    def _build(self) -> None:
        self.open_folder_btn = QPushButton(icon("open"), "Open folder…")
        self.open_folder_btn.setToolTip("An ImageFolder tree (root/<class>/<images>), a CIFAR python folder, a "
                                        "Hugging Face save_to_disk folder or a folder of parquet shards")
        self.open_file_btn = QPushButton(icon("open"), "Open file…")
        self.open_file_btn.setToolTip("A CSV/Parquet manifest with path,label columns, a parquet file with an image "
                                      "column (Hugging Face), a CIFAR batch file or a WebDataset .tar shard")
        self.recent = QComboBox()
        self.recent.setMinimumContentsLength(30)
        self.recent.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.recent.setToolTip("Recently opened datasets")
        self.recent.activated.connect(self._open_recent)
        self.open_folder_btn.clicked.connect(self.choose_folder)
        self.open_file_btn.clicked.connect(self.choose_file)
        self.summary = QLabel("Drop a dataset folder, manifest, parquet file or Hugging Face folder here, or use Open.")
        self.summary.setStyleSheet("color: #444;")
        top = QHBoxLayout()
        top.addWidget(self.open_folder_btn)
        top.addWidget(self.open_file_btn)
        top.addWidget(QLabel("Recent:"))
        top.addWidget(self.recent, 1)

        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter classes…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)
        self.class_table = QTableWidget(0, 2)
        self.class_table.setHorizontalHeaderLabels(["class", "images"])
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.class_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.class_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.class_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.class_table.itemSelectionChanged.connect(self._class_selected)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.filter)
        ll.addWidget(self.class_table)

        self.thumbs = ThumbnailModel(self)
        self.grid = QListView()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.grid.setGridSize(QSize(THUMB_SIZE + 10, THUMB_SIZE + 10))
        self.grid.setUniformItemSizes(True)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        self.grid.setBatchSize(200)
        self.grid.setSpacing(2)
        self.grid.setModel(self.thumbs)
        self.grid.selectionModel().currentChanged.connect(self._thumb_selected)
        self._scroll_timer = single_shot_timer(self, 120, self._after_scroll)
        self.grid.verticalScrollBar().valueChanged.connect(lambda _v: self._scroll_timer.start())
        self.grid_caption = QLabel()
        self.grid_caption.setStyleSheet("color: #555;")
        images = QWidget()
        il = QVBoxLayout(images)
        il.setContentsMargins(0, 0, 0, 0)
        il.addWidget(self.grid_caption)
        il.addWidget(self.grid, 1)

        self.problems = QPlainTextEdit()
        self.problems.setReadOnly(True)
        self.problems.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.problems.setPlaceholderText("The validation report appears here after a dataset is opened.")
        font = self.problems.font()
        font.setFamily("DejaVu Sans Mono")
        font.setStyleHint(font.StyleHint.Monospace)
        self.problems.setFont(font)
        self.tabs = QTabWidget()
        self.tabs.addTab(images, icon("image"), "Images")
        self.tabs.addTab(self.problems, icon("ok"), "Problems")

        self.preview = ImagePreview()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.addWidget(self.preview)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        split.setStretchFactor(2, 1)
        split.setSizes([240, 640, 280])
        self.splitter = split

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.summary)
        lay.addWidget(split, 1)

    # ---------------------------------------------------------------- opening

    def choose_folder(self) -> None:
        start = settings.get_str("last/dataset_dir", str(Path.home()))
        path = QFileDialog.getExistingDirectory(self, "Open dataset folder", start)
        if path:
            self.open_path(path)

    def choose_file(self) -> None:
        start = settings.get_str("last/dataset_dir", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(
            self, "Open dataset file", start,
            "Datasets (*.csv *.tsv *.parquet *.pq *.tar *batch* test);;Manifests (*.csv *.tsv *.parquet *.pq);;"
            "Hugging Face parquet (*.parquet *.pq);;WebDataset shards (*.tar);;CIFAR batches (*batch* test);;"
            "All files (*)")
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        """List the dataset in the background; ``dataset_loaded`` or ``load_failed`` follows."""
        from core.data import load_dataset

        p = Path(path).expanduser()
        self._loading = True
        self.summary.setText(f"Opening {p} …")
        self.status_message.emit(f"Opening dataset {p} …")
        run_task(lambda: load_dataset(p), lambda ds: self._on_loaded(p, ds),
                 lambda e, tb: self._on_load_error(e, tb, p), context=self)

    @property
    def loading(self) -> bool:
        return self._loading

    def _on_load_error(self, exc: Exception, tb: str, path: Optional[Path] = None) -> None:
        """Say why, as plain text, and keep the dataset that was open until a new one has opened."""
        from core.util.errors import InputError

        self._loading = False
        msg = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
        what = html.escape(str(path)) if path is not None else "the dataset"
        kept = ""
        if self.dataset is not None and self.path is not None:
            kept = f"<b>{html.escape(self.path.name)}</b> — {html.escape(self.dataset.describe(), quote=False)}<br>"
        self.summary.setText(f"{kept}<span style='color:#b00'>Could not open {what}: {html.escape(msg)}</span>")
        still = f"; still showing {self.path.name}" if kept else ""
        if not kept:  # nothing open: the Problems tab says what went wrong, not a green tick
            self.problems.setPlainText(f"Could not open {path if path is not None else 'the dataset'}:\n{msg}")
            self.tabs.setTabText(1, "Problems (1)")
            self.tabs.setTabIcon(1, icon("warning"))
        self.status_message.emit(f"Could not open {path if path is not None else 'the dataset'}{still}")
        self.load_failed.emit(msg)

    def _on_loaded(self, path: Path, dataset: Any) -> None:
        self._loading = False
        self.dataset, self.path = dataset, path
        self._unreadable = None
        self._check_note = ""
        self.run_skipped = []  # they belonged to the previous dataset
        settings.set_value("last/dataset_dir", str(path.parent))
        settings.set_value("last/dataset", str(path))
        settings.push_recent(RECENT_KEY, str(path))
        self._refresh_recent()
        self.summary.setText(f"<b>{html.escape(path.name)}</b> — {html.escape(dataset.describe(), quote=False)}")
        self.thumbs.set_dataset(dataset)
        self.preview.clear()
        self._fill_classes()
        self._update_problems()
        self._start_image_check()
        lab = suggested_labels(path)
        if lab is not None:  # before dataset_loaded, so listeners see the dataset's own names first
            self.labels_suggested.emit(str(lab))
        self.dataset_loaded.emit(dataset)
        self.status_message.emit(dataset.describe())

    def _refresh_recent(self) -> None:
        self.recent.blockSignals(True)
        self.recent.clear()
        for p in settings.recent(RECENT_KEY):
            self.recent.addItem(p, p)
        self.recent.blockSignals(False)

    def _open_recent(self, i: int) -> None:
        p = self.recent.itemData(i)
        if p:
            self.open_path(p)

    # ---------------------------------------------------------------- drag and drop

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for u in event.mimeData().urls():
            if u.isLocalFile():
                self.open_path(u.toLocalFile())
                event.acceptProposedAction()
                return

    # ---------------------------------------------------------------- classes & images

    def _fill_classes(self) -> None:
        counts = self.dataset.class_counts()
        t = self.class_table
        t.setSortingEnabled(False)
        t.setRowCount(len(counts))
        for r, (c, n) in enumerate(counts.items()):
            name = QTableWidgetItem(c)
            if n == 0:
                name.setIcon(icon("warning"))
                name.setToolTip("no images in this class")
            num = QTableWidgetItem()
            num.setData(Qt.ItemDataRole.DisplayRole, n)
            num.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            t.setItem(r, 0, name)
            t.setItem(r, 1, num)
        t.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # keep the dataset's order
        t.setSortingEnabled(True)
        self._apply_filter(self.filter.text())
        # Select the first listed class and show it even when the same row was selected
        # before: the selection then does not change, and no signal would refresh the grid.
        t.blockSignals(True)
        t.clearSelection()
        first = next((r for r in range(t.rowCount()) if not t.isRowHidden(r)), None)
        if first is not None:
            t.selectRow(first)
        t.blockSignals(False)
        if first is not None:
            self._class_selected()
        else:
            self.thumbs.set_indices([])
            self.grid_caption.setText("no class matches the filter" if counts else "no classes")

    def _apply_filter(self, text: str) -> None:
        text = text.casefold()
        for r in range(self.class_table.rowCount()):
            item = self.class_table.item(r, 0)
            self.class_table.setRowHidden(r, bool(text) and text not in item.text().casefold())

    def select_class(self, name: str) -> None:
        for r in range(self.class_table.rowCount()):
            if self.class_table.item(r, 0).text() == name:
                self.class_table.selectRow(r)
                return

    def current_class(self) -> Optional[str]:
        rows = self.class_table.selectionModel().selectedRows()
        return self.class_table.item(rows[0].row(), 0).text() if rows else None

    def _class_selected(self) -> None:
        cls = self.current_class()
        if cls is None or self.dataset is None:
            return
        idx = [i for i, r in enumerate(self.dataset.records) if r.label == cls]
        self.thumbs.set_indices(idx)
        self.grid_caption.setText(f"{cls}: {len(idx)} image{'s' if len(idx) != 1 else ''}")
        self.grid.scrollToTop()
        if idx:
            self.grid.setCurrentIndex(self.thumbs.index(0))

    def _thumb_selected(self, current, _previous) -> None:
        if current.isValid() and self.dataset is not None:
            self.preview.show_record(self.dataset, current.data(Qt.ItemDataRole.UserRole))

    def _after_scroll(self) -> None:
        # requests for rows that scrolled away are dropped; visible rows ask again on repaint
        self.thumbs.cancel_pending()
        self.grid.viewport().update()

    # ---------------------------------------------------------------- problems

    def set_labels(self, labels: Any) -> None:
        """Compare the dataset's classes against the names being edited."""
        self.labels = labels
        self._update_problems()

    def clear_run_skipped(self) -> None:
        """A new run starts: forget what the previous one skipped."""
        self.run_skipped = []
        self._problems_timer.start()

    def add_run_skipped(self, path: str, reason: str) -> None:
        """One image the running sweep skipped (the worker's ``skipped`` signal)."""
        self.run_skipped.append((path, reason))
        if not self._problems_timer.isActive():
            self._problems_timer.start()

    def load_run_skipped(self, csv_path: str | Path) -> None:
        """Replace the live list with the finished run's ``skipped.csv`` (read in the background)."""
        p = Path(csv_path)

        def done(rows: list[tuple[str, str]]) -> None:
            if rows or not self.run_skipped:
                self.run_skipped = rows
            self._problems_timer.start()

        run_task(lambda: read_skipped(p), done, context=self)

    def _start_image_check(self) -> None:
        from core.data import validate

        ds = self.dataset
        if len(ds) > FULL_CHECK_LIMIT:
            self._unreadable = list(ds.problems)
            self._check_note = (f"(quick check: {len(ds)} images are too many to open each one here; "
                                "unreadable files are listed in skipped.csv after a run)")
            self._update_problems()
            return

        def check() -> list[tuple[str, str]]:
            return validate(ds, None, check_images=True).unreadable

        def done(unreadable: list[tuple[str, str]]) -> None:
            if ds is self.dataset:
                self._unreadable = unreadable
                self._update_problems()

        run_task(check, done, context=self)

    def _update_problems(self) -> None:
        from core.data import validate

        if self.dataset is None:
            return
        report = validate(self.dataset, self.labels, check_images=False)
        pending = self._unreadable is None
        if not pending:
            report = dataclasses.replace(report, unreadable=self._unreadable)
        self.report = report
        n = len(report.unreadable) + len(report.empty_classes) + len(report.missing_from_labels) \
            + len(report.missing_from_data) + len(report.label_warnings) + len(self.run_skipped)
        text = report.to_text()
        if self.run_skipped:
            lines = [f"Skipped by the last run: {len(self.run_skipped)} (listed in its skipped.csv)"]
            lines += [f"  {p}: {r}" for p, r in self.run_skipped[:500]]
            if len(self.run_skipped) > 500:
                lines.append(f"  ... and {len(self.run_skipped) - 500} more")
            text += "\n" + "\n".join(lines)
        if pending:
            text += "\n\n(checking that every image opens …)"
        if self._check_note:
            text += "\n\n" + self._check_note
        self.problems.setPlainText(text)
        self.tabs.setTabText(1, f"Problems ({n})")
        self.tabs.setTabIcon(1, icon("warning" if n else "ok"))
        self.problems_updated.emit(n)

    @property
    def image_check_done(self) -> bool:
        return self._unreadable is not None


def preview() -> QWidget:
    """The browser on the demo dataset (generated into a temp folder if needed)."""
    import tempfile

    w = DatasetBrowser()
    w.resize(1100, 650)
    w.setWindowTitle("semscale — dataset browser preview")
    try:
        from core.demo.data import write_demo_dataset

        root = write_demo_dataset(Path(tempfile.mkdtemp(prefix="semscale-preview-")), n_per_class=12)
        w.open_path(root / "images")
    except ImportError:
        pass
    return w


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
