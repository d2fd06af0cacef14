"""Backbones of the other model kinds: a CLIP server, and a vision-language model (local or an endpoint).

Each dialog builds the picker's spec (``model`` string + the kind's ``options``) and tests it
before it is added: the kind is resolved through :mod:`core.models.registry` and asked what a
sweep would ask (``check()``, then one text embedding or one answer), on a pool thread, so a
slow or unreachable server never freezes the window. Nothing here knows a kind's internals:
what is shown comes from ``describe()`` / ``identity_info``, whichever keys a kind fills in.
Keys are never typed here: only the name of the environment variable that holds one.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from PySide6.QtCore import QMargins, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QButtonGroup, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QGridLayout, QHBoxLayout, QLabel,
    QLineEdit, QPushButton, QRadioButton, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget,
)

from semscale_gui import settings
from semscale_gui.tasks import run_task

RECENT_SERVERS = "backbones/recent_clip_servers"
RECENT_VLMS = "backbones/recent_vlm_endpoints"
PROBE_TEXT = "a photo of a dog."
DEFAULT_PROMPT = "What type of object is in this photo?"
VLM_MODES = (("open", "open — one free answer per image"),
             ("closed", "closed — choose one of the level's names"),
             ("likelihood", "likelihood — score every name (local models)"))
SERVER_SCHEMES = ("http", "https", "grpc")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MUTED = "color: #555;"


def kind_prefix(kind: str, default: str) -> str:
    """The prefix the registry gives a kind (``clip-server:``), or the documented one when it is not installed."""
    from core.models import registry

    entry = next((e for e in registry.kinds() if e.kind == kind), None)
    return entry.prefix if entry is not None and entry.prefix else default


def env_name_problem(text: str) -> str:
    """Why an "environment variable" field is not a variable name ('' when it is): a pasted key is refused."""
    if not text or ENV_NAME.match(text):
        return ""
    return ("give the name of an environment variable that holds the key (e.g. OPENAI_API_KEY), "
            "never the key itself")


# a test answers within seconds: fewer retries than a sweep's, for kinds that have that option (never saved)
QUICK_TEST = {"retries": 1, "connect_timeout": 5.0}


def _load(spec: dict) -> Any:
    """The kind a picker spec names, its heavy part not built yet; refuses a string no kind claims."""
    from core.models import registry
    from core.util.config import BackboneSpec
    from core.util.errors import InputError

    model = spec["model"]
    prefix = model.split(":", 1)[0] + ":" if ":" in model else ""
    entry = registry.kind_of(model)
    if prefix and entry.kind == registry.DEFAULT_KIND:
        raise InputError(f"no model kind handles '{prefix}' in this installation (install the extra that provides it)",
                         field="model")
    options = dict(spec.get("options") or {})
    options.update({k: v for k, v in QUICK_TEST.items() if k in entry.options and k not in options})
    return registry.load_model(BackboneSpec(model=model, label=spec.get("label"), options=options))


def _public(info: dict) -> dict:
    """describe() and identity_info merged, nested identity_info flattened (never credentials: kinds omit them)."""
    out = dict(info)
    nested = out.pop("identity_info", None)
    if isinstance(nested, dict):
        for k, v in nested.items():
            out.setdefault(k, v)
    return out


def probe_server(spec: dict) -> dict:
    """Connect as a sweep would (``check()``) and time one text embedding; runs on a pool thread.

    Returns protocol, embedding width, fingerprint, latency (s) and the kind's description.
    """
    model = _load(spec)
    try:
        model.check()
        info = _public({**(getattr(model, "identity_info", None) or {}), **model.describe()})
        t0 = time.perf_counter()
        vec = model.embed_texts([PROBE_TEXT])
        latency = time.perf_counter() - t0
        url = spec["model"].split(":", 1)[1] if ":" in spec["model"] else spec["model"]
        width = info.get("embed_dim") or info.get("width") or getattr(vec, "shape", (0, 0))[-1]
        return {"protocol": str(info.get("protocol") or urlsplit(url).scheme or "?"),
                "width": int(width),
                "fingerprint": str(info.get("fingerprint") or info.get("identity") or getattr(model, "identity", ""))[:16],
                "latency_s": latency, "name": getattr(model, "name", ""), "info": info}
    finally:
        model.close()


def probe_vlm(spec: dict, dataset: Any, names: Optional[list[str]] = None, top: int = 5) -> dict:
    """One answer (an answering kind) or the top names (a scoring kind) for the dataset's first image."""
    from core.models.base import ANSWERS, SCORES
    from semscale_gui.thumbnails import pil_to_qimage

    if dataset is None or len(dataset) == 0:
        raise ValueError("open a dataset first: the test answers for its first image")
    model = _load(spec)
    try:
        model.check()
        rec = dataset.records[0] if hasattr(dataset, "records") else None
        out: dict = {"image": str(getattr(rec, "id", "image 0")), "true": str(getattr(rec, "label", "") or ""),
                     "output": model.output, "name": getattr(model, "name", "")}
        try:
            im = dataset.open(0)
            im.thumbnail((160, 160))
            out["thumbnail"] = pil_to_qimage(im)
        except Exception:  # a thumbnail is a nicety; the kind reports an unreadable image itself
            out["thumbnail"] = None
        opts = spec.get("options") or {}
        prompt = opts.get("prompt") or DEFAULT_PROMPT
        names = list(dict.fromkeys(names or list(getattr(dataset, "classes", []) or [])))
        if opts.get("mode") == "closed" and names:  # as a sweep asks at its last level: every name listed
            try:
                from core.models.prompts import closed_prompt
            except ImportError:  # an engine without closed-world prompts: the plain question
                pass
            else:
                prompt = closed_prompt(prompt, names, image_key=out["image"])
        out["prompt"] = prompt
        t0 = time.perf_counter()
        if model.output == ANSWERS:
            got = model.answer(dataset, [0], [prompt])
            if not len(got.answers):
                raise ValueError(f"no answer for the first image: {got.skipped[0][1] if got.skipped else 'skipped'}")
            out["answer"] = got.answers[0]
        elif model.output == SCORES:
            if not names:
                raise ValueError("the dataset has no class names to score")
            got = model.score_names(dataset, [0], names)
            if not len(got.indices):
                raise ValueError(f"the first image was not scored: {got.skipped[0][1] if got.skipped else 'skipped'}")
            row = list(got.matrix[0])
            order = sorted(range(len(names)), key=lambda j: -row[j])[:top]
            out["top"] = [(names[j], float(row[j])) for j in order]
        else:
            raise ValueError(f"a '{model.output}' kind is not a vision-language model")
        out["latency_s"] = time.perf_counter() - t0
        return out
    finally:
        model.close()


