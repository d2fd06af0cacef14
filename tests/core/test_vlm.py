"""Vision-language model kinds against real libraries and real servers: a tiny random LLaVA,
``transformers serve`` on a free localhost port, and a local HTTP server that throttles."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("openai")

import torch  # noqa: E402

from core.data.imagefolder import load_image_folder  # noqa: E402
from core.demo.tiny_vlm import write_tiny_vlm  # noqa: E402
from core.util.errors import InputError  # noqa: E402
from core.util.events import Log, Progress  # noqa: E402
from core.models.answer_cache import AnswerCache  # noqa: E402
from core.models.openai_chat import OpenAIChat, parse_target  # noqa: E402
from core.models.prompts import closed_prompt  # noqa: E402
from core.models.vlm import LocalVLM, resolve_source  # noqa: E402
from tests.conftest import write_image_folder  # noqa: E402

NAMES = ["red square", "crimson block", "green circle", "lime disc", "blue triangle", "navy wedge", "cat", "x",
         "a very long name of a class"]


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory) -> Path:
    return write_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm") / "llava", seed=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return load_image_folder(write_image_folder(tmp_path_factory.mktemp("vlm-images") / "images", per_class=2))


@pytest.fixture(scope="module")
def reference(vlm_dir):
    """The model and processor loaded straight from transformers (not through semscale)."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    return AutoProcessor.from_pretrained(vlm_dir), LlavaForConditionalGeneration.from_pretrained(vlm_dir).eval()


def chat(processor, prompt: str, image: bool = True) -> str:
    content = ([{"type": "image"}] if image else []) + [{"type": "text", "text": prompt}]
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)


# ------------------------------------------------------------------ local generation

