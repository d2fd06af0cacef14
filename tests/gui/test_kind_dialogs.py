"""The CLIP-server and VLM dialogs of the backbone picker, driven through the model-kind registry.

Kinds are defined here (as in tests/core/test_architecture.py) and registered under the kind
names the real ones use, so the dialogs are exercised exactly as with a real server or VLM:
Test runs ``registry.load_model(spec).check()`` and the kind's own call on a pool thread, and
what the dialog shows is checked against independent computations.
"""

from __future__ import annotations

import hashlib
import html
import socket
import threading
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.models import registry
from core.models.base import AnsweringModel, EmbeddingModel, EncodedBatch, ImageAnswers, ImageScores, ScoringModel, \
    identity_hash
from core.util.config import BackboneSpec
from core.util.errors import InputError
from tests.conftest import COLOURS

WIDTH = 8


def text_vectors(prompts) -> np.ndarray:
    """A prompt's embedding: 8 bytes of its sha256, centred and normalised."""
    v = np.array([list(hashlib.sha256(p.encode()).digest()[:WIDTH]) for p in prompts], np.float32) - 127.5
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fingerprint_of() -> str:
    return hashlib.sha256(np.round(text_vectors(["probe one", "probe two"]), 3).tobytes()).hexdigest()[:16]


class ToyServer(EmbeddingModel):
    """A CLIP-server-like kind: check() opens a real TCP connection to the URL's host and port."""

    kind = "clip-server"
    embed_dim = WIDTH
    logit_scale = 100.0
    seen_options: list = []

    def __init__(self, spec: BackboneSpec) -> None:
        self.spec, self.name = spec, spec.display
        self.url = spec.model.split(":", 1)[1]
        ToyServer.seen_options.append(dict(spec.options))
        self.identity_info = {"kind": self.kind}
        self.identity = identity_hash(self.identity_info)

    def check(self) -> None:
        parts = urlsplit(self.url)
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=2).close()
        except OSError as e:
            raise InputError(f"cannot use the CLIP server at {self.url}: {e.strerror or e}", field="model") from None
        self.identity_info = {"kind": self.kind, "fingerprint": fingerprint_of(), "embed_dim": WIDTH}

    def describe(self) -> dict:
        return {**super().describe(), "url": self.url, "protocol": urlsplit(self.url).scheme}

    def embed_texts(self, prompts):
        return text_vectors(prompts)

    def embed_records(self, dataset, indices, *, batch_size=64, **_kw):
        """An image is its mean colour (zero-padded to the width), normalised."""
        for s in range(0, len(indices), batch_size):
            chunk = list(indices[s : s + batch_size])
            v = np.zeros((len(chunk), WIDTH), np.float32)
            v[:, :3] = [mean_rgb(dataset, i) + 1 for i in chunk]
            yield EncodedBatch(chunk, v / np.linalg.norm(v, axis=1, keepdims=True))


def mean_rgb(dataset, i) -> np.ndarray:
    return np.asarray(dataset.open(i).convert("RGB"), np.float32).mean(axis=(0, 1))


def nearest_colour(rgb) -> str:
    return min(COLOURS, key=lambda c: float(((rgb - np.array(COLOURS[c])) ** 2).sum()))


class ToyVlm(AnsweringModel):
    """An answering kind: names the class whose colour is nearest the image's mean colour."""

    kind = "vlm"

    def __init__(self, spec: BackboneSpec) -> None:
        self.spec, self.name = spec, spec.display
        self.identity_info = {"kind": self.kind, "prompt": spec.options.get("prompt")}
        self.identity = identity_hash(self.identity_info)
        self.prompts: list[str] = []

    def answer(self, dataset, indices, prompts, **_kw):
        self.prompts.extend(prompts)
        return ImageAnswers(np.asarray(indices), [f"It is a {nearest_colour(mean_rgb(dataset, i))}." for i in indices],
                            n_computed=len(indices))


