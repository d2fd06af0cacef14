"""Choose one or more backbones: the bundled demo models, an open_clip architecture with a
pretrained tag, a local checkpoint, a CLIP server or a vision-language model. Ticking several
runs them on the same label set for comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
    QListWidgetItem, QPushButton, QVBoxLayout, QWidget,
)

from semscale_gui import settings
from semscale_gui.icons import icon
from semscale_gui.widgets import tool_button

USER_KEY = "backbones/user"
CHECKED_KEY = "backbones/checked"


def spec_key(spec: dict) -> str:
    key = {k: spec.get(k) for k in ("model", "pretrained", "checkpoint")}
    if spec.get("options"):  # a VLM asked openly and the same VLM in closed mode are two backbones
        key["options"] = spec["options"]
    return json.dumps(key, sort_keys=True)


def spec_title(spec: dict) -> str:
    if spec.get("label"):
        return spec["label"]
    model = spec["model"]
    if model.endswith(".json"):
        model = Path(model).stem
    if spec.get("pretrained"):
        return f"{model} / {spec['pretrained']}"
    if spec.get("checkpoint") and not spec.get("demo"):
        return f"{model} ← {Path(spec['checkpoint']).name}"
    mode = (spec.get("options") or {}).get("mode")
    return f"{model} [{mode}]" if mode and mode != "open" else model


def spec_tooltip(spec: dict) -> str:
    """The entry's description, checkpoint and kind options (variable names only, never a key)."""
    tip = spec.get("about") or ""
    if spec.get("checkpoint"):
        tip = f"{tip}\ncheckpoint: {spec['checkpoint']}".strip()
    if spec.get("options"):
        tip = "\n".join([tip, spec["model"], *(f"{k}: {v}" for k, v in spec["options"].items())]).strip()
    return tip or spec_title(spec)