def error_text(e: Exception) -> str:
    from core.util.errors import InputError

    if isinstance(e, InputError):
        return str(e) if e.file else e.message  # the field is the one being tested: no need to name it
    return str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"


class _KindDialog(QDialog):
    """A form, a result area, a test button and OK/Cancel; the test runs on a pool thread."""

    test_text = "Test"

    def __init__(self, title: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.test_button = QPushButton(self.test_text)
        self.test_button.clicked.connect(self.run_test)
        self.status = QLabel(" ")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.results = QWidget()
        self.grid = QGridLayout(self.results)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setColumnStretch(1, 1)
        self.fields: dict[str, QLabel] = {}  # what the last test showed, by name
        self.last_result: Optional[dict] = None
        self.last_error = ""
        self.testing = False
        self._generation = 0
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.status, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(self.form)
        lay.addLayout(test_row)
        lay.addWidget(self.results)
        lay.addStretch(1)
        lay.addWidget(self.buttons)

    # subclasses: spec(), problem(), _probe() -> callable, _show(result)
    def spec(self) -> dict:
        raise NotImplementedError

    def problem(self) -> str:
        return ""

    def _probe(self) -> Callable[[], dict]:
        raise NotImplementedError

    def _show(self, result: dict) -> None:
        raise NotImplementedError

    def set_field(self, row: int, key: str, title: str, value: str) -> None:
        label = self.fields.get(key)
        if label is None:
            label = QLabel()
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            head = QLabel(title)
            head.setStyleSheet(MUTED)
            self.grid.addWidget(head, row, 0, Qt.AlignmentFlag.AlignTop)
            self.grid.addWidget(label, row, 1)
            self.fields[key] = label
        label.setText(value)

    def clear_fields(self) -> None:
        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.fields = {}

    def _say(self, text: str, colour: str = "#444") -> None:
        self.status.setText(f"<span style='color:{colour}'>{text}</span>")

    def run_test(self) -> None:
        why = self.problem()
        if why:
            self.last_error = why
            self._say(why, "#b00020")
            return
        self._generation += 1
        gen = self._generation
        self.testing = True
        self.last_result, self.last_error = None, ""
        self.test_button.setEnabled(False)
        self.clear_fields()
        self._say("testing…")

        def done(result: dict) -> None:
            if gen != self._generation:
                return
            self.testing = False
            self.test_button.setEnabled(True)
            self.last_result = result
            self._show(result)

        def failed(e: Exception, _tb: str) -> None:
            if gen != self._generation:
                return
            self.testing = False
            self.test_button.setEnabled(True)
            self.last_error = error_text(e)
            self._say(self.last_error, "#b00020")

        run_task(self._probe(), done, failed, context=self)

    def _forget_test(self, *_args: Any) -> None:
        """An edited field makes the last test's answer stale: it is cleared, a running one ignored."""
        if self.last_result is not None or self.testing or self.last_error:
            self._generation += 1
            self.testing = False
            self.test_button.setEnabled(True)
            self.last_result, self.last_error = None, ""
            self.clear_fields()
            self._say(" ")

    def accept(self) -> None:
        why = self.problem()
        if why:
            self._say(why, "#b00020")
            return
        self._generation += 1  # a test still running reports to nobody
        super().accept()


class ClipServerDialog(_KindDialog):
    """A running clip-as-service server: URL, optional auth variable and CA bundle, a connection test."""

    test_text = "Test connection"

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__("Add a CLIP server", parent)
        self.url = QComboBox()
        self.url.setEditable(True)
        self.url.addItems(settings.recent(RECENT_SERVERS))
        self.url.setCurrentText(self.url.itemText(0) if self.url.count() else "")
        self.url.lineEdit().setPlaceholderText("http://HOST:PORT, https://… or grpc://HOST:PORT")
        self.url.setMinimumWidth(360)
        self.auth_env = QLineEdit()
        self.auth_env.setPlaceholderText("optional: a variable holding the Authorization header")
        self.ca_bundle = QLineEdit()
        self.ca_bundle.setPlaceholderText("optional: CA file for a private certificate authority")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_ca)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_bundle, 1)
        ca_row.addWidget(browse)
        self.label = QLineEdit()
        self.label.setPlaceholderText("optional display name")
        self.form.addRow("Server URL:", self.url)
        self.form.addRow("Auth variable:", self.auth_env)
        self.form.addRow("CA bundle:", ca_row)
        self.form.addRow("Name:", self.label)
        note = QLabel("The server decodes and embeds the images; prompts are built here as for a local model. "
                      "The test connects, fingerprints the model behind the URL and times one text embedding.")
        note.setWordWrap(True)
        note.setStyleSheet(MUTED)
        self.form.addRow(note)
        self.url.currentTextChanged.connect(self._forget_test)
        for w in (self.auth_env, self.ca_bundle):
            w.textChanged.connect(self._forget_test)
        self.resize(600, 330)

    def _browse_ca(self) -> None:
        p, _ = QFileDialog.getOpenFileName(self, "CA bundle", str(Path.home()), "Certificates (*.pem *.crt *.cer);;All files (*)")
        if p:
            self.ca_bundle.setText(p)

    def server_url(self) -> str:
        return self.url.currentText().strip()

    def problem(self) -> str:
        url = self.server_url()
        if not url:
            return "enter the server's URL, e.g. http://127.0.0.1:51000"
        parts = urlsplit(url)
        if parts.scheme not in SERVER_SCHEMES or not parts.netloc:
            return f"'{url}' is not a server URL: it starts with http://, https:// or grpc:// and names HOST:PORT"
        return env_name_problem(self.auth_env.text().strip())

    def spec(self) -> dict:
        opts = {"auth_env": self.auth_env.text().strip(), "ca_bundle": self.ca_bundle.text().strip()}
        return {"model": kind_prefix("clip-server", "clip-server:") + self.server_url(), "pretrained": None,
                "checkpoint": None, "label": self.label.text().strip() or None,
                "options": {k: v for k, v in opts.items() if v}}

    def _probe(self) -> Callable[[], dict]:
        spec = self.spec()
        return lambda: probe_server(spec)

    def _show(self, r: dict) -> None:
        self._say("connected", "#1b7f3b")
        self.set_field(0, "protocol", "Protocol:", r["protocol"])
        self.set_field(1, "width", "Embedding width:", str(r["width"]))
        self.set_field(2, "fingerprint", "Fingerprint:", f"<code>{r['fingerprint']}</code>")
        self.set_field(3, "latency", "Round trip:", f"{r['latency_s'] * 1000:.0f} ms for one text")

    def accept(self) -> None:
        if not self.problem():
            settings.push_recent(RECENT_SERVERS, self.server_url())
        super().accept()


