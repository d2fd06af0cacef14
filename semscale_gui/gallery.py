"""Gallery: the images behind a number that was clicked in a plot.

A plot emits a selection (:mod:`core.results.drilldown`); the gallery works out its rows on a pool
thread (:mod:`semscale_gui.tasks`), then shows them with the dataset browser's lazy
thumbnail model (:mod:`semscale_gui.thumbnails`: only painted items are decoded, off the
GUI thread). Rows are handed to the view a page at a time (``canFetchMore``/``fetchMore``),
so a selection of 20,000 images costs nothing until it is scrolled. Each thumbnail names
the true class, the winning category and its class, and the score; a click previews the
image with its top-5 classes at that level. The selection exports to CSV and its paths
copy to the clipboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QLabel, QListView, QListWidget, QPushButton, QSplitter,
    QVBoxLayout, QWidget,
)

from core.results.answers import one_line
from semscale_gui import settings
from semscale_gui.dataset_browser import ImagePreview
from semscale_gui.icons import icon
from semscale_gui.tasks import run_task
from semscale_gui.thumbnails import THUMB_SIZE, ThumbnailModel

PAGE = 400  # rows handed to the view at a time
CELL = QSize(168, THUMB_SIZE + 64)
EXPORT_COLUMNS = ["image", "true_class", "predicted_class", "predicted_label", "level", "backbone", "score", "group"]
GROUP_COLOURS = {"correct": "#e3f4e8", "gained": "#e3f4e8", "wrong": "#fbe4e4", "lost": "#fbe4e4",
                 "tied": "#fdf3d8"}
ALL_GROUPS = "all"


def group_colour(group: str) -> Optional[QColor]:
    if group in GROUP_COLOURS:
        return QColor(GROUP_COLOURS[group])
    if group.startswith("only "):
        return QColor("#e6eef8")
    if group.startswith("oracle"):
        return QColor("#fbe4e4")
    return None


def caption(row: Any) -> str:
    """Three short lines under a thumbnail: true class, winning category (class), score — or, for a
    vision-language backbone, its answer."""
    mark = {"correct": "✓ ", "gained": "▲ ", "wrong": "✗ ", "lost": "▼ ", "tied": "≈ "}.get(row.group, "")
    owners = row.owners if isinstance(row.owners, str) and row.owners else row.predicted_class
    pred = f"{row.predicted_label} ({owners})" if row.predicted_label not in ("", None) and \
        row.predicted_label == row.predicted_label else str(owners)
    score = f"score {row.score:.3f}" if row.score == row.score and row.score is not None else str(row.backbone)
    answer = getattr(row, "answer", "")
    if isinstance(answer, str) and answer and owners != owners:  # an answer that named no class
        pred = "no class"
    if isinstance(answer, str) and answer:
        score = f"says: “{one_line(answer, 40)}”"
    return f"{mark}true: {row.true_class}\npred: {pred}\n{score}"


_answers: dict[str, tuple[Any, Any]] = {}  # run folder -> (answers.csv mtime, its frame)


def with_answers(rows: pd.DataFrame, run_dir: Optional[Path]) -> pd.DataFrame:
    """Gallery rows plus each image's answer when the run has answers.csv (pool thread)."""
    from core.results.answers import ANSWERS_FILE, image_answers, read_answers

    if run_dir is None or rows.empty:
        return rows
    p = Path(run_dir) / ANSWERS_FILE
    if not p.is_file():
        return rows
    mtime = p.stat().st_mtime_ns
    hit = _answers.get(str(run_dir))
    if hit is None or hit[0] != mtime:
        hit = _answers[str(run_dir)] = (mtime, read_answers(run_dir))
    return image_answers(hit[1], rows)


