"""Lazily decoded thumbnails for the dataset browser.

Only items the view actually paints ask for a thumbnail (``data(DecorationRole)``), and
decoding runs on a small dedicated QThreadPool, never on the GUI thread. Switching class
or scrolling drops the queued requests, so browsing a 50,000-image class never queues
thousands of decodes. Results come back as QImage (safe to build off the GUI thread) and
are cached as QPixmap in a bounded LRU.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any, Optional

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from semscale_gui.icons import icon

THUMB_SIZE = 96
CACHE_ITEMS = 4000


def pil_to_qimage(im) -> QImage:
    """A deep-copied QImage of a PIL image (the PIL buffer may be freed afterwards)."""
    im = im.convert("RGB")
    w, h = im.size
    data = im.tobytes("raw", "RGB")
    return QImage(data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class DecodeSignals(QObject):
    """One for the whole app, never deleted: a job still decoding when its browser closes
    must emit on an object that exists (emitting on a deleted one can crash the process).
    Every model hears every result and keeps those stamped with its own generation."""

    loaded = Signal(object, int, QImage, object)  # (model id, generation), record index, image, (width, height)
    failed = Signal(object, int, str)


class DecodeJob(QRunnable):
    """Open record ``index`` of ``dataset`` and shrink it to ``size`` px (pool thread)."""

    def __init__(self, dataset: Any, index: int, size: int, stamp: tuple[int, int], signals: DecodeSignals) -> None:
        super().__init__()
        self.dataset, self.index, self.size, self.stamp, self.signals = dataset, index, size, stamp, signals
        self.setAutoDelete(True)

    def run(self) -> None:
        from PIL import Image

        from core.data.images import BadImage

        try:
            im = self.dataset.open(self.index)
            full = im.size
            im.thumbnail((self.size, self.size))
            if max(im.size) < self.size:  # small images (CIFAR, demo) are enlarged to the cell
                s = self.size / max(im.size)
                method = Image.Resampling.NEAREST if s >= 2 else Image.Resampling.BICUBIC
                im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), method)
            self.signals.loaded.emit(self.stamp, self.index, pil_to_qimage(im), full)
        except BadImage as e:
            self.signals.failed.emit(self.stamp, self.index, str(e))
        except Exception as e:  # one odd file must not kill the browser
            self.signals.failed.emit(self.stamp, self.index, f"{type(e).__name__}: {e}")


def decode_pool() -> tuple[QThreadPool, DecodeSignals]:
    """Two decoding threads (enough to keep up with scrolling, cheap on a laptop) and the
    signals their results come back on; both live as long as the application."""
    global _POOL, _SIGNALS
    if _POOL is None or _SIGNALS is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(2)
        _SIGNALS = DecodeSignals()
    return _POOL, _SIGNALS


_POOL: Optional[QThreadPool] = None
_SIGNALS: Optional[DecodeSignals] = None


def started_decode_pool() -> Optional[QThreadPool]:
    """The decoding pool if anything has used it (to wait for it on exit), else None."""
    return _POOL
_ids = itertools.count()


def next_decoder_id() -> int:
    """A number that tells one receiver's results from another's on the shared signals."""
    return next(_ids)


class ThumbnailModel(QAbstractListModel):
    """Records of one class; thumbnails are decoded on demand as the view paints them."""

    thumbnail_ready = Signal(int)  # record index (tests wait on this)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.dataset: Any = None
        self.indices: list[int] = []
        self._row_of: dict[int, int] = {}
        self._cache: "OrderedDict[int, QPixmap]" = OrderedDict()
        self._bad: dict[int, str] = {}
        self._pending: set[int] = set()
        self._id = next_decoder_id()
        self._generation = 0
        self.pool, self._signals = decode_pool()
        self._signals.loaded.connect(self._on_loaded)
        self._signals.failed.connect(self._on_failed)
        self._placeholder = icon("image").pixmap(QSize(48, 48))
        self._bad_icon = icon("warning").pixmap(QSize(40, 40))

    # ---------------------------------------------------------------- contents

    def set_dataset(self, dataset: Any) -> None:
        """A new dataset invalidates every cached thumbnail."""
        self.dataset = dataset
        self._cache.clear()
        self._bad.clear()
        self.set_indices([])

    def set_indices(self, indices: list[int]) -> None:
        self.beginResetModel()
        self.cancel_pending()
        self.indices = list(indices)
        self._row_of = {idx: r for r, idx in enumerate(self.indices)}
        self.endResetModel()

    def cancel_pending(self) -> None:
        """Forget queued decodes; whatever is still visible asks again when repainted."""
        self._generation += 1
        self.pool.clear()
        self._pending.clear()

    @property
    def n_pending(self) -> int:
        return len(self._pending)

    # ---------------------------------------------------------------- Qt model API

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.indices)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        rec_idx = self.indices[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            pm = self._cache.get(rec_idx)
            if pm is not None:
                self._cache.move_to_end(rec_idx)
                return pm
            if rec_idx in self._bad:
                return self._bad_icon
            self._request(rec_idx)
            return self._placeholder
        if role == Qt.ItemDataRole.ToolTipRole:
            rec = self.dataset.records[rec_idx]
            reason = self._bad.get(rec_idx)
            return f"{rec.id}\nunreadable: {reason}" if reason else rec.id
        if role == Qt.ItemDataRole.UserRole:
            return rec_idx
        if role == Qt.ItemDataRole.SizeHintRole:
            return QSize(THUMB_SIZE + 6, THUMB_SIZE + 6)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return self.dataset.records[rec_idx].id
        return None

    # ---------------------------------------------------------------- decoding

    def _request(self, rec_idx: int) -> None:
        if rec_idx in self._pending or self.dataset is None:
            return
        self._pending.add(rec_idx)
        self.pool.start(DecodeJob(self.dataset, rec_idx, THUMB_SIZE, (self._id, self._generation), self._signals))

    def _on_loaded(self, stamp: tuple[int, int], rec_idx: int, image: QImage, _size: object) -> None:
        if stamp != (self._id, self._generation):
            return
        self._pending.discard(rec_idx)
        self._cache[rec_idx] = QPixmap.fromImage(image)
        while len(self._cache) > CACHE_ITEMS:
            self._cache.popitem(last=False)
        self._changed(rec_idx)

    def _on_failed(self, stamp: tuple[int, int], rec_idx: int, reason: str) -> None:
        if stamp != (self._id, self._generation):
            return
        self._pending.discard(rec_idx)
        self._bad[rec_idx] = reason
        self._changed(rec_idx)

    def _changed(self, rec_idx: int) -> None:
        row = self._row_of.get(rec_idx)
        if row is not None:
            ix = self.index(row)
            self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])
        self.thumbnail_ready.emit(rec_idx)

    def n_loaded(self) -> int:
        return sum(1 for i in self.indices if i in self._cache or i in self._bad)