class ToyLikelihood(ScoringModel):
    """A scoring kind: minus the squared distance of the image's mean colour to each name's colour."""

    kind = "vlm"

    def __init__(self, spec: BackboneSpec) -> None:
        self.spec, self.name = spec, spec.display
        self.identity_info = {"kind": self.kind}
        self.identity = identity_hash(self.identity_info)

    def score_names(self, dataset, indices, names, **_kw):
        rgb = np.stack([mean_rgb(dataset, i) for i in indices])
        c = np.array([COLOURS[n] for n in names], np.float32)
        return ImageScores(np.asarray(indices), -((rgb[:, None] - c[None]) ** 2).sum(-1), n_computed=len(indices))


@pytest.fixture
def toy_kinds():
    """The toy kinds under the real kinds' names; whatever was registered before comes back afterwards."""
    before = {e.kind: e for e in registry.kinds()}
    built: dict[str, list] = {"clip-server": [], "vlm": [], "openai": []}

    def vlm_factory(spec, *, lazy=True):
        m = (ToyLikelihood if spec.options.get("mode") == "likelihood" else ToyVlm)(spec)
        built["vlm"].append(m)
        return m

    def openai_factory(spec, *, lazy=True):
        m = ToyVlm(spec)
        built["openai"].append(m)
        return m

    ToyServer.seen_options = []
    for k in built:
        registry.unregister(k)
    registry.register(registry.KindEntry("clip-server", lambda spec, lazy=True: ToyServer(spec), prefix="clip-server:"))
    registry.register(registry.KindEntry("vlm", vlm_factory, prefix="vlm:"))
    registry.register(registry.KindEntry("openai", openai_factory, prefix="openai:"))
    yield built
    for k in built:
        registry.unregister(k)
        if k in before:
            registry.register(before[k])