class GalleryModel(ThumbnailModel):
    """Gallery rows (``core.results.drilldown.GALLERY_COLUMNS``) over the run's dataset records."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows = pd.DataFrame()
        self._captions: dict[int, str] = {}
        self._shown = 0

    def set_rows(self, rows: pd.DataFrame, record_of: dict[str, int]) -> None:
        from core.results.drilldown import GALLERY_COLUMNS

        self.rows = rows.reindex(columns=GALLERY_COLUMNS + [c for c in ("answer",) if c in rows]).reset_index(drop=True)
        self._captions = {}  # built as rows are painted: 20,000 rows cost nothing up front
        self._shown = min(PAGE, len(self.rows))
        self.set_indices([record_of.get(str(im), -1) for im in self.rows["image"]] if len(self.rows) else [])

    # paging: the view asks for more rows as it scrolls to the end
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else min(self._shown, len(self.indices))

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:
        return not parent.isValid() and self._shown < len(self.indices)

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> None:
        if parent.isValid():
            return
        n = min(PAGE, len(self.indices) - self._shown)
        if n <= 0:
            return
        self.beginInsertRows(QModelIndex(), self._shown, self._shown + n - 1)
        self._shown += n
        self.endInsertRows()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r = index.row()
        if role == Qt.ItemDataRole.DisplayRole:
            text = self._captions.get(r)
            if text is None:
                text = self._captions[r] = caption(next(self.rows.iloc[r : r + 1].itertuples()))
            return text
        if role == Qt.ItemDataRole.BackgroundRole:
            return group_colour(str(self.rows["group"].iat[r]))
        if role == Qt.ItemDataRole.SizeHintRole:
            return CELL
        if role == Qt.ItemDataRole.ToolTipRole:
            row = self.rows.iloc[r]
            lines = [str(row["image"]), f"true class: {row['true_class']}",
                     f"predicted: {row['predicted_label']} ({row['predicted_class']})" if row["predicted_label"] else
                     f"predicted: {row['predicted_class']}", f"{row['backbone']}, {row['level']} name(s) per class",
                     str(row["group"])]
            if row["detail"]:
                lines.append(str(row["detail"]))
            if isinstance(row.get("answer"), str) and row.get("answer"):
                lines.append(f"answer: {one_line(row['answer'], 500)}")
            return "\n".join(lines)
        if self.indices[r] < 0:  # not in the dataset (moved, or the run scored an embedding store)
            if role == Qt.ItemDataRole.DecorationRole:
                return self._placeholder
            if role == Qt.ItemDataRole.AccessibleTextRole:
                return str(self.rows["image"].iat[r])
            if role == Qt.ItemDataRole.UserRole:
                return -1
            return None
        return super().data(index, role)


class GalleryPanel(QWidget):
    """Thumbnails of a selection, a preview with the top-5 classes, export and copy."""

    filled = Signal(int)  # rows in the gallery after a selection (tests wait on it)
    preview_ready = Signal()  # the clicked image's top-5 is shown
    closed = Signal()
    status_message = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.source: Any = None  # core.results.drilldown.RunImages
        self.dataset: Any = None
        self.record_of: dict[str, int] = {}
        self.selection: Any = None
        self.shown_selection: Any = None  # the selection whose rows are in the gallery now
        self.all_rows = pd.DataFrame()
        self._pending: Any = None
        self._generation = 0
        self._dataset_for: Optional[str] = None
        self.top5: list[tuple[str, float]] = []
        self._build()

    def _build(self) -> None:
        self.title = QLabel("Click a cell, point or curve in a plot to see its images here.")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: bold;")
        self.counts = QLabel(" ")
        self.counts.setStyleSheet("color: #555;")
        self.group = QComboBox()
        self.group.currentIndexChanged.connect(self._apply_group)
        self.export_btn = QPushButton(icon("export"), "Export CSV…")
        self.export_btn.setToolTip("Save the selected thumbnails (all, when none is selected) as CSV")
        self.export_btn.clicked.connect(self.export_dialog)
        self.copy_btn = QPushButton(icon("copy"), "Copy paths")
        self.copy_btn.setToolTip("Copy the image files of the selected thumbnails (all, when none is selected)")
        self.copy_btn.clicked.connect(self.copy_paths)
        self.close_btn = QPushButton("Close")
        self.close_btn.clicked.connect(self._close)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(QLabel("show:"))
        bar.addWidget(self.group)
        bar.addStretch(1)
        for b in (self.export_btn, self.copy_btn, self.close_btn):
            bar.addWidget(b)

        self.model = GalleryModel(self)
        self.grid = QListView()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.grid.setGridSize(QSize(CELL.width() + 6, CELL.height() + 6))
        self.grid.setUniformItemSizes(True)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        self.grid.setBatchSize(200)
        self.grid.setWordWrap(True)
        self.grid.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.grid.setModel(self.model)
        self.grid.selectionModel().currentChanged.connect(self._current_changed)

        self.preview = ImagePreview()
        self.prediction = QLabel()
        self.prediction.setWordWrap(True)
        self.prediction.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.top_list = QListWidget()
        info = QWidget()
        il = QVBoxLayout(info)
        il.setContentsMargins(0, 0, 0, 0)
        il.addWidget(self.prediction)
        self.top_title = QLabel("Top-5 classes")
        il.addWidget(self.top_title)
        il.addWidget(self.top_list, 1)
        side = QWidget()  # below the thumbnails, so the grid keeps the panel's whole width
        sl = QHBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.preview, 1)
        sl.addWidget(info, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.grid)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([3 * CELL.height(), 240])
        self.splitter = split
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addWidget(self.counts)
        self.missing = QLabel()  # why the thumbnails are placeholders, when the dataset cannot be reached
        self.missing.setWordWrap(True)
        self.missing.setTextFormat(Qt.TextFormat.PlainText)
        self.missing.setStyleSheet("color: #9a6700;")
        self.missing.hide()
        lay.addWidget(self.missing)
        lay.addLayout(bar)
        lay.addWidget(split, 1)
        self._enable()

    def _enable(self) -> None:
        has = len(self.model.rows) > 0
        self.export_btn.setEnabled(has)
        self.copy_btn.setEnabled(has)

    def _close(self) -> None:
        self.hide()
        self.closed.emit()

    # ---------------------------------------------------------------- source

    def set_source(self, source: Any) -> None:
        """The run whose images are shown (``core.results.drilldown.RunImages``); its dataset is listed
        in the background for the thumbnails."""
        self.source = source
        path = source.dataset_path if source is not None else None
        if not path:
            self.missing.hide()
        if path and path != self._dataset_for:
            self._dataset_for = path
            allow = bool(source.meta.get("config", {}).get("allow_absolute_paths"))

            def listed(ds: Any) -> None:
                if self._dataset_for != path:
                    return
                self.missing.hide()
                self.dataset = ds
                self.record_of = {r.id: i for i, r in enumerate(ds.records)}
                self.model.set_dataset(ds)
                self._show_rows()

            def failed(e: Exception, _tb: str) -> None:
                self.dataset, self.record_of = None, {}
                self.missing.setText(f"No thumbnails: the run's dataset is not reachable where it was expected, "
                                     f"{path}. The rows below are still the run's predictions; to see the "
                                     "images, put the dataset back there.")
                self.missing.setToolTip(f"{path}: {e}")
                self.missing.show()
                self.status_message.emit(f"thumbnails unavailable: cannot open the run's dataset {path}: {e}")
                self._show_rows()

            from core.data import load_dataset

            run_task(lambda: load_dataset(path, allow_absolute=allow), listed, failed, context=self)
        if self._pending is not None:
            sel, self._pending = self._pending, None
            self.show_selection(sel)

    # ---------------------------------------------------------------- selections

    def show_selection(self, selection: Any) -> None:
        """Work out the selection's rows in the background, then show them."""
        self.selection = selection
        self.title.setText(selection.title)
        if self.source is None:
            self._pending = selection
            self.counts.setText("waiting for the run's predictions…")
            return
        self._generation += 1
        gen, source = self._generation, self.source
        self.counts.setText("finding the images…")

        def done(rows: pd.DataFrame) -> None:
            if gen == self._generation:
                self._set_rows(rows)

        def failed(e: Exception, _tb: str) -> None:
            if gen == self._generation:
                self._set_rows(pd.DataFrame(columns=self.model.rows.columns if len(self.model.rows.columns) else []))
                self.counts.setText(f"<span style='color:#b00'>{e}</span>")

        run_task(lambda: with_answers(selection.rows(source), getattr(source, "dir", None)), done, failed, context=self)

    def _set_rows(self, rows: pd.DataFrame) -> None:
        self.all_rows = rows
        self.shown_selection = self.selection
        groups = list(dict.fromkeys(map(str, rows["group"]))) if len(rows) else []
        n = rows["group"].astype(str).value_counts() if len(rows) else pd.Series(dtype=int)
        self.group.blockSignals(True)
        self.group.clear()
        self.group.addItem(f"all ({len(rows)})", ALL_GROUPS)
        for g in groups:
            self.group.addItem(f"{g} ({int(n[g])})", g)
        self.group.blockSignals(False)
        parts = [f"{int(n[g])} {g}" for g in groups]
        self.counts.setText(f"{len(rows)} image(s)" + (": " + ", ".join(parts) if parts else ""))
        self._show_rows()
        self.filled.emit(len(self.model.rows))

    def _apply_group(self, _i: int = 0) -> None:
        self._show_rows()

    def _show_rows(self) -> None:
        rows = self.all_rows
        g = self.group.currentData()
        if g not in (None, ALL_GROUPS) and len(rows):
            rows = rows[rows["group"].astype(str) == g]
        self.model.set_rows(rows, self.record_of)
        self.preview.clear()
        self.prediction.setText("")
        self.top_list.clear()
        self.top5 = []
        self.top_title.setText("Top-5 classes (click an image)")  # never the previous selection's backbone/level
        self._enable()

    def images(self) -> list[str]:
        """Image ids in the gallery (every page, not only those fetched so far)."""
        return list(map(str, self.model.rows["image"])) if len(self.model.rows) else []

    # ---------------------------------------------------------------- preview

    def _current_changed(self, current: QModelIndex, _prev: QModelIndex) -> None:
        if current.isValid():
            self.open_preview(current.row())

    def open_preview(self, row: int) -> None:
        """Show one thumbnail large with its top-5 classes at its level (from logits/)."""
        r = self.model.rows.iloc[row]
        rec = self.model.indices[row]
        if rec >= 0 and self.dataset is not None:
            self.preview.show_record(self.dataset, rec)
        else:
            self.preview.clear()
            self.preview.image.setText("image not available")
        owners = r["owners"] if isinstance(r["owners"], str) and r["owners"] else r["predicted_class"]
        pred = f"{r['predicted_label']} ({owners})" if r["predicted_label"] else str(owners)
        score = f", score {r['score']:.4f}" if pd.notna(r["score"]) else ""
        detail = f"<br>{r['detail']}" if r["detail"] else ""
        if isinstance(r.get("answer"), str) and r.get("answer"):
            import html

            detail += f"<br>answer: <i>{html.escape(one_line(r['answer'], 500))}</i>"
        self.prediction.setText(f"predicted: <b>{pred}</b>{score}<br>"
                                f"{r['backbone']}, {r['level']} name(s) per class · {r['group']}{detail}")
        self.top_list.clear()
        self.top_list.addItem("loading…")
        backbone, level, image, source = str(r["backbone"]), int(r["level"]), str(r["image"]), self.source
        if source is None or backbone not in source.backbones():  # an ensemble row: show the first backbone's view
            backbone = source.backbones()[0] if source is not None and source.backbones() else backbone
        self.top_title.setText(f"Top-5 classes of {backbone} at {level} name(s) per class")
        gen = self._generation

        def done(top: list[tuple[str, float]]) -> None:
            if gen != self._generation:
                return
            exact = float(r["score"]) if pd.notna(r["score"]) else None
            if top and exact is not None and str(r["backbone"]) == backbone and top[0][0] in str(owners).split("|") \
                    and abs(top[0][1] - exact) < 5e-3:
                # the saved class scores are half precision: the winner's score is the exact one of
                # predictions.csv, so the two places show the same number
                top = [(top[0][0], exact)] + list(top[1:])
            self.top5 = top
            self.top_list.clear()
            for i, (cls, s) in enumerate(top, 1):
                self.top_list.addItem(f"{i}. {cls}   {s:.4f}" + ("   ← true class" if cls == r["true_class"] else ""))
            if not top:
                self.top_list.addItem("no saved class scores for this level (logits/)")
            self.preview_ready.emit()

        run_task(lambda: source.top_classes(backbone, level, image, 5) if source is not None else [], done,
                 lambda e, _tb: self.top_list.addItem(f"cannot read class scores: {e}"), context=self)

    # ---------------------------------------------------------------- export

    def selected_rows(self) -> pd.DataFrame:
        """The selected thumbnails' rows, or every row when nothing is selected."""
        rows = sorted({ix.row() for ix in self.grid.selectionModel().selectedIndexes()})
        return self.model.rows.iloc[rows] if rows else self.model.rows

    def export_csv(self, path: str | Path) -> Path:
        from core.util.tables import neutralise_frame

        path = Path(path)  # for people: values a spreadsheet would run as formulas get a leading quote
        neutralise_frame(self.selected_rows().reindex(columns=EXPORT_COLUMNS)).to_csv(path, index=False)
        self.status_message.emit(f"{len(self.selected_rows())} image(s) saved to {path}")
        return path

    def export_dialog(self) -> None:
        run_dir = getattr(self.source, "run_dir", None) or getattr(self.source, "dir", None)
        start = Path(settings.get_str("last/export_dir", str(run_dir or Path.home()))) / "images.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Export images", str(start), "CSV (*.csv)")
        if path:
            settings.set_value("last/export_dir", str(Path(path).parent))
            self.export_csv(path)

    def paths(self) -> list[str]:
        """Files of the selected (or all) rows: the dataset's own paths when known."""
        out = []
        root = Path(self.dataset.root) if self.dataset is not None else None
        for im in self.selected_rows()["image"].astype(str):
            i = self.record_of.get(im)
            rec = self.dataset.records[i] if i is not None and self.dataset is not None else None
            if rec is not None and rec.path is not None:
                out.append(str(rec.path))
            else:
                out.append(str(root / im) if root is not None else im)
        return out

    def copy_paths(self) -> None:
        from core.util.tables import neutralise

        paths = self.paths()  # pasted into a spreadsheet, a path starting with '=' must stay text
        QGuiApplication.clipboard().setText("\n".join(neutralise(p) for p in paths))
        self.status_message.emit(f"{len(paths)} path(s) copied to the clipboard")


