"""The folders the app writes to, checked before they are needed.

A packaged app is often installed where the user cannot write (``Program Files``, a
read-only image, a shared volume); everything it writes therefore goes to per-user
folders: the embedding cache (``core.embedding.cache.default_cache_dir()``: ``$SEMSCALE_CACHE_DIR``
or the platform's user cache folder), settings (QSettings, the user's config folder) and
data (demo dataset, runs). When one of them cannot be written the user is told which
folder and why, and chooses what to do, instead of a run failing half-way.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from semscale_gui import settings

CACHE_KEY = "run/cache_dir"  # a cache folder the user chose instead of the default


def bundle_dirs() -> list[Path]:
    """The frozen app's own folders (PyInstaller: the executable's folder and its unpacked
    ``_MEIPASS``), or [] when running from source."""
    if not getattr(sys, "frozen", False):
        return []
    dirs = [Path(os.path.dirname(sys.executable)).resolve()]
    if getattr(sys, "_MEIPASS", None):
        dirs.append(Path(sys._MEIPASS).resolve())
    return dirs


def folder_problem(path: str | Path) -> Optional[str]:
    """Why ``path`` cannot hold files the app writes, or None when it can.

    The folder is created if needed and a scratch file written and removed: permission
    bits alone do not tell (read-only mounts, ACLs, a file where the folder should be).
    """
    p = Path(path).expanduser()
    for bundle in bundle_dirs():
        if p.resolve() == bundle or bundle in p.resolve().parents:
            return "it is inside the application's own folder, which may be read-only or replaced on update"
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".semscale-write-test-"):
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def custom_cache_dir() -> Optional[str]:
    """The cache folder the user chose, or None for the engine's default."""
    return settings.get_str(CACHE_KEY, "") or None


def cache_dir() -> Path:
    """Where the embedding cache lives now (what a sweep with ``cache_dir=None`` uses)."""
    custom = custom_cache_dir()
    if custom:
        return Path(custom).expanduser()
    from core.embedding.cache import default_cache_dir  # no torch: safe on the GUI thread

    return default_cache_dir()


def settings_problem() -> Optional[str]:
    """A message when preferences cannot be saved (QSettings reports an access error)."""
    from PySide6.QtCore import QSettings

    s = settings.app_settings()
    s.sync()
    if s.status() == QSettings.Status.AccessError:
        return f"Preferences cannot be saved to {s.fileName()}: the folder is not writable."
    return None


def data_problem() -> Optional[str]:
    """A message when the per-user data folder (demo dataset, default runs folder) is unusable."""
    folder = settings.data_dir()
    why = folder_problem(folder)
    return None if why is None else f"The data folder {folder} cannot be written: {why}."


class CacheFolderDialog(QMessageBox):
    """The cache folder cannot be written: choose another folder, run without cache, or cancel.

    Non-blocking (``open()``): the answer arrives through ``on_choice(kind, folder)`` with
    kind ``choose`` (folder = the new writable folder), ``nocache`` or ``cancel``.
    """

    def __init__(self, folder: Path, reason: str, on_choice: Callable[[str, Optional[str]], None],
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("cacheFolderDialog")
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("Cache folder not writable")
        self.setText(f"The embedding cache cannot be written to\n{folder}\n({reason}).")
        self.setInformativeText("The cache lets a re-run or a new list of names skip the image encoder. "
                                "Choose another folder for it, or run this sweep without the cache.")
        self.choose_button = self.addButton("Choose another folder…", QMessageBox.ButtonRole.ActionRole)
        self.nocache_button = self.addButton("Continue without cache", QMessageBox.ButtonRole.AcceptRole)
        self.cancel_button = self.addButton(QMessageBox.StandardButton.Cancel)
        self.setDefaultButton(self.choose_button)
        self.folder = folder
        self._on_choice = on_choice
        self._answered = False
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.buttonClicked.connect(self._clicked)
        self.finished.connect(lambda _r: self._clicked(None))  # closed without a button: cancel

    def _clicked(self, button) -> None:
        if self._answered:
            return
        self._answered = True
        if button is self.choose_button:
            # after this box has closed: a file dialog on top of a closing message box confuses focus
            parent, folder, answer = self.parentWidget(), self.folder, self._on_choice
            QTimer.singleShot(0, lambda: choose_cache_folder(parent, folder, answer))
        elif button is self.nocache_button:
            self._on_choice("nocache", None)
        else:
            self._on_choice("cancel", None)


def choose_cache_folder(parent: Optional[QWidget], folder: Path, on_choice: Callable[[str, Optional[str]], None]) -> None:
    """Ask for a writable cache folder (again, until it is writable or the user gives up)."""
    start = str(folder.parent if folder.parent.is_dir() else Path.home())
    while True:
        d = QFileDialog.getExistingDirectory(parent, "Folder for the embedding cache", start)
        if not d:
            on_choice("cancel", None)
            return
        why = folder_problem(d)
        if why is None:
            settings.set_value(CACHE_KEY, d)
            on_choice("choose", d)
            return
        QMessageBox.warning(parent, "Cache folder not writable", f"{d} cannot be written either ({why}).")
        start = d