def _ok_cancel_layout(dialog: QDialog, form: QFormLayout, *below: QWidget) -> None:
    """Form, then any notes, then OK/Cancel wired to accept/reject."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    lay = QVBoxLayout(dialog)
    lay.addLayout(form)
    for w in below:
        lay.addWidget(w)
    lay.addWidget(buttons)

class OpenClipDialog(QDialog):
    """Architecture + pretrained tag, from open_clip's own lists."""

    def __init__(self, models: list[tuple[str, list[str]]], parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add an open_clip model")
        self.models = {m: tags for m, tags in models if tags != ["(bundled)"]}
        self.arch = QComboBox()
        self.arch.setEditable(True)
        self.arch.addItems(sorted(self.models))
        self.tag = QComboBox()
        self.tag.setEditable(True)
        self.arch.currentTextChanged.connect(self._arch_changed)
        note = QLabel("Pretrained weights load from open_clip's cache or the Hugging Face hub. "
                      "On an offline machine, copy the checkpoint here and use “Add checkpoint…” instead.")
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        form = QFormLayout()
        form.addRow("Architecture:", self.arch)
        form.addRow("Pretrained tag:", self.tag)
        _ok_cancel_layout(self, form, note)
        default = "ViT-B-32" if "ViT-B-32" in self.models else self.arch.currentText()
        self.arch.setCurrentText(default)
        self._arch_changed(default)
        self.resize(460, 180)

    def _arch_changed(self, arch: str) -> None:
        self.tag.clear()
        self.tag.addItems(self.models.get(arch, []))

    def spec(self) -> dict:
        return {"model": self.arch.currentText().strip(), "pretrained": self.tag.currentText().strip() or None,
                "checkpoint": None}


class CheckpointDialog(QDialog):
    """A local checkpoint file and the architecture (name or config .json) it belongs to."""

    def __init__(self, models: list[str], parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a local checkpoint")
        self.path = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_ckpt)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.arch = QComboBox()
        self.arch.setEditable(True)
        self.arch.addItems(models)
        cfg = QPushButton("Config .json…")
        cfg.setToolTip("A custom open_clip model config (embed_dim, vision_cfg, text_cfg)")
        cfg.clicked.connect(self._browse_cfg)
        row2 = QHBoxLayout()
        row2.addWidget(self.arch, 1)
        row2.addWidget(cfg)
        self.label = QLineEdit()
        self.label.setPlaceholderText("optional display name")
        form = QFormLayout()
        form.addRow("Checkpoint:", row)
        form.addRow("Architecture:", row2)
        form.addRow("Name:", self.label)
        _ok_cancel_layout(self, form)
        self.resize(560, 160)

    def _browse_ckpt(self) -> None:
        p, _ = QFileDialog.getOpenFileName(self, "Checkpoint", settings.get_str("last/checkpoint_dir", str(Path.home())),
                                           "Checkpoints (*.pt *.pth *.bin *.safetensors *.ckpt);;All files (*)")
        if p:
            settings.set_value("last/checkpoint_dir", str(Path(p).parent))
            self.path.setText(p)

    def _browse_cfg(self) -> None:
        p, _ = QFileDialog.getOpenFileName(self, "Model config", settings.get_str("last/checkpoint_dir", str(Path.home())),
                                           "open_clip config (*.json)")
        if p:
            self.arch.setCurrentText(p)

    def spec(self) -> dict:
        return {"model": self.arch.currentText().strip(), "pretrained": None,
                "checkpoint": self.path.text().strip() or None, "label": self.label.text().strip() or None}


class BackbonePicker(QWidget):
    """A checkable list of backbones; the ticked ones run, in list order."""

    changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setMinimumHeight(90)
        self.list.itemChanged.connect(self._item_changed)
        self.hint = QLabel("Loading the bundled demo backbones …")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #666;")
        self.add_openclip = tool_button("add", "Add an open_clip architecture with a pretrained tag",
                                        self.add_openclip_dialog, "open_clip…")
        self.add_ckpt = tool_button("add", "Add a local checkpoint file (offline weights)", self.add_checkpoint_dialog,
                                    "Checkpoint…")
        self.add_server = tool_button("add", "Add a running CLIP server (clip-as-service, HTTP or gRPC)",
                                      self.add_clip_server_dialog, "CLIP server…")
        self.add_vlm = tool_button("add", "Add a vision-language model: a local folder or an OpenAI-compatible "
                                   "endpoint", self.add_vlm_dialog, "VLM…")
        self.remove = tool_button("remove", "Remove the selected backbone", self.remove_selected)
        self.dataset_provider = None  # () -> (the open dataset or None, its class names or None)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.add_openclip)
        row.addWidget(self.add_ckpt)
        kinds_row = QHBoxLayout()  # a second row: four buttons side by side would not fit the dock
        kinds_row.setContentsMargins(0, 0, 0, 0)
        kinds_row.addWidget(self.add_server)
        kinds_row.addWidget(self.add_vlm)
        kinds_row.addStretch(1)
        row.addStretch(1)
        row.addWidget(self.remove)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.hint)
        lay.addLayout(row)
        lay.addLayout(kinds_row)
        self._models: list[tuple[str, list[str]]] = []
        self._loading = False
        for spec in settings.get_json(USER_KEY, []):
            if isinstance(spec, dict) and spec.get("model"):
                self._add_item(spec, save=False)
        self._restore_checks()

    # ---------------------------------------------------------------- contents

    def set_engine_info(self, demo_index: dict, models: list[tuple[str, list[str]]]) -> None:
        """Called once the engine has loaded: bundled demos and open_clip's model list."""
        self._models = models
        row = 0
        for name, entry in demo_index.items():
            spec = {"model": name, "pretrained": None, "checkpoint": None, "demo": True,
                    "label": None, "about": entry.get("description", "")}
            if self._find(spec) is None:
                self._add_item(spec, save=False, row=row)
            row += 1
        if demo_index:
            self.hint.setText("Bundled demo backbones work offline. Tick several to compare them.")
        else:
            self.hint.setText("No bundled demo backbones are installed. Add an open_clip model or a local "
                              "checkpoint.")
        self._restore_checks()
        if not self.checked_specs() and self.list.count():  # first launch: the bundled demos, else the first
            from semscale_gui.demo_setup import DEFAULT_DEMOS

            items = [it for it in (self._find({"model": n, "pretrained": None, "checkpoint": None})
                                   for n in DEFAULT_DEMOS) if it is not None]
            for item in items or [self.list.item(0)]:
                item.setCheckState(Qt.CheckState.Checked)
        self.changed.emit()

    def _find(self, spec: dict) -> Optional[QListWidgetItem]:
        key = spec_key(spec)
        for i in range(self.list.count()):
            if spec_key(self.list.item(i).data(Qt.ItemDataRole.UserRole)) == key:
                return self.list.item(i)
        return None

    def _add_item(self, spec: dict, save: bool = True, row: Optional[int] = None, checked: bool = False) -> QListWidgetItem:
        item = self._find(spec)
        if item is None:
            item = QListWidgetItem(icon("backbone"), spec_title(spec))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setData(Qt.ItemDataRole.UserRole, dict(spec))
            item.setToolTip(spec_tooltip(spec))
            item.setCheckState(Qt.CheckState.Unchecked)
            if row is None:
                self.list.addItem(item)
            else:
                self.list.insertItem(row, item)
        if checked:
            item.setCheckState(Qt.CheckState.Checked)
        if save:
            self._save()
        return item

    def add_spec(self, spec: dict, checked: bool = True) -> None:
        self._add_item(spec, checked=checked)
        self.changed.emit()

    def remove_selected(self) -> None:
        item = self.list.currentItem()
        if item is None or item.data(Qt.ItemDataRole.UserRole).get("demo"):
            return
        self.list.takeItem(self.list.row(item))
        self._save()
        self.changed.emit()

    def add_openclip_dialog(self) -> None:
        models = self._models or self._load_models()
        dlg = OpenClipDialog(models, self)
        if dlg.exec() == QDialog.DialogCode.Accepted and dlg.spec()["model"]:
            self.add_spec(dlg.spec())

    def add_checkpoint_dialog(self) -> None:
        models = [m for m, tags in (self._models or self._load_models()) if tags != ["(bundled)"]]
        dlg = CheckpointDialog(models, self)
        if dlg.exec() == QDialog.DialogCode.Accepted and dlg.spec()["checkpoint"]:
            self.add_spec(dlg.spec())

    def add_clip_server_dialog(self) -> None:
        from semscale_gui.kind_dialogs import ClipServerDialog

        dlg = ClipServerDialog(self)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.add_spec(dlg.spec())

    def current_dataset(self) -> tuple[object, Optional[list[str]]]:
        """(the dataset open in the window, the label set's class names) for a VLM's test answer."""
        if self.dataset_provider is not None:
            return self.dataset_provider()
        window = self.parentWidget()  # the main window (a floating dock's window() is the dock itself)
        while window is not None and not hasattr(window, "browser"):
            window = window.parentWidget()
        ds = getattr(getattr(window, "browser", None), "dataset", None)
        names: Optional[list[str]] = None
        doc = getattr(window, "doc", None)
        if doc is not None and hasattr(doc, "to_labelset"):  # every name of the label set being edited
            try:
                names = [n for ns in doc.to_labelset().names.values() for n in ns] or None
            except Exception:  # a label set being edited may be incomplete; the dataset's classes will do
                names = None
        if names is None and ds is not None:
            names = list(getattr(ds, "classes", []) or []) or None
        return ds, names

    def add_vlm_dialog(self) -> None:
        from semscale_gui.kind_dialogs import VlmDialog

        ds, names = self.current_dataset()
        dlg = VlmDialog(ds, names, self)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.add_spec(dlg.spec())

    def _load_models(self) -> list[tuple[str, list[str]]]:
        from core.models.openclip import list_models

        self._models = list_models()
        return self._models

    # ---------------------------------------------------------------- selection

    def checked_specs(self) -> list[dict]:
        out = []
        for i in range(self.list.count()):
            it = self.list.item(i)
            if it.checkState() == Qt.CheckState.Checked:
                out.append(dict(it.data(Qt.ItemDataRole.UserRole)))
        return out

    def set_checked(self, specs: list[dict]) -> None:
        """Tick exactly these (adding any that are not listed yet), e.g. to re-run a run."""
        keys = set()
        for s in specs:
            self._add_item(s, save=False)
            keys.add(spec_key(s))
        self.list.blockSignals(True)
        for i in range(self.list.count()):
            it = self.list.item(i)
            on = spec_key(it.data(Qt.ItemDataRole.UserRole)) in keys
            it.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self._save()
        self.changed.emit()

    def _item_changed(self, _item: QListWidgetItem) -> None:
        self._save()
        self.changed.emit()

    def _save(self) -> None:
        user = [it.data(Qt.ItemDataRole.UserRole) for it in (self.list.item(i) for i in range(self.list.count()))
                if not it.data(Qt.ItemDataRole.UserRole).get("demo")]
        settings.set_json(USER_KEY, user)
        settings.set_json(CHECKED_KEY, [spec_key(s) for s in self.checked_specs()])

    def _restore_checks(self) -> None:
        keys = set(settings.get_json(CHECKED_KEY, []))
        self.list.blockSignals(True)
        for i in range(self.list.count()):
            it = self.list.item(i)
            if spec_key(it.data(Qt.ItemDataRole.UserRole)) in keys:
                it.setCheckState(Qt.CheckState.Checked)
        self.list.blockSignals(False)


def preview() -> QWidget:
    w = BackbonePicker()
    w.set_engine_info({"demo-vit": {"description": "tiny ViT"}, "demo-resnet": {"description": "tiny ResNet"}}, [])
    w.resize(360, 220)
    w.setWindowTitle("semscale — backbone picker preview")
    return w


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