def sample_run(out: Path, per_class: int = 4) -> Path:
    """A small run directory for the preview: demo images and made-up predictions (no model)."""
    import json

    from core.demo.data import write_demo_dataset
    from core.labels.labelset import load_labels

    root = write_demo_dataset(out / "demo", n_per_class=per_class) / "images"
    labels = load_labels(out / "demo" / "labels.csv")
    from core.data import load_dataset

    ds = load_dataset(root)
    rng = np.random.default_rng(0)
    rows = []
    for level in (1, 2):
        for r in ds.records:
            ok = rng.random() < 0.7
            cls = r.label if ok else labels.classes[int(rng.integers(len(labels.classes)))]
            names = labels.names[cls][:level]
            rows.append({"image": r.id, "true_class": r.label, "level": level, "predicted_label": names[-1],
                         "predicted_class": cls, "correct": int(cls == r.label), "ordering": 0,
                         "backbone": "demo-resnet", "score": round(float(rng.uniform(0.2, 0.35)), 5)})
    run = out / "run"
    run.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(run / "predictions.csv", index=False)
    meta = {"status": "completed", "config": {"dataset": str(root), "labels_resolved": labels.names}}
    (run / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    return run


def preview() -> QWidget:
    """The gallery on a small made-up run (written to a temporary folder)."""
    import tempfile

    from core.results.drilldown import ClassAtLevel, RunImages

    run_dir = sample_run(Path(tempfile.mkdtemp(prefix="semscale-gallery-")))
    w = GalleryPanel()
    src = RunImages.from_dir(run_dir)
    w.set_source(src)
    first = src.predictions.iloc[0]
    w.show_selection(ClassAtLevel(str(first["backbone"]), 2, str(first["true_class"])))
    w.resize(1000, 600)
    w.setWindowTitle("semscale — gallery preview")
    return w


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
