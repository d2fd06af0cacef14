"""Run panel: backbones and sweep settings, Start/Cancel, and live progress.

It only gathers settings (``build_config``) and shows progress events; the main window
starts the sweep on the worker thread.
"""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
    QPushButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget,
)

from core.util import config as defaults
from core.util.config import DECODERS, PRECISIONS, BackboneSpec, SweepConfig, int_list
from core.util.events import stage_title
from core.util.names import slug

from semscale_gui import settings
from semscale_gui.backbone_picker import BackbonePicker
from semscale_gui.icons import icon
from semscale_gui.widgets import tool_button

UNITS = {"encode-images": "img/s", "hash": "img/s", "encode-text": "prompts/s", "ensembles": "steps/s"}
SPEC_FIELDS = ("model", "pretrained", "checkpoint", "label", "options")  # options: the kind's own


def format_eta(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _path_row(edit: QLineEdit, browse, tip: str) -> QHBoxLayout:
    """A path field with its "open" button, as one form row."""
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit, 1)
    row.addWidget(tool_button("open", tip, browse))
    return row

class RunPanel(QWidget):
    """Settings of a sweep and its progress."""

    start_requested = Signal()
    cancel_requested = Signal()
    levels_text_changed = Signal(str)
    context_changed = Signal()  # backbones, device, precision or cache use changed

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._running = False
        self._backbones_total = 0
        self._backbones_seen: list[str] = []
        self._build()
        self._restore()

    # ---------------------------------------------------------------- layout

    def _build(self) -> None:
        self.backbones = BackbonePicker()
        bbox = QGroupBox("Backbones")
        bl = QVBoxLayout(bbox)
        bl.addWidget(self.backbones)

        self.device = QComboBox()
        self.device.addItems([defaults.DEFAULT_DEVICE, "cpu"])
        self.device.setToolTip("auto = the first GPU if there is one, else the CPU")
        self.precision = QComboBox()
        self.precision.addItems(list(PRECISIONS))
        self.precision.setToolTip("fp16/bf16 halve GPU memory; on a CPU fp16 runs as bf16")
        self.decode = QComboBox()
        for d in DECODERS:
            self.decode.addItem({"draft": "draft (reduced-scale JPEG, fast)", "exact": "exact (full size)",
                                 "gpu": "gpu (nvJPEG, CUDA only)"}[d], d)
        self.decode.setToolTip(
            "How JPEGs become pixels. draft: libjpeg decodes at the smallest 1/2–1/8 scale still at least\n"
            "the model's input, then the exact resize runs (up to 8x faster on phone photos; 0.3% of\n"
            "predictions changed on the benchmark set). exact: full-size decoding. gpu: batched nvJPEG\n"
            "on the GPU (CUDA only). Part of the embedding cache's identity.")
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 4096)
        self.batch_size.setValue(defaults.DEFAULT_BATCH_SIZE)
        self.batch_size.setToolTip("Images per encoder batch; halved automatically on out-of-memory")
        self.workers = QSpinBox()
        self.workers.setRange(-1, 32)
        self.workers.setSpecialValueText("auto")
        self.workers.setValue(-1)
        self.workers.setToolTip("Processes decoding images (auto: none for small sets)")
        self.levels = QLineEdit()
        self.levels.setPlaceholderText("auto: 1, 2, 4, … up to the longest list")
        self.levels.setToolTip("Names per class at each level, e.g. 1,2,4,8 (empty = auto), or until-settled: "
                               "1,2,4,… until the curve plateaus, declines or fluctuates")
        self.levels.textChanged.connect(lambda t: self.levels_text_changed.emit(t.strip() or "auto"))
        self.mode = QComboBox()
        self.mode.addItem("flat — every name is a category", "flat")
        self.mode.addItem("pooled — mean of a class's names", "pooled")
        self.orderings = QSpinBox()
        self.orderings.setRange(1, 100)
        self.orderings.setValue(defaults.DEFAULT_ORDERINGS)
        self.orderings.setToolTip("Random orderings of each class's synonyms (canonical name stays first)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(defaults.DEFAULT_SEED)
        self.use_cache = QCheckBox("reuse cached embeddings")
        self.use_cache.setChecked(True)
        for sig in (self.backbones.changed, self.device.currentTextChanged, self.precision.currentTextChanged,
                    self.decode.currentIndexChanged, self.use_cache.toggled):
            sig.connect(lambda *_: self.context_changed.emit())
        self.out_dir = QLineEdit()
        self.out_dir.setToolTip("Each run gets its own sub-folder here")
        out_row = _path_row(self.out_dir, self._browse_out, "Choose the folder that collects runs")
        order_row = QHBoxLayout()
        order_row.setContentsMargins(0, 0, 0, 0)
        order_row.addWidget(self.orderings)
        order_row.addWidget(QLabel("seed"))
        order_row.addWidget(self.seed)
        dev_row = QHBoxLayout()
        dev_row.setContentsMargins(0, 0, 0, 0)
        dev_row.addWidget(self.device, 1)
        dev_row.addWidget(self.precision)
        batch_row = QHBoxLayout()
        batch_row.setContentsMargins(0, 0, 0, 0)
        batch_row.addWidget(self.batch_size)
        batch_row.addWidget(QLabel("decode workers"))
        batch_row.addWidget(self.workers)

        sbox = QGroupBox("Sweep")
        form = QFormLayout(sbox)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Device:", dev_row)
        form.addRow("Batch size:", batch_row)
        form.addRow("Decoding:", self.decode)
        self.templates_info = QLabel("simple")
        # one line (a wrapped label in a form row was squeezed to half a line); the whole text is in the tooltip
        self.templates_info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.templates_info.setTextFormat(Qt.TextFormat.PlainText)
        self.templates_info.setToolTip("The prompt templates of the run: change them under Names → Templates")
        form.addRow("Templates:", self.templates_info)
        form.addRow("Levels:", self.levels)
        form.addRow("Mode:", self.mode)
        form.addRow("Orderings:", order_row)
        form.addRow("", self.use_cache)
        form.addRow("Runs folder:", out_row)

        self.frequency = QLineEdit()
        self.frequency.setPlaceholderText("optional class,frequency CSV")
        self.frequency.setToolTip("Relate per-class accuracy to how often each class occurs in training data")
        freq_row = _path_row(self.frequency, self._browse_frequency, "Choose a class-frequency CSV")
        self._build_frequency_source(freq_row)
        self.external = QLineEdit()
        self.external.setPlaceholderText("optional image,predicted_class CSVs (NAME=FILE; …)")
        self.external.setToolTip("Another system's answers (e.g. a VLM) scored as a pseudo-backbone; "
                                 "separate several with ';'")
        ext_row = _path_row(self.external, self._browse_external, "Add a predictions CSV")
        self.ensembles = QCheckBox("k-shot ensembles, k =")
        self.ensembles.setChecked(True)
        self.ensembles.setToolTip("With several backbones: fit adaptive ensembles on k labelled images per class")
        self.shots = QLineEdit(",".join(map(str, defaults.DEFAULT_ENSEMBLE_SHOTS)))
        self.shots.setMaximumWidth(90)
        self.ensembles.toggled.connect(self.shots.setEnabled)
        ens_row = QHBoxLayout()
        ens_row.setContentsMargins(0, 0, 0, 0)
        ens_row.addWidget(self.ensembles)
        ens_row.addWidget(self.shots)
        ens_row.addStretch(1)
        # linear probes on each backbone's image embeddings (core.stats.probe), on the ensembles' k-shot splits
        self.probes = QCheckBox("linear probes, shots =")
        self.probes.setToolTip("Fit a logistic-regression probe on each backbone's image embeddings with this many "
                               "labelled images per class ('all' = half of each class) and compare it with zero-shot "
                               "on the same held-out images (probes.csv, the k-shot tab)")
        self.probe_shots = QLineEdit("1,2,4,16,all")
        self.probe_shots.setMaximumWidth(120)
        self.probe_shots.setEnabled(False)
        self.probes.toggled.connect(self.probe_shots.setEnabled)
        self.probe_solver = QComboBox()
        self.probe_solver.addItem("optimum", "optimum")
        self.probe_solver.addItem("as CLIP_benchmark", "clip_benchmark")
        self.probe_solver.setToolTip("optimum: the regularised logistic regression solved exactly; as CLIP_benchmark: "
                                     "its AdamW training (10 epochs), to reproduce its figures")
        self.probe_solver.setEnabled(False)
        self.probes.toggled.connect(self.probe_solver.setEnabled)
        probe_row = QHBoxLayout()
        probe_row.setContentsMargins(0, 0, 0, 0)
        probe_row.addWidget(self.probes)
        probe_row.addWidget(self.probe_shots)
        probe_row.addWidget(self.probe_solver)
        probe_row.addStretch(1)
        # control curves: the same name counts per class, with meaningless names (core.labels.controls)
        self.control_words = QCheckBox("random words")
        self.control_words.setToolTip("A control curve whose extra names are random real words (none of them a name "
                                      "of any class): shows what extra names do without their meaning")
        self.control_chars = QCheckBox("random letters")
        self.control_chars.setToolTip("A control curve whose extra names are random letter strings as long as the "
                                      "names they replace (WaffleCLIP's control)")
        ctrl_row = QHBoxLayout()
        ctrl_row.setContentsMargins(0, 0, 0, 0)
        ctrl_row.addWidget(self.control_words)
        ctrl_row.addWidget(self.control_chars)
        ctrl_row.addStretch(1)
        abox = QGroupBox("Analysis")
        aform = QFormLayout(abox)
        aform.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        aform.addRow("Frequency:", freq_row)
        aform.addRow("Predictions:", ext_row)
        aform.addRow("Synergy:", ens_row)
        aform.addRow("Probes:", probe_row)
        aform.addRow("Controls:", ctrl_row)
        from semscale_gui.robustness_options import PerturbOptions

        self.perturb_options = PerturbOptions()  # perturbed copies of the images (robustness.csv)
        aform.addRow("Robustness:", self.perturb_options)
        self.analysis_box = abox

        self.start_btn = QPushButton(icon("run"), "Start sweep")
        self.start_btn.setToolTip("Start the sweep (Ctrl+R)")
        self.cancel_btn = QPushButton(icon("stop"), "Cancel")
        self.cancel_btn.setToolTip("Stop after the current batch; finished levels are kept (Esc)")
        self.cancel_btn.setEnabled(False)
        for b in (self.start_btn, self.cancel_btn):
            b.setMinimumHeight(34)
        self.start_btn.setStyleSheet("QPushButton:enabled { font-weight: bold; }")
        self.start_btn.clicked.connect(self.start_requested)
        self.cancel_btn.clicked.connect(self.cancel_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_btn, 2)
        buttons.addWidget(self.cancel_btn, 1)

        self.stage = QLabel("Ready")
        self.stage.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setTextVisible(True)
        self.rate = QLabel(" ")
        self.rate.setStyleSheet("color: #555;")
        pbox = QGroupBox("Progress")
        pl = QVBoxLayout(pbox)
        pl.addWidget(self.stage)
        pl.addWidget(self.bar)
        pl.addWidget(self.rate)

        lay = QVBoxLayout(self)
        lay.addWidget(bbox, 1)
        lay.addWidget(sbox)
        lay.addWidget(abox)
        lay.addLayout(buttons)
        lay.addWidget(pbox)
        self.setMinimumWidth(340)

    # ---------------------------------------------------------------- settings

    def _restore(self) -> None:
        self.out_dir.setText(settings.get_str("run/out_dir", str(settings.runs_dir())))
        dev = settings.get_str("run/device", defaults.DEFAULT_DEVICE)
        if self.device.findText(dev) < 0:
            self.device.addItem(dev)
        self.device.setCurrentText(dev)
        self.precision.setCurrentText(settings.get_str("run/precision", defaults.DEFAULT_PRECISION))
        self.set_decode(settings.get_str("run/decode", defaults.DEFAULT_DECODE))
        try:
            self.batch_size.setValue(int(settings.get_str("run/batch_size", str(defaults.DEFAULT_BATCH_SIZE))))
        except ValueError:
            pass

    def remember(self) -> None:
        settings.set_value("run/out_dir", self.out_dir.text())
        settings.set_value("run/device", self.device.currentText())
        settings.set_value("run/precision", self.precision.currentText())
        settings.set_value("run/decode", self.decode.currentData())
        settings.set_value("run/batch_size", str(self.batch_size.value()))

    def set_decode(self, mode: str) -> None:
        i = self.decode.findData(mode)
        self.decode.setCurrentIndex(i if i >= 0 else self.decode.findData(defaults.DEFAULT_DECODE))

    def set_devices(self, devices: list[str]) -> None:
        cur = self.device.currentText()
        self.device.clear()
        self.device.addItems(devices)
        self.device.setCurrentText(cur if cur in devices else "auto")

    def _browse_out(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder for runs", self.out_dir.text() or str(Path.home()))
        if d:
            self.out_dir.setText(d)

    def _build_frequency_source(self, row: QHBoxLayout) -> None:
        """A choice before the file picker: the user's CSV, or wordfreq's web-text frequencies."""
        from core.stats.frequency import WORDFREQ

        self.frequency_source = QComboBox()
        self.frequency_source.addItem("CSV file", "file")
        self.frequency_source.addItem("wordfreq", WORDFREQ)
        self.frequency_source.setToolTip(
            "CSV file: your class,frequency counts (e.g. from the model's pretraining captions).\n"
            "wordfreq: how common each class's names are in web text (wordfreq, English), a proxy for "
            "pretraining frequency, with no file needed")
        self.frequency_source.currentIndexChanged.connect(self._frequency_source_changed)
        self.frequency_browse = row.itemAt(row.count() - 1).widget()  # _path_row's open button
        row.insertWidget(0, self.frequency_source)

    def _frequency_source_changed(self) -> None:
        is_file = self.frequency_source.currentData() == "file"
        self.frequency.setEnabled(is_file)
        self.frequency_browse.setEnabled(is_file)

    def class_frequency(self) -> Optional[str]:
        """The run's class-frequency setting: a CSV path, ``wordfreq``, or None."""
        if self.frequency_source.currentData() != "file":
            return str(self.frequency_source.currentData())
        return self.frequency.text().strip() or None

    def _browse_frequency(self) -> None:
        p, _ = QFileDialog.getOpenFileName(self, "Class frequency CSV", self.frequency.text() or str(Path.home()),
                                           "CSV (*.csv);;All files (*)")
        if p:
            self.frequency.setText(p)

    def _browse_external(self) -> None:
        p, _ = QFileDialog.getOpenFileName(self, "External predictions CSV", str(Path.home()), "CSV (*.csv)")
        if p:
            items = [x for x in self.external.text().split(";") if x.strip()] + [p]
            self.external.setText("; ".join(items))

    def suggest_frequency(self, path: Optional[Path]) -> None:
        """Fill in a class_frequency.csv shipped with the dataset unless the user chose one."""
        cur = self.frequency.text().strip()
        if path is not None and (not cur or self.frequency.property("auto")):
            self.frequency.setText(str(path))
            self.frequency.setProperty("auto", True)
        elif path is None and self.frequency.property("auto"):
            self.frequency.clear()

    def levels_text(self) -> str:
        return self.levels.text().strip() or "auto"

    def new_run_dir(self, dataset_name: str) -> Path:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path(self.out_dir.text().strip() or settings.runs_dir()).expanduser()
        name = slug(dataset_name, "-", 40, "run")
        out = base / f"{stamp}-{name}"
        n = 2
        while out.exists():
            out = base / f"{stamp}-{name}-{n}"
            n += 1
        return out

    def spec_fields(self) -> list[dict]:
        """The ticked backbones as BackboneSpec keyword arguments."""
        return [{**{k: s.get(k) for k in SPEC_FIELDS}, "options": dict(s.get("options") or {}),
                 "device": self.device.currentText(),
                 "precision": self.precision.currentText(), "decode": self.decode.currentData()}
                for s in self.backbones.checked_specs()]

    def backbone_specs(self) -> list[BackboneSpec]:
        return [BackboneSpec(**f) for f in self.spec_fields()]

    def cache_dir(self) -> Optional[str]:
        """The cache folder the user chose, or None for the engine's per-user default."""
        from semscale_gui.user_folders import custom_cache_dir

        return custom_cache_dir()

    def build_config(self, dataset: str, labels: str, templates: Any, out: str | Path,
                     use_cache: Optional[bool] = None) -> SweepConfig:
        """The SweepConfig these settings describe (validated by the engine when it runs).

        ``use_cache=False`` runs this sweep without the cache whatever the checkbox says
        (the user chose so when the cache folder could not be written).
        """
        levels = self.levels.text().strip() or None
        cfg = SweepConfig(
            dataset=str(dataset), out=str(out), backbones=self.backbone_specs(), labels=str(labels),
            templates=templates, levels=levels, mode=self.mode.currentData(), orderings=self.orderings.value(),
            seed=self.seed.value(), batch_size=self.batch_size.value(),
            num_workers=None if self.workers.value() < 0 else self.workers.value(),
            use_cache=self.use_cache.isChecked() if use_cache is None else use_cache,
            cache_dir=self.cache_dir(),
        )
        cfg.class_frequency = self.class_frequency()
        cfg.external_predictions = [x.strip() for x in self.external.text().split(";") if x.strip()]
        cfg.ensemble_shots = self.shot_list() if self.ensembles.isChecked() else []
        cfg.controls = self.controls()
        cfg.perturb = self.perturb_options.specs()
        cfg.probe_shots = self.probe_shot_list() if self.probes.isChecked() else []
        cfg.probe_solver = self.probe_solver.currentData()
        return cfg

    def probe_shot_list(self) -> list:
        """The probe shots typed ("1,2,all"); a typo raises InputError naming probe-shots."""
        from core.stats.probe import parse_probe_shots

        return parse_probe_shots(self.probe_shots.text().replace(" ", ""))

    def controls(self) -> list[str]:
        """The control curves ticked, in the engine's names."""
        return [name for name, box in (("random-words", self.control_words), ("random-chars", self.control_chars))
                if box.isChecked()]

    def shot_list(self) -> list[int]:
        return int_list(self.shots.text().replace(" ", ""), "ensemble-shots")

    def apply_config(self, cfg: dict) -> None:
        """Show a run.json config (for re-running it)."""
        lv = cfg.get("levels")
        self.levels.setText(",".join(map(str, lv)) if isinstance(lv, (list, tuple)) else (lv or ""))
        i = self.mode.findData(cfg.get("mode", defaults.DEFAULT_MODE))
        self.mode.setCurrentIndex(max(0, i))
        self.orderings.setValue(int(cfg.get("orderings", defaults.DEFAULT_ORDERINGS)))
        self.seed.setValue(int(cfg.get("seed", defaults.DEFAULT_SEED)))
        self.batch_size.setValue(int(cfg.get("batch_size", defaults.DEFAULT_BATCH_SIZE)))
        nw = cfg.get("num_workers")
        self.workers.setValue(-1 if nw is None else int(nw))
        self.use_cache.setChecked(bool(cfg.get("use_cache", True)))
        from core.stats.frequency import is_frequency_source

        freq = cfg.get("class_frequency") or ""
        source = self.frequency_source.findData(Path(freq).name.lower()) if freq and is_frequency_source(freq) else -1
        self.frequency_source.setCurrentIndex(max(0, source))
        self.frequency.setText("" if source >= 0 else freq)
        self.frequency.setProperty("auto", False)
        self.external.setText("; ".join(cfg.get("external_predictions") or []))
        if "ensemble_shots" in cfg:
            self.ensembles.setChecked(bool(cfg["ensemble_shots"]))
            if cfg["ensemble_shots"]:
                self.shots.setText(",".join(map(str, cfg["ensemble_shots"])))
        probe_shots = cfg.get("probe_shots") or []
        self.probes.setChecked(bool(probe_shots))
        if probe_shots:
            self.probe_shots.setText(",".join(map(str, probe_shots)))
        self.probe_solver.setCurrentIndex(max(0, self.probe_solver.findData(cfg.get("probe_solver", "optimum"))))
        controls = cfg.get("controls") or []
        self.control_words.setChecked("random-words" in controls)
        self.control_chars.setChecked("random-chars" in controls)
        self.perturb_options.set_specs(cfg.get("perturb") or [])
        specs = cfg.get("backbones", [])
        if specs:
            self.device.setCurrentText(specs[0].get("device", defaults.DEFAULT_DEVICE))
            self.precision.setCurrentText(specs[0].get("precision", defaults.DEFAULT_PRECISION))
            self.set_decode(specs[0].get("decode", "exact"))  # a spec from before the option decoded at full size
            self.backbones.set_checked([{k: s.get(k) for k in SPEC_FIELDS} for s in specs])

    # ---------------------------------------------------------------- running

    def set_ready_hint(self, text: str) -> None:
        """What Start will do, shown until a run starts (e.g. that it runs the demo)."""
        if not getattr(self, "_running", False):
            self.stage.setText(text or "Ready")

    def set_templates_summary(self, text: str) -> None:
        """Which templates the run will use (set in the Names tab), shown where the run starts."""
        self.templates_info.setText(text)
        self.templates_info.setToolTip(f"{text}\nChange them under Names → Templates")

    def set_running(self, running: bool, n_backbones: int = 0) -> None:
        self._running = running
        self.start_btn.setEnabled(not running)
        self.cancel_btn.setEnabled(running)
        for w in (self.backbones, self.device, self.precision, self.decode, self.batch_size, self.workers, self.levels,
                  self.mode, self.orderings, self.seed, self.use_cache, self.out_dir, self.analysis_box):
            w.setEnabled(not running)
        if running:
            self._backbones_total = n_backbones
            self._backbones_seen = []
            self.bar.setRange(0, 0)  # busy until the first progress event
            self.stage.setText("Starting …")
            self.rate.setText(" ")

    def on_progress(self, ev: Any) -> None:
        if ev.stage == "ensembles":  # across all backbones: not one more backbone to count
            where = f" ({html.escape(ev.message)})" if ev.message else ""
            self.stage.setText(f"<b>ensembles</b>: {stage_title('ensembles')}{where}")
        else:
            if ev.backbone and ev.backbone not in self._backbones_seen:
                self._backbones_seen.append(ev.backbone)
            which = ""
            if self._backbones_total > 1 and ev.backbone in self._backbones_seen:
                which = f" (backbone {self._backbones_seen.index(ev.backbone) + 1} of {self._backbones_total})"
            self.stage.setText(f"<b>{ev.backbone}</b>{which}: {stage_title(ev.stage)}")
        total = max(ev.total, 1)
        self.bar.setRange(0, total)
        self.bar.setValue(min(ev.done, total))
        self.bar.setFormat("%v / %m" if ev.stage != "load-model" else "%p%")
        if ev.rate and ev.done < ev.total:
            eta = (ev.total - ev.done) / ev.rate
            self.rate.setText(f"{ev.rate:,.1f} {UNITS.get(ev.stage, '/s')} · ETA {format_eta(eta)}")
        elif ev.rate:
            self.rate.setText(f"{ev.rate:,.1f} {UNITS.get(ev.stage, '/s')}")
        else:
            self.rate.setText(ev.message or " ")

    def on_finished(self, status: str, run_dir: str) -> None:
        self.set_running(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if status == "completed" else 0)
        self.bar.setFormat("%p%")
        text = {"completed": "Finished", "cancelled": "Cancelled — finished levels are kept",
                "failed": "Failed — see the message"}.get(status, status)
        self.stage.setText(f"<b>{text}</b>")
        self.rate.setText(run_dir or " ")


def preview() -> QWidget:
    w = RunPanel()
    w.backbones.set_engine_info({"demo-vit": {}, "demo-resnet": {}}, [])
    w.resize(380, 720)
    w.setWindowTitle("semscale — run panel preview")
    return w


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
