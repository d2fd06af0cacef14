"""Prompt templates: a preset (open_clip's OpenAI / simple ImageNet sets, one plain
template, or CLIP_benchmark's per-dataset sets when it is installed) or the user's own
lines, validated as they type."""

from __future__ import annotations

import sys
from typing import Any, Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from semscale_gui.tasks import run_task

PRESET_TITLES = {"openai": "OpenAI ImageNet", "simple": "simple ImageNet", "plain": "plain", "custom": "custom"}


def preset_titles() -> dict[str, str]:
    """The built-in presets, then CLIP_benchmark's (``clip_benchmark:NAME``) where installed."""
    from core.labels.presets import PREFIX, template_names

    titles = dict(PRESET_TITLES)
    custom = titles.pop("custom")
    for name in template_names():
        titles[PREFIX + name] = f"CLIP_benchmark: {name}"
    titles["custom"] = custom
    return titles


class TemplateEditor(QWidget):
    """``value()`` is a preset name or a list of template strings (what SweepConfig takes)."""

    changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.preset = QComboBox()
        self.titles = preset_titles()
        for key, title in self.titles.items():
            self.preset.addItem(title, key)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("One template per line, with {} where the name goes, e.g.\na photo of a {}.")
        self.text.setTabChangesFocus(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self._cache: dict[str, list[str]] = {}
        self._loading: set[str] = set()
        self._custom = "a photo of a {}.\na picture of a {}."
        self._setting = False
        self.example_name = "house"  # the dataset's first class once one is open (set_example_name)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("Preset:"))
        top.addWidget(self.preset, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.status)
        self.preset.currentIndexChanged.connect(self._preset_changed)
        self.text.textChanged.connect(self._text_changed)
        self.set_value("simple")

    # ---------------------------------------------------------------- value

    def value(self) -> Any:
        key = self.preset.currentData()
        if key != "custom":
            return key
        return [ln.strip() for ln in self.text.toPlainText().splitlines() if ln.strip() and not ln.strip().startswith("#")]

    def set_value(self, value: Any) -> None:
        if isinstance(value, str) and value in self.titles and value != "custom":
            self.preset.setCurrentIndex(self.preset.findData(value))
            self._preset_changed()
        else:
            self._custom = "\n".join(value) if isinstance(value, (list, tuple)) else str(value)
            self.preset.setCurrentIndex(self.preset.findData("custom"))
            self._preset_changed()

    def error(self) -> Optional[str]:
        """A message when the custom templates are unusable, else None."""
        from core.util.errors import InputError
        from core.labels.labelset import validate_templates

        v = self.value()
        if isinstance(v, str):
            return None
        try:
            validate_templates(v)
        except InputError as e:
            line = f"line {e.line}: " if e.line else ""
            return line + e.message
        return None

    # ---------------------------------------------------------------- behaviour

    def _templates_of(self, key: str) -> Optional[list[str]]:
        """The preset's lines, or None while they load (open_clip is imported off the GUI thread)."""
        if key in self._cache:
            return self._cache[key]
        from core.labels.labelset import load_templates, preset_templates

        if key.startswith("clip_benchmark:"):  # a small JSON file: read at once
            try:
                self._cache[key] = load_templates(key)
            except Exception as e:  # noqa: BLE001 - shown in the editor, never a crash
                self._cache[key] = [f"# cannot load preset '{key}': {e}"]
            return self._cache[key]
        if key == "plain" or "open_clip" in sys.modules:
            self._cache[key] = preset_templates(key)
            return self._cache[key]
        if key not in self._loading:
            self._loading.add(key)
            run_task(lambda: preset_templates(key), lambda lines: self._loaded(key, lines),
                     lambda e, _tb: self._loaded(key, [f"# cannot load preset '{key}': {e}"]), context=self)
        return None

    def _loaded(self, key: str, lines: list[str]) -> None:
        self._loading.discard(key)
        self._cache[key] = lines
        if self.preset.currentData() == key:
            self._preset_changed()

    @property
    def ready(self) -> bool:
        return not self._loading

    def _preset_changed(self) -> None:
        key = self.preset.currentData()
        self._setting = True
        if key == "custom":
            self.text.setPlainText(self._custom)
        else:
            lines = self._templates_of(key)
            self.text.setPlainText("\n".join(lines) if lines is not None else "# loading the preset …")
            self.text.setReadOnly(lines is None)
        if key == "custom":
            self.text.setReadOnly(False)
        self._setting = False
        self._update_status()
        self.changed.emit()

    def set_example_name(self, name: str) -> None:
        """Show the templates filled with this name (the open dataset's first class)."""
        name = name.replace("_", " ").strip() or "house"
        if name != self.example_name:
            self.example_name = name
            self._update_status()

    def _text_changed(self) -> None:
        if self._setting:
            return
        key = self.preset.currentData()
        if key != "custom":
            # editing a preset turns it into custom templates, starting from the preset's lines
            self._custom = self.text.toPlainText()
            self.preset.blockSignals(True)
            self.preset.setCurrentIndex(self.preset.findData("custom"))
            self.preset.blockSignals(False)
        else:
            self._custom = self.text.toPlainText()
        self._update_status()
        self.changed.emit()

    def _update_status(self) -> None:
        err = self.error()
        if err:
            self.status.setText(f"<span style='color:#b00'>⚠ {err}</span>")
            return
        v = self.value()
        lines = self._templates_of(v) if isinstance(v, str) else v
        if lines is None:
            self.status.setText("loading the preset …")
            return
        example = lines[0].format(self.example_name) if lines else ""
        self.status.setText(f"{len(lines)} template{'s' if len(lines) != 1 else ''} · e.g. “{example}”")


def preview() -> QWidget:
    w = TemplateEditor()
    w.resize(420, 360)
    w.setWindowTitle("semscale — template editor preview")
    return w


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