@pytest.fixture
def listening_port():
    """A real TCP listener on 127.0.0.1 (accepting and closing connections), closed at teardown."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                conn.close()
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(5)
    srv.close()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- CLIP server

def test_clip_server_test_connection_shows_the_servers_identity(qtbot, gui_env, toy_kinds, listening_port):
    from semscale_gui.kind_dialogs import ClipServerDialog

    dlg = ClipServerDialog()
    qtbot.addWidget(dlg)
    url = f"http://127.0.0.1:{listening_port}"
    dlg.url.setCurrentText(url)
    dlg.auth_env.setText("LAB_CLIP_TOKEN")
    qtbot.mouseClick(dlg.test_button, pytest.importorskip("PySide6.QtCore").Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.last_result is not None or bool(dlg.last_error), timeout=10000)
    assert dlg.last_error == ""
    shown = {k: lab.text() for k, lab in dlg.fields.items()}
    assert shown["protocol"] == "http"
    assert shown["width"] == str(WIDTH)
    assert fingerprint_of() in shown["fingerprint"]
    assert shown["latency"].endswith("ms for one text") and float(shown["latency"].split()[0]) >= 0
    assert dlg.last_result["latency_s"] >= 0
    assert ToyServer.seen_options[-1] == {"auth_env": "LAB_CLIP_TOKEN"}  # the options reached the kind
    spec = dlg.spec()
    assert spec["model"] == f"clip-server:{url}" and spec["options"] == {"auth_env": "LAB_CLIP_TOKEN"}
    dlg.accept()
    from semscale_gui import settings
    from semscale_gui.kind_dialogs import RECENT_SERVERS

    assert settings.recent(RECENT_SERVERS)[0] == url
    again = ClipServerDialog()  # remembered for next time
    qtbot.addWidget(again)
    assert again.server_url() == url


def test_clip_server_errors_are_clear(qtbot, gui_env, toy_kinds):
    from semscale_gui.kind_dialogs import ClipServerDialog

    dlg = ClipServerDialog()
    qtbot.addWidget(dlg)
    dlg.url.setCurrentText("ftp://example.org")
    dlg.run_test()
    assert "http://, https:// or grpc://" in dlg.last_error and not dlg.testing
    dlg.url.setCurrentText("grpc://127.0.0.1:51000")
    dlg.auth_env.setText("sk-secret-value")  # a pasted key, not a variable name
    dlg.run_test()
    assert "never the key itself" in dlg.last_error
    dlg.auth_env.setText("")
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    dlg.url.setCurrentText(url)
    dlg.run_test()
    qtbot.waitUntil(lambda: bool(dlg.last_error), timeout=10000)
    assert f"cannot use the CLIP server at {url}" in dlg.last_error and dlg.fields == {}
    assert dlg.test_button.isEnabled()


def test_clip_server_test_runs_off_the_gui_thread(qtbot, gui_env, toy_kinds, listening_port):
    """A server that takes its time never freezes the dialog: the GUI thread keeps handling events."""
    import time

    from PySide6.QtCore import QThread, QTimer

    from semscale_gui.kind_dialogs import ClipServerDialog

    threads = []
    slow = ToyServer.check

    def slow_check(self):
        threads.append(QThread.currentThread())
        time.sleep(0.6)
        slow(self)

    ToyServer.check = slow_check
    try:
        dlg = ClipServerDialog()
        qtbot.addWidget(dlg)
        dlg.url.setCurrentText(f"http://127.0.0.1:{listening_port}")
        ticks = []
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(1))
        timer.start(20)
        dlg.run_test()
        assert dlg.testing and not dlg.test_button.isEnabled()
        qtbot.waitUntil(lambda: dlg.last_result is not None, timeout=10000)
        timer.stop()
        assert len(ticks) >= 10  # the event loop ran while the server was being asked
        assert threads and threads[0] is not dlg.thread()
    finally:
        ToyServer.check = slow


# ---------------------------------------------------------------- VLM

@pytest.fixture
def dataset(image_folder):
    from core.data import load_dataset

    return load_dataset(image_folder)


def test_vlm_dialog_answers_for_the_first_image(qtbot, gui_env, toy_kinds, dataset, tmp_path):
    from PySide6.QtCore import Qt

    from semscale_gui.kind_dialogs import DEFAULT_PROMPT, VlmDialog

    folder = tmp_path / "tiny-llava"
    folder.mkdir()
    dlg = VlmDialog(dataset)
    qtbot.addWidget(dlg)
    assert dlg.prompt.text() == DEFAULT_PROMPT == "What type of object is in this photo?"
    dlg.folder.setText(str(folder))
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.last_result is not None or bool(dlg.last_error), timeout=10000)
    assert dlg.last_error == ""
    rgb = np.asarray(Image.open(dataset.records[0].path).convert("RGB"), np.float32).mean(axis=(0, 1))
    expected = f"It is a {nearest_colour(rgb)}."
    assert dlg.last_result["answer"] == expected
    assert expected in dlg.fields["answer"].text()
    assert dataset.records[0].id in dlg.fields["image"].text()
    assert toy_kinds["vlm"][-1].prompts == [DEFAULT_PROMPT]  # answer(dataset, [0], [prompt])
    assert not dlg.thumb.pixmap().isNull()
    assert dlg.spec() == {"model": f"vlm:{folder}", "pretrained": None, "checkpoint": None, "label": None,
                          "options": {"mode": "open", "prompt": DEFAULT_PROMPT}}


def test_vlm_dialog_likelihood_shows_the_top_names(qtbot, gui_env, toy_kinds, dataset):
    from semscale_gui.kind_dialogs import VlmDialog

    dlg = VlmDialog(dataset, names=list(COLOURS))
    qtbot.addWidget(dlg)
    dlg.folder.setText("some/llava")
    dlg.mode.setCurrentIndex(dlg.mode.findData("likelihood"))
    dlg.run_test()
    qtbot.waitUntil(lambda: dlg.last_result is not None or bool(dlg.last_error), timeout=10000)
    assert dlg.last_error == ""
    rgb = mean_rgb(dataset, 0)
    order = sorted(COLOURS, key=lambda c: float(((rgb - np.array(COLOURS[c])) ** 2).sum()))
    assert [n for n, _ in dlg.last_result["top"]] == order
    text = dlg.fields["top"].text()
    assert text.index(order[0]) < text.index(order[1]) < text.index(order[-1])
    assert dlg.spec()["options"]["mode"] == "likelihood"


def test_vlm_dialog_endpoint_spec_and_key_variable(qtbot, gui_env, toy_kinds, dataset):
    from semscale_gui.kind_dialogs import VlmDialog

    dlg = VlmDialog(dataset)
    qtbot.addWidget(dlg)
    dlg.endpoint.setChecked(True)
    assert not dlg.mode.model().item(dlg.mode.findData("likelihood")).isEnabled()  # endpoints answer in text
    dlg.endpoint_url.setCurrentText("http://127.0.0.1:8000/v1")
    dlg.model_name.setText("llava-1.5")
    dlg.mode.setCurrentIndex(dlg.mode.findData("closed"))
    dlg.prompt.setText("What is this?")
    dlg.api_key_env.setText("sk-abc123")
    dlg.run_test()
    assert "never the key itself" in dlg.last_error
    dlg.api_key_env.setText("LAB_OPENAI_KEY")
    dlg.run_test()
    qtbot.waitUntil(lambda: dlg.last_result is not None or bool(dlg.last_error), timeout=10000)
    assert dlg.last_error == "" and dlg.last_result["answer"].startswith("It is a ")
    (asked,) = toy_kinds["openai"][-1].prompts
    try:  # closed mode asks the closed-world question a sweep asks, where the engine has one
        from core.models.prompts import closed_prompt
    except ImportError:
        assert asked == "What is this?"
    else:
        assert asked == closed_prompt("What is this?", list(dataset.classes), image_key=dataset.records[0].id)
        assert asked.startswith("What is this?") and all(c in asked for c in dataset.classes)
        assert html.escape(asked) in dlg.fields["prompt"].text()
    assert dlg.spec() == {"model": "openai:llava-1.5@http://127.0.0.1:8000/v1", "pretrained": None,
                          "checkpoint": None, "label": None,
                          "options": {"mode": "closed", "prompt": "What is this?", "api_key_env": "LAB_OPENAI_KEY"}}


def test_vlm_dialog_without_a_dataset_says_so(qtbot, gui_env, toy_kinds):
    from semscale_gui.kind_dialogs import VlmDialog

    dlg = VlmDialog(None)
    qtbot.addWidget(dlg)
    dlg.folder.setText("x")
    assert not dlg.test_button.isEnabled()
    dlg.run_test()
    assert "open a dataset first" in dlg.status.text()


def test_unregistered_kind_is_refused_with_a_reason(qtbot, gui_env, dataset):
    """Without a kind for 'vlm:' the string must not fall through to open_clip."""
    from semscale_gui.kind_dialogs import probe_vlm

    before = next((e for e in registry.kinds() if e.kind == "vlm"), None)
    registry.unregister("vlm")
    try:
        with pytest.raises(InputError, match="no model kind handles 'vlm:'"):
            probe_vlm({"model": "vlm:x", "options": {}}, dataset)
    finally:
        if before is not None:
            registry.register(before)


# ---------------------------------------------------------------- picker and run panel

def test_picker_specs_reach_the_sweep_config(qtbot, gui_env, toy_kinds):
    """Entries from the dialogs become BackboneSpecs with their model string and options, and run.json's
    config keeps them; the same VLM in two modes is two entries."""
    from semscale_gui.backbone_picker import spec_title
    from semscale_gui.run_panel import RunPanel

    panel = RunPanel()
    qtbot.addWidget(panel)
    picker = panel.backbones
    server = {"model": "clip-server:grpc://10.0.0.5:51000", "pretrained": None, "checkpoint": None, "label": None,
              "options": {"ca_bundle": "/etc/lab-ca.pem"}}
    vlm_open = {"model": "vlm:/models/llava", "pretrained": None, "checkpoint": None, "label": None,
                "options": {"mode": "open", "prompt": "What type of object is in this photo?"}}
    vlm_closed = {**vlm_open, "options": {**vlm_open["options"], "mode": "closed"}}
    for s in (server, vlm_open, vlm_closed):
        picker.add_spec(s)
    titles = [picker.list.item(i).text() for i in range(picker.list.count())]
    assert titles[-3:] == ["clip-server:grpc://10.0.0.5:51000", "vlm:/models/llava", "vlm:/models/llava [closed]"]
    assert spec_title(vlm_closed) == titles[-1]
    cfg = panel.build_config("data", "labels.csv", "plain", gui_env / "out")
    got = {(b.model, b.options.get("mode")): b for b in cfg.backbones}
    assert got[("clip-server:grpc://10.0.0.5:51000", None)].options == {"ca_bundle": "/etc/lab-ca.pem"}
    assert got[("vlm:/models/llava", "closed")].options == vlm_closed["options"]
    assert registry.load_model(got[("vlm:/models/llava", "open")]).identity_info["prompt"] == vlm_open["options"]["prompt"]
    as_json = cfg.to_dict()["backbones"]
    assert {"model": "vlm:/models/llava", "options": vlm_closed["options"]}.items() <= \
        next(b for b in as_json if b["options"].get("mode") == "closed").items()
    # a re-run from run.json ticks the same three entries (options included)
    picker.set_checked([])
    panel.apply_config(cfg.to_dict())
    assert sorted((s["model"], (s.get("options") or {}).get("mode", "")) for s in picker.checked_specs()) == \
        sorted((b["model"], b["options"].get("mode", "")) for b in as_json)


def test_a_sweep_from_the_window_passes_the_kinds_options_to_the_engine(qtbot, loaded_window, toy_kinds,
                                                                       listening_port):
    """A CLIP-server entry ticked in the picker runs through the real worker; its options reach the kind
    and run.json (config and the backbone's description)."""
    import json
    from pathlib import Path

    w = loaded_window
    url = f"http://127.0.0.1:{listening_port}"
    spec = {"model": f"clip-server:{url}", "pretrained": None, "checkpoint": None, "label": "lab server",
            "options": {"auth_env": "LAB_CLIP_TOKEN"}}
    w.run_panel.backbones.set_checked([spec])
    with qtbot.waitSignal(w.controller.finished, timeout=180000) as done:
        assert w.start_sweep()
    status, run_dir, _summary = done.args
    assert status == "completed"
    meta = json.loads((Path(run_dir) / "run.json").read_text())
    (cfg_backbone,) = meta["config"]["backbones"]
    assert cfg_backbone["model"] == f"clip-server:{url}" and cfg_backbone["options"] == {"auth_env": "LAB_CLIP_TOKEN"}
    (described,) = meta["backbones"]
    assert described["name"] == "lab server" and described["protocol"] == "http"
    assert {"auth_env": "LAB_CLIP_TOKEN"} in ToyServer.seen_options
    levels = pd.read_csv(Path(run_dir) / "levels.csv")
    assert set(levels["backbone"]) == {"lab server"} and len(levels) >= 1


def test_picker_hands_the_open_dataset_and_label_names_to_the_vlm_dialog(qtbot, loaded_window):
    w = loaded_window
    ds, names = w.run_panel.backbones.current_dataset()
    assert ds is w.browser.dataset
    assert names == [n for ns in w.doc.to_labelset().names.values() for n in ns]
    assert "crimson block" in names  # synonyms too, not only class keys
