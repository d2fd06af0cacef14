"""Where suggested names should come from: WordNet or the selected backbone's neighbours.

The dialog only builds a :class:`~semscale_gui.suggest_job.SuggestRequest`; the editor
runs it. Whether WordNet can be found is checked in the background as the dialog opens
(and again when the user points at a folder), so a missing database is explained before
anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
    QGroupBox, QHBoxLayout, QLabel, QLineEdit, QRadioButton, QSpinBox, QVBoxLayout, QWidget,
)

from semscale_gui import settings
from semscale_gui.suggest_job import SuggestRequest
from semscale_gui.tasks import run_task
from semscale_gui.widgets import tool_button

DEFAULT_VOCABULARY = 3000


def _row(*widgets: QWidget, stretch: int = 0) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    for i, w in enumerate(widgets):
        row.addWidget(w, 1 if i == stretch else 0)
    return row


class SuggestDialog(QDialog):
    """Options of one suggestion job; ``request()`` is what the user chose."""

    def __init__(self, classes: Sequence[str], longest: int, backbones: Sequence[tuple[str, Any]],
                 sweep_templates: Any = "plain", cache_dir: Optional[str] = None, use_cache: bool = True,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("suggestDialog")
        self.classes = list(classes)
        self.backbones = list(backbones)
        self.cache_dir, self.use_cache = cache_dir, use_cache
        self.sweep_templates = sweep_templates
        scope = f"class '{self.classes[0]}'" if len(self.classes) == 1 else f"all {len(self.classes)} classes"
        self.setWindowTitle(f"Suggest names for {scope}")

        # ---- source
        self.wordnet_radio = QRadioButton("WordNet synonyms")
        self.wordnet_radio.setToolTip("Lemmas of the class name's most frequent WordNet sense")
        self.neighbours_radio = QRadioButton("Embedding neighbours")
        self.neighbours_radio.setToolTip("Names nearest to the class name in the backbone's own text embedding space")
        self.source_group = QButtonGroup(self)
        for b in (self.wordnet_radio, self.neighbours_radio):
            self.source_group.addButton(b)
            b.toggled.connect(self._update)

        # ---- WordNet
        self.wordnet_where = QComboBox()
        self.wordnet_where.addItem("find automatically", "auto")
        self.wordnet_where.addItem("this folder:", "folder")
        self.wordnet_path = QLineEdit()
        self.wordnet_path.setPlaceholderText("a folder with data.noun and index.noun, nltk_data, or wordnet.zip")
        self.wordnet_browse = tool_button("open", "Choose the WordNet folder", self._browse_wordnet)
        self.wordnet_where.currentIndexChanged.connect(self._wordnet_changed)
        self.wordnet_path.editingFinished.connect(self._find_wordnet)
        self.wordnet_status = QLabel("looking for WordNet …")
        self.wordnet_status.setWordWrap(True)
        self.wordnet_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.related = QCheckBox("also one step up and down (hypernyms such as 'canine', hyponyms such as 'puppy')")
        wbox = QGroupBox("WordNet")
        wf = QFormLayout(wbox)
        wf.addRow("Database:", _row(self.wordnet_where, self.wordnet_path, self.wordnet_browse, stretch=1))
        wf.addRow(self.wordnet_status)
        wf.addRow(self.related)
        self.wordnet_box = wbox

        # ---- neighbours
        self.backbone = QComboBox()
        for title, spec in self.backbones:
            self.backbone.addItem(title, spec)
        self.backbone_note = QLabel()
        self.backbone_note.setWordWrap(True)
        self.vocab_wordnet = QRadioButton("WordNet nouns, at most")
        self.vocab_file_radio = QRadioButton("word-list file:")
        self.vocab_group = QButtonGroup(self)
        for b in (self.vocab_wordnet, self.vocab_file_radio):
            self.vocab_group.addButton(b)
            b.toggled.connect(self._update)
        self.max_vocabulary = QSpinBox()
        self.max_vocabulary.setRange(10, 200000)
        self.max_vocabulary.setSingleStep(500)
        self.max_vocabulary.setToolTip("Each vocabulary name is encoded once per template (cached afterwards); "
                                       "on a CPU large vocabularies take minutes")
        self.vocab_file = QLineEdit()
        self.vocab_file.setPlaceholderText("one word or phrase per line")
        self.vocab_file.textChanged.connect(self._update)
        self.vocab_file.textEdited.connect(lambda _t: self.vocab_file_radio.setChecked(True))
        vocab_browse = tool_button("open", "Choose a word-list file", self._browse_vocabulary)
        self.templates = QComboBox()
        self.templates.addItem("plain: one template (fastest)", "plain")
        self.templates.addItem("the sweep's templates", "sweep")
        self.templates.setToolTip("Names are embedded as a sweep embeds categories; more templates cost more time")
        self.min_similarity = QDoubleSpinBox()
        self.min_similarity.setRange(0.0, 1.0)
        self.min_similarity.setSingleStep(0.05)
        self.min_similarity.setDecimals(2)
        self.min_similarity.setSpecialValueText("off")
        self.min_similarity.setToolTip("Leave out names whose cosine similarity to the class name is lower")
        nbox = QGroupBox("Embedding neighbours")
        nf = QFormLayout(nbox)
        nf.addRow("Backbone:", self.backbone)
        nf.addRow("", self.backbone_note)
        nf.addRow("Vocabulary:", _row(self.vocab_wordnet, self.max_vocabulary, QLabel("names"), QWidget(), stretch=3))
        nf.addRow("", _row(self.vocab_file_radio, self.vocab_file, vocab_browse, stretch=1))
        nf.addRow("Templates:", self.templates)
        nf.addRow("Min. similarity:", self.min_similarity)
        self.neighbours_box = nbox

        # ---- how many
        self.per_class = QSpinBox()
        self.per_class.setRange(1, 256)
        self.per_class.setToolTip("Your own names count; a class that already has this many gets none")
        self.per_class_note = QLabel()
        self.per_class_note.setStyleSheet("color: #555;")
        self._longest = longest

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Suggest")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b00020;")

        form = QFormLayout()
        form.addRow("Source:", _row(self.wordnet_radio, self.neighbours_radio, QWidget(), stretch=2))
        form.addRow("Names per class:", _row(self.per_class, self.per_class_note, stretch=1))
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(wbox)
        lay.addWidget(nbox)
        lay.addWidget(self.problem)
        lay.addWidget(self.buttons)
        self._wordnet_found: Optional[bool] = None
        self._wordnet_generation = 0
        self._restore()
        self.per_class.valueChanged.connect(self._update)
        self.resize(620, 10)
        self._update()  # _restore() has started looking for WordNet; also fits the height

    # ---------------------------------------------------------------- settings

    def _restore(self) -> None:
        source = settings.get_str("suggest/source", "wordnet")
        (self.neighbours_radio if source == "neighbours" and self.backbones else self.wordnet_radio).setChecked(True)
        path = settings.get_str("suggest/wordnet_path", "")
        self.wordnet_path.setText(path)
        self.wordnet_where.setCurrentIndex(1 if path and settings.get_str("suggest/wordnet_where") == "folder" else 0)
        self._wordnet_changed()
        self.related.setChecked(settings.get_str("suggest/related", "false") == "true")
        self.vocab_file.setText(settings.get_str("suggest/vocabulary", ""))
        (self.vocab_file_radio if settings.get_str("suggest/vocab_kind") == "file" else self.vocab_wordnet).setChecked(True)
        self.max_vocabulary.setValue(int(settings.get_str("suggest/max_vocabulary", str(DEFAULT_VOCABULARY)) or 3000))
        self.templates.setCurrentIndex(max(0, self.templates.findData(settings.get_str("suggest/templates", "plain"))))
        try:
            self.min_similarity.setValue(float(settings.get_str("suggest/min_similarity", "0")))
        except ValueError:
            pass
        want = int(settings.get_str("suggest/per_class", "8") or 8)
        self.per_class.setValue(want if want > self._longest else min(256, self._longest + 4))

    def _remember(self) -> None:
        settings.set_value("suggest/source", self.source())
        settings.set_value("suggest/wordnet_where", self.wordnet_where.currentData())
        settings.set_value("suggest/wordnet_path", self.wordnet_path.text().strip())
        settings.set_value("suggest/related", "true" if self.related.isChecked() else "false")
        settings.set_value("suggest/vocabulary", self.vocab_file.text().strip())
        settings.set_value("suggest/vocab_kind", "file" if self.vocab_file_radio.isChecked() else "wordnet")
        settings.set_value("suggest/max_vocabulary", str(self.max_vocabulary.value()))
        settings.set_value("suggest/templates", self.templates.currentData())
        settings.set_value("suggest/min_similarity", str(self.min_similarity.value()))
        settings.set_value("suggest/per_class", str(self.per_class.value()))

    # ---------------------------------------------------------------- WordNet lookup (background)

    def _wordnet_changed(self) -> None:
        folder = self.wordnet_where.currentData() == "folder"
        self.wordnet_path.setEnabled(folder)
        self.wordnet_browse.setEnabled(folder)
        self._find_wordnet()

    def _browse_wordnet(self) -> None:
        start = self.wordnet_path.text().strip() or str(Path.home())
        d = QFileDialog.getExistingDirectory(self, "WordNet folder", start)
        if d:
            self.wordnet_path.setText(d)
            self._find_wordnet()

    def wordnet_location(self) -> Optional[str]:
        """The folder the user named, or None to let the engine look."""
        if self.wordnet_where.currentData() == "folder":
            return self.wordnet_path.text().strip() or None
        return None

    def _find_wordnet(self) -> None:
        if not hasattr(self, "per_class"):
            return  # still building
        from core import synonyms as syn

        self._wordnet_generation += 1
        gen, where = self._wordnet_generation, self.wordnet_location()
        if self.wordnet_where.currentData() == "folder" and where is None:
            self._wordnet_found = False
            self.wordnet_status.setText("<span style='color:#b00020'>choose the folder that holds WordNet</span>")
            self._update()
            return
        self._wordnet_found = None
        self.wordnet_status.setText("looking for WordNet …")

        def done(loc: Any) -> None:
            if gen == self._wordnet_generation:
                self._wordnet_found = True
                self.wordnet_status.setText(f"<span style='color:#1b7f3b'>found: {loc.describe()}</span>")
                self._update()

        def failed(e: Exception, _tb: str) -> None:
            if gen == self._wordnet_generation:
                self._wordnet_found = False
                self.wordnet_status.setText(f"<span style='color:#b00020'>{e}</span>")
                self._update()

        run_task(lambda: syn.find_wordnet(where), done, failed, context=self)

    def _browse_vocabulary(self) -> None:
        start = self.vocab_file.text().strip() or settings.get_str("last/labels_dir", str(Path.home()))
        p, _ = QFileDialog.getOpenFileName(self, "Word list", start, "Text (*.txt *.csv);;All files (*)")
        if p:
            self.vocab_file.setText(p)
            self.vocab_file_radio.setChecked(True)

    # ---------------------------------------------------------------- state

    def source(self) -> str:
        return "neighbours" if self.neighbours_radio.isChecked() else "wordnet"

    def _update(self) -> None:
        if not hasattr(self, "ok_button"):
            return
        nb = self.source() == "neighbours"
        self.neighbours_box.setEnabled(nb)
        self.related.setEnabled(not nb)
        self.max_vocabulary.setEnabled(nb and self.vocab_wordnet.isChecked())
        self.vocab_file.setEnabled(nb and self.vocab_file_radio.isChecked())
        uses_wordnet = not nb or self.vocab_wordnet.isChecked()
        self.wordnet_box.setEnabled(uses_wordnet)
        if self.backbones:
            self.backbone_note.setText("one of the backbones ticked in the Run panel: names are compared in "
                                       "its own text-embedding space")
        else:
            self.backbone_note.setText("<span style='color:#b00020'>tick a backbone in the Run panel first</span>")
        k = self.per_class.value()
        full = len(self.classes) == 1 and self._longest >= k
        self.per_class_note.setText("yours included: the class already has enough" if full else "yours included")
        problem = ""
        if nb and not self.backbones:
            problem = "Embedding neighbours need a backbone: tick one in the Run panel."
        elif nb and self.vocab_file_radio.isChecked() and not self.vocab_file.text().strip():
            problem = "Choose a word-list file, or use WordNet nouns."
        self.problem.setText(problem)
        self.problem.setVisible(bool(problem))
        # a missing WordNet does not disable Suggest: running explains how to get one
        self.ok_button.setEnabled(not problem)
        self._fit_height()

    def fitting_height(self) -> int:
        """The height the layout needs at the current width (wrapped help lines included)."""
        lay = self.layout()
        return max(lay.totalHeightForWidth(self.width()) if lay.hasHeightForWidth() else 0,
                   lay.totalMinimumSize().height())

    def _fit_height(self) -> None:
        """Grow to fit wrapped help text: Qt sizes a dialog by its minimum height, which ignores
        that a label needs more lines at a given width, so sections overlapped and clipped."""
        need = self.fitting_height()
        if self.height() < need:
            self.resize(self.width(), need)
        # a label given new text (the WordNet status) reports its wrapped height only after the
        # pending layout request is handled: fit once more then
        QTimer.singleShot(0, self, self._fit_height_now)

    def _fit_height_now(self) -> None:
        need = self.fitting_height()
        if self.height() < need:
            self.resize(self.width(), need)

    def _accept(self) -> None:
        if self.ok_button.isEnabled():
            self._remember()
            self.accept()

    def request(self) -> SuggestRequest:
        nb = self.source() == "neighbours"
        spec = self.backbone.currentData() if nb else None
        return SuggestRequest(
            classes=list(self.classes), per_class=self.per_class.value(), source=self.source(),
            wordnet_path=self.wordnet_location(), include_related=self.related.isChecked() and not nb,
            backbone=spec, backbone_title=self.backbone.currentText() if nb else "",
            templates=self.sweep_templates if self.templates.currentData() == "sweep" else "plain",
            vocabulary_file=self.vocab_file.text().strip() if nb and self.vocab_file_radio.isChecked() else None,
            max_vocabulary=self.max_vocabulary.value(),
            min_similarity=self.min_similarity.value() or None,
            cache_dir=self.cache_dir, use_cache=self.use_cache)