def test_local_answers_equal_generate_called_directly(vlm_dir, dataset, reference, tmp_path):
    processor, model = reference
    idx = list(range(len(dataset)))
    prompts = [closed_prompt("What is it?", NAMES[: 2 + i % 5], image_key=str(i)) for i in idx]  # unequal lengths
    vlm = LocalVLM(str(vlm_dir), max_new_tokens=6, batch_size=3)
    got = vlm.answer_texts(dataset, idx, prompts, cache=tmp_path)

    single = []
    for i in idx:  # one image at a time, no padding at all
        inputs = processor(images=[dataset.open(i)], text=[chat(processor, prompts[i])], return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
        single.append(processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    assert got == single
    assert len(set(got)) > 1  # the images do lead to different answers

    # a re-run reads every answer from the cache: no model is loaded
    again = LocalVLM(str(vlm_dir), max_new_tokens=6)
    assert again.answer_texts(dataset, idx, prompts, cache=tmp_path) == got and not again.loaded
    # another prompt or answer length is another identity
    assert LocalVLM(str(vlm_dir), max_new_tokens=5).identity != again.identity
    assert LocalVLM(str(vlm_dir), prompt="What is this?").identity != LocalVLM(str(vlm_dir)).identity


def test_closed_prompt_longer_than_the_context_is_refused_with_the_count(vlm_dir):
    vlm = LocalVLM(str(vlm_dir), mode="closed", max_new_tokens=8)
    assert vlm.context_length == 512
    vlm.check_prompt_fits(closed_prompt(vlm.prompt, NAMES))
    many = [f"name number {i}" for i in range(200)]
    with pytest.raises(InputError, match=r"takes \d+ tokens \(\+8 for the answer\), more than the model's context of 512"):
        vlm.check_prompt_fits(closed_prompt(vlm.prompt, many), "level 3's prompt")


def test_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="not in the Hugging Face cache and downloads are off"):
        resolve_source("someone/not-downloaded-vlm")
    with pytest.raises(InputError, match="does not exist"):
        resolve_source(str(tmp_path / "nothing-here"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        LocalVLM(str(tmp_path / "empty")).check()


# ------------------------------------------------------------------ likelihood

def reference_scores(processor, model, image, prompt: str, names: list[str], with_image: bool = True) -> np.ndarray:
    """(sum, count) of each name's token log-probs from one full forward of context + name
    (no key-value cache), the name's tokens counted from its own tokenisation."""
    rows = []
    for n in names:
        k = len(processor.tokenizer(" " + n, add_special_tokens=False)["input_ids"])
        text = chat(processor, prompt, with_image) + " " + n
        if with_image:
            inputs = processor(images=[image], text=[text], return_tensors="pt")
        else:
            inputs = processor.tokenizer([text], return_tensors="pt", add_special_tokens=False)
        ids = inputs["input_ids"][0]
        with torch.no_grad():
            logp = torch.log_softmax(model(**inputs).logits[0].double(), dim=-1)
        L = len(ids)
        rows.append((sum(logp[t - 1, ids[t]].item() for t in range(L - k, L)), k))
    return np.array(rows, dtype=np.float64).T


@pytest.mark.parametrize("norm", ["mean", "sum"])
@pytest.mark.parametrize("calibrate", [False, True])
def test_likelihood_equals_a_full_forward_per_name(vlm_dir, dataset, reference, tmp_path, norm, calibrate):
    processor, model = reference
    idx = [0, 3, 5]
    vlm = LocalVLM(str(vlm_dir), mode="likelihood", norm=norm, calibrate=calibrate, name_batch=4)
    got = vlm.score_matrix(dataset, idx, NAMES, cache=tmp_path)
    assert got.shape == (3, len(NAMES)) and got.dtype == np.float32
    prior = reference_scores(processor, model, None, vlm.prompt, NAMES, with_image=False)
    for r, i in enumerate(idx):
        s, k = reference_scores(processor, model, dataset.open(i), vlm.prompt, NAMES)
        want = s / k if norm == "mean" else s
        if calibrate:
            want = want - (prior[0] / prior[1] if norm == "mean" else prior[0])
        np.testing.assert_allclose(got[r], want, atol=1e-4, rtol=0)
    assert (np.diff(got[:, 0]) != 0).any()  # the image matters


def test_another_architecture_through_auto_model(dataset, tmp_path_factory):
    """A tiny Qwen2-VL (AutoModelForImageTextToText, multi-axis rotary positions): batched answers
    equal generate called directly, and likelihood equals the full forward per name."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from core.demo.tiny_vlm import write_tiny_qwen2_vl

    folder = write_tiny_qwen2_vl(tmp_path_factory.mktemp("tiny-qwen") / "qwen2-vl")
    processor, model = AutoProcessor.from_pretrained(folder), AutoModelForImageTextToText.from_pretrained(folder).eval()
    idx = [0, 2, 4, 6]
    prompts = ["What is it?", "What type of object is in this photo?", "Name it.", "What is it?"]
    vlm = LocalVLM(str(folder), max_new_tokens=5, batch_size=4)
    assert type(vlm.model).__name__ == "Qwen2VLForConditionalGeneration" and not vlm.reuses_cache
    got = vlm.answer_texts(dataset, idx, prompts)
    for i, p, a in zip(idx, prompts, got):
        inputs = processor(images=[dataset.open(i)], text=[chat(processor, p)], return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
        assert a == processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    lik = LocalVLM(str(folder), mode="likelihood", name_batch=3)
    scores = lik.score_matrix(dataset, idx[:2], NAMES)
    for r, i in enumerate(idx[:2]):
        s, k = reference_scores(processor, model, dataset.open(i), lik.prompt, NAMES)
        np.testing.assert_allclose(scores[r], s / k, atol=1e-4, rtol=0)


def test_likelihood_scores_only_new_names(vlm_dir, dataset, tmp_path):
    events = []
    vlm = LocalVLM(str(vlm_dir), mode="likelihood")
    first = vlm.score_matrix(dataset, [1, 2], NAMES[:4], cache=tmp_path, emit=events.append)
    assert any(isinstance(e, Progress) and e.done == 2 for e in events)
    store = AnswerCache(tmp_path)
    rows = store._con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    assert rows == 2 * 4

    computed: list[list[str]] = []
    real = vlm._score_with_context

    def counting(image, names):
        computed.append(list(names))
        return real(image, names)

    vlm._score_with_context = counting
    both = vlm.score_matrix(dataset, [1, 2], NAMES[:4] + ["cat", "x"], cache=tmp_path)
    assert computed == [["cat", "x"], ["cat", "x"]]  # per image, only the two new names
    np.testing.assert_array_equal(both[:, :4], first)
    fresh = LocalVLM(str(vlm_dir), mode="likelihood").score_matrix(dataset, [1, 2], ["cat", "x"])  # no cache
    np.testing.assert_allclose(both[:, 4:], fresh, atol=1e-5)
    # calibration shares the raw scores; the norm does not
    assert LocalVLM(str(vlm_dir), mode="likelihood", norm="sum").identity != vlm.identity
    assert LocalVLM(str(vlm_dir), mode="likelihood", calibrate=True)._score_identity == vlm._score_identity


# ------------------------------------------------------------------ transformers serve

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(vlm_dir, tmp_path_factory):
    """``transformers serve`` with the tiny model preloaded, on a free 127.0.0.1 port."""
    import urllib.error
    import urllib.request

    exe = Path(sys.executable).with_name("transformers")
    if not exe.is_file():
        pytest.skip("the transformers command is not installed")
    port = free_port()
    log = open(tmp_path_factory.mktemp("serve") / "serve.log", "wb")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                             str(vlm_dir)], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("transformers serve did not start within 180 s")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_endpoint_answers_equal_the_local_kind(vlm_dir, dataset, served, tmp_path):
    idx = list(range(len(dataset)))
    prompts = [closed_prompt("What is it?", NAMES[:3], image_key=str(i)) for i in idx]
    local = LocalVLM(str(vlm_dir), max_new_tokens=6).answer_texts(dataset, idx, prompts)
    remote = OpenAIChat(f"{vlm_dir}@{served}", max_new_tokens=6, max_concurrency=3)
    remote.check()
    events = []
    got = remote.answer_texts(dataset, idx, prompts, cache=tmp_path, emit=events.append)
    assert got == local
    assert remote.requests == len(idx)
    assert [e.done for e in events if isinstance(e, Progress)][-1] == len(idx)
    assert "requests/s, ETA" in events[-1].message
    again = OpenAIChat(f"{vlm_dir}@{served}", max_new_tokens=6, max_concurrency=3)
    again.check()
    assert again.answer_texts(dataset, idx, prompts, cache=tmp_path) == got and again.requests == 0  # nothing paid twice


def test_endpoint_missing_model_or_server_is_refused_before_any_work(served, tmp_path):
    with pytest.raises(InputError, match="does not serve model 'no-such-model'"):
        OpenAIChat(f"no-such-model@{served}").check()
    with pytest.raises(InputError, match="cannot reach the endpoint"):
        OpenAIChat(f"m@http://127.0.0.1:{free_port()}", retries=0).check()


# ------------------------------------------------------------------ throttling and keys

class FakeEndpoint(BaseHTTPRequestHandler):
    """A real HTTP server that throttles the first chat request (429 + Retry-After: 1)."""

    calls: list = []
    throttle = 1

    def log_message(self, *args):
        pass

    def _json(self, code: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "fake-vlm", "object": "model", "created": 7,
                                                         "owned_by": "test"}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        cls.calls.append((time.monotonic(), self.headers.get("Authorization"), body))
        if cls.throttle > 0:
            cls.throttle -= 1
            self._json(429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"Retry-After": "1"})
            return
        text = next(p["text"] for p in body["messages"][0]["content"] if p["type"] == "text")
        image = next(p["image_url"]["url"] for p in body["messages"][0]["content"] if p["type"] == "image_url")
        self._json(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": f" A cat, {len(image)} ({text})\n"}}]})


@pytest.fixture
def fake_endpoint():
    FakeEndpoint.calls, FakeEndpoint.throttle = [], 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEndpoint)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_throttled_request_is_retried_after_retry_after(fake_endpoint, dataset, tmp_path, monkeypatch):
    key = "sk-test-0123456789-very-secret"
    monkeypatch.setenv("MY_VLM_KEY", key)
    ep = OpenAIChat(f"fake-vlm@{fake_endpoint}", api_key_env="MY_VLM_KEY", max_concurrency=1)
    ep.check()
    assert ep.served == {"id": "fake-vlm", "created": 7, "owned_by": "test"}
    events = []
    got = ep.answer_texts(dataset, [0, 1], ["p0", "p1"], cache=tmp_path / "cache", emit=events.append)
    calls = FakeEndpoint.calls
    assert len(calls) == 3  # the throttled one, its retry, the second image
    assert calls[1][0] - calls[0][0] >= 0.95  # waited for Retry-After
    assert all(c[1] == f"Bearer {key}" for c in calls)
    assert calls[1][2]["temperature"] == 0 and calls[1][2]["max_tokens"] == 64
    assert got[0].startswith("A cat, ") and got[0].endswith("(p0)") and got[1].endswith("(p1)")
    uri = calls[1][2]["messages"][0]["content"][0]["image_url"]["url"]
    assert uri.startswith("data:image/png;base64,")
    import base64
    assert base64.b64decode(uri.split(",", 1)[1]) == dataset.records[0].path.read_bytes()  # the file as it is

    # the key is nowhere: not in the cache, the description, the identity, the messages
    (tmp_path / "describe.json").write_text(json.dumps(ep.describe()))
    (tmp_path / "events.txt").write_text("\n".join(map(repr, events)))
    assert key not in json.dumps(ep.identity_info) and key not in ep.identity
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert key.encode() not in f.read_bytes(), f
    assert any(isinstance(e, Log) for e in events) is False


def test_plain_http_with_a_key_is_refused_off_this_machine(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc")
    with pytest.raises(InputError, match="refusing to send the key"):
        OpenAIChat("gpt@http://10.1.2.3:8000/v1").check()
    OpenAIChat("gpt@http://10.1.2.3:8000/v1", allow_insecure=True)._check_transport()
    OpenAIChat("gpt@https://api.example.org/v1")._check_transport()
    OpenAIChat("gpt@http://localhost:8000")._check_transport()
    monkeypatch.delenv("OPENAI_API_KEY")
    OpenAIChat("gpt@http://10.1.2.3:8000/v1")._check_transport()  # no key, nothing to leak
    assert parse_target("org/model@name@http://h:1") == ("org/model@name", "http://h:1/v1")
    with pytest.raises(InputError, match="credentials"):
        parse_target("m@http://user:pw@h:1/v1")
    with pytest.raises(InputError, match="likelihood needs a local model"):
        OpenAIChat("m@http://h:1", mode="likelihood")