class VlmDialog(_KindDialog):
    """A vision-language model: a local folder, or an OpenAI-compatible endpoint and model name."""

    test_text = "Test on the first image"

    def __init__(self, dataset: Any = None, names: Optional[list[str]] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__("Add a vision-language model", parent)
        self.dataset = dataset
        self.names = names
        self.local = QRadioButton("Local folder")
        self.endpoint = QRadioButton("Endpoint")
        self.local.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.local)
        group.addButton(self.endpoint)
        where = QHBoxLayout()
        where.addWidget(self.local)
        where.addWidget(self.endpoint)
        where.addStretch(1)

        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a Hugging Face model folder (LLaVA family) or a Hub id")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_folder)
        local_page = QWidget()
        lf = QHBoxLayout(local_page)
        lf.setContentsMargins(0, 0, 0, 0)
        lf.addWidget(self.folder, 1)
        lf.addWidget(browse)

        self.endpoint_url = QComboBox()
        self.endpoint_url.setEditable(True)
        self.endpoint_url.addItems(settings.recent(RECENT_VLMS))
        self.endpoint_url.setCurrentText("")
        self.endpoint_url.lineEdit().setPlaceholderText("http://127.0.0.1:8000/v1")
        self.model_name = QLineEdit()
        self.model_name.setPlaceholderText("the endpoint's model name, e.g. llava-1.5-7b")
        self.api_key_env = QLineEdit()
        self.api_key_env.setPlaceholderText("OPENAI_API_KEY")
        self.api_key_env.setToolTip("The name of the environment variable that holds the key; the key itself is "
                                    "never typed here nor written to any file")
        endpoint_page = QWidget()
        ef = QFormLayout(endpoint_page)
        ef.setContentsMargins(0, 0, 0, 0)
        ef.addRow("URL:", self.endpoint_url)
        ef.addRow("Model:", self.model_name)
        ef.addRow("API-key variable:", self.api_key_env)
        self.source = QStackedWidget()
        self.source.addWidget(local_page)
        self.source.addWidget(endpoint_page)

        self.mode = QComboBox()
        for key, text in VLM_MODES:
            self.mode.addItem(text, key)
        self.prompt = QLineEdit(DEFAULT_PROMPT)
        self.label = QLineEdit()
        self.label.setPlaceholderText("optional display name")
        self.form.addRow("Source:", where)
        self.form.addRow("", self.source)
        self.form.addRow("Mode:", self.mode)
        self.form.addRow("Prompt:", self.prompt)
        self.form.addRow("Name:", self.label)
        self.thumb = QLabel()
        self.thumb.setFixedSize(164, 164)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setStyleSheet("background: #f4f4f4; border: 1px solid #ddd;")
        self.thumb.hide()
        self.grid.addWidget(self.thumb, 0, 2, 6, 1, Qt.AlignmentFlag.AlignTop)
        self.local.toggled.connect(self._where_changed)
        for w in (self.folder, self.model_name, self.prompt, self.api_key_env):
            w.textChanged.connect(self._forget_test)
        self.endpoint_url.currentTextChanged.connect(self._forget_test)
        self.mode.currentIndexChanged.connect(self._forget_test)
        self._where_changed()
        self.resize(640, 420)

    # a thumbnail column that survives clear_fields()
    def clear_fields(self) -> None:
        thumb = getattr(self, "thumb", None)
        if thumb is not None:
            self.grid.removeWidget(thumb)
        super().clear_fields()
        if thumb is not None:
            thumb.hide()
            self.grid.addWidget(thumb, 0, 2, 6, 1, Qt.AlignmentFlag.AlignTop)

    def _where_changed(self, *_args: Any) -> None:
        local = self.local.isChecked()
        self.source.setCurrentIndex(0 if local else 1)
        for i in range(self.source.count()):  # the stack takes the height of the page shown, not the tallest
            policy = QSizePolicy.Policy.Preferred if i == self.source.currentIndex() else QSizePolicy.Policy.Ignored
            self.source.widget(i).setSizePolicy(QSizePolicy.Policy.Preferred, policy)
        self.source.adjustSize()
        i = self.mode.findData("likelihood")
        item = self.mode.model().item(i)
        item.setEnabled(local)  # an endpoint returns text, not the probability of each name
        if not local and self.mode.currentData() == "likelihood":
            self.mode.setCurrentIndex(self.mode.findData("open"))
        self.test_button.setEnabled(self.dataset is not None and not self.testing)
        self.test_button.setToolTip("" if self.dataset is not None else "Open a dataset first: the test answers "
                                    "for its first image")
        self._forget_test()

    def _browse_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Model folder", settings.get_str("last/vlm_dir", str(Path.home())))
        if d:
            settings.set_value("last/vlm_dir", str(Path(d).parent))
            self.folder.setText(d)

    def problem(self) -> str:
        if self.local.isChecked():
            return "" if self.folder.text().strip() else "choose the model's folder (or type a Hub id)"
        url = self.endpoint_url.currentText().strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return f"'{url}' is not an endpoint URL: it starts with http:// or https://" if url else \
                "enter the endpoint's URL, e.g. http://127.0.0.1:8000/v1"
        if not self.model_name.text().strip():
            return "enter the model name the endpoint serves"
        return env_name_problem(self.api_key_env.text().strip())

    def spec(self) -> dict:
        opts: dict = {"mode": self.mode.currentData(), "prompt": self.prompt.text().strip() or DEFAULT_PROMPT}
        if self.local.isChecked():
            model = kind_prefix("vlm", "vlm:") + self.folder.text().strip()
        else:
            model = (kind_prefix("openai", "openai:") + self.model_name.text().strip() + "@"
                     + self.endpoint_url.currentText().strip())
            if self.api_key_env.text().strip():
                opts["api_key_env"] = self.api_key_env.text().strip()
        return {"model": model, "pretrained": None, "checkpoint": None, "label": self.label.text().strip() or None,
                "options": opts}

    def run_test(self) -> None:
        if self.dataset is None:
            self._say("open a dataset first: the test answers for its first image", "#b00020")
            return
        super().run_test()

    def _probe(self) -> Callable[[], dict]:
        spec, ds, names = self.spec(), self.dataset, self.names
        return lambda: probe_vlm(spec, ds, names)

    def _show(self, r: dict) -> None:
        self._say(f"{'answered' if 'answer' in r else 'scored'} in {r['latency_s']:.2f} s", "#1b7f3b")
        self.set_field(0, "image", "Image:", r["image"] + (f" (class {r['true']})" if r["true"] else ""))
        if "answer" in r:
            if r.get("prompt") and r["prompt"] != self.prompt.text().strip():  # the closed-world question
                self.set_field(2, "prompt", "Asked:", f"<span style='color:#555'>{_escape(r['prompt'])}</span>")
            self.set_field(1, "answer", "Answer:", f"<b>{_escape(r['answer'])}</b>")
        else:
            self.set_field(1, "top", "Top names:", "<br>".join(f"{i}. {_escape(n)} &nbsp; {s:.3f}"
                                                               for i, (n, s) in enumerate(r["top"], 1)))
        if r.get("thumbnail") is not None:
            pix = QPixmap.fromImage(r["thumbnail"])  # a small image is shown enlarged, pixels kept sharp
            self.thumb.setPixmap(pix.scaled(self.thumb.size().shrunkBy(QMargins(2, 2, 2, 2)),
                                            Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
            self.thumb.show()

    def accept(self) -> None:
        if not self.problem() and self.endpoint.isChecked():
            settings.push_recent(RECENT_VLMS, self.endpoint_url.currentText().strip())
        super().accept()


def _escape(text: str) -> str:
    import html

    return html.escape(str(text))


def preview() -> QWidget:
    return VlmDialog()


if __name__ == "__main__":
    from semscale_gui.preview import run_preview

    run_preview(preview)
