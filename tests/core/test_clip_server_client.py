"""The clip-as-service client against a real HTTP server on 127.0.0.1 that speaks the same protocol
and injects faults (throttling, outages, wrong answers). The real clip-as-service server is
exercised in test_clip_server.py; these tests need no server environment."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.imagefolder import load_image_folder
from core.util.errors import InputError
from core.models.clip_server import (
    DECODE_NOTE,
    ClipServerModel,
    ServerError,
    fingerprint,
    image_data_uri,
    parse_address,
    probe_image,
)

WIDTH = 12


def fake_embedding(doc: dict, seed: int = 0, width: int = WIDTH) -> list[float]:
    """A deterministic unnormalised 'embedding' of a document (text, or the bytes of a data URI)."""
    if "text" in doc:
        key = b"t" + doc["text"].encode()
    else:
        head, payload = doc["uri"].split(",", 1)
        assert head.startswith("data:image/") and head.endswith(";base64")
        key = b"i" + base64.b64decode(payload)
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "little") + seed)
    return (rng.normal(0, 3, width) + 5).astype(np.float32).tolist()


class FakeClipServer:
    """clip-as-service's ``POST /post`` protocol on a free port; ``script`` lists faults to serve first."""

    def __init__(self, seed: int = 0, width: int = WIDTH, tls: tuple[str, str] | None = None, delay: float = 0.0):
        self.seed, self.width, self.delay = seed, width, delay
        self.script: list[dict] = []  # each: {"status": 503, "headers": {...}} or {"drop": 1} or {"width": n}
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = self.peak = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.received.append(body)
                    outer.headers.append(dict(self.headers))
                    fault = outer.script.pop(0) if outer.script else {}
                    outer.in_flight += 1
                    outer.peak = max(outer.peak, outer.in_flight)
                try:
                    if outer.delay:
                        threading.Event().wait(outer.delay)
                    if "status" in fault:
                        self.send_response(fault["status"])
                        for k, v in fault.get("headers", {}).items():
                            self.send_header(k, v)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    docs = body["data"][: len(body["data"]) - fault.get("drop", 0)]
                    width = fault.get("width", outer.width)
                    out = {"data": [{**d, "embedding": fake_embedding(d, outer.seed, width)} for d in docs],
                           "header": {"status": None}}
                    raw = json.dumps(out).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def spec(self) -> str:
        return "clip-server:" + self.url

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake():
    srv = FakeClipServer()
    yield srv
    srv.close()


class Sleeps(list):
    """Records the client's backoff waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def unit_rows(rows: list[list[float]]) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


# ------------------------------------------------------------------ addresses


def test_parse_address_forms_and_errors():
    a = parse_address("clip-server:http://127.0.0.1:51000/")
    assert (a.scheme, a.url, a.protocol, a.tls) == ("http", "http://127.0.0.1:51000", "http", False)
    b = parse_address("clip-server:https://clip.lab.example/api")
    assert b.url == "https://clip.lab.example/api" and b.tls
    assert parse_address("clip-server:grpc://gpu-box:51000").protocol == "grpc"
    for bad in ("clip-server:ftp://x:1", "clip-server:localhost:51000", "clip-server:grpc://host"):
        with pytest.raises(InputError, match="clip-server:|port"):
            parse_address(bad)
    # the spec is written to run.json, so a password in it is refused with what to do instead
    with pytest.raises(InputError, match="--auth-env") as e:
        parse_address("clip-server:https://alice:s3cret@clip.lab.example")
    assert "s3cret" not in str(e.value)


# ------------------------------------------------------------------ embeddings, identity


def test_texts_are_sent_verbatim_and_normalised_like_numpy(fake):
    m = ClipServerModel(fake.spec, {"text_batch_size": 2})
    prompts = ["a photo of a cat.", "a photo of a dog.", "a sketch of a ship.", "a photo of a cat."]
    got = m.encode_texts(prompts)
    want = unit_rows([fake_embedding({"text": p}) for p in prompts])
    assert got.dtype == np.float32 and got.shape == (4, WIDTH)
    assert np.abs(got - want).max() < 1e-6
    sent = sorted([d["text"] for d in body["data"]] for body in fake.received[1:])  # [0] is the connect probe
    assert sent == sorted([prompts[:2], prompts[2:]])  # requests may arrive in any order; rows come back in order
    assert (m.probe_requests, m.requests, m.embed_dim) == (1, 2, WIDTH)


def test_fingerprint_is_the_identity_not_the_url():
    a, b, other = FakeClipServer(seed=0), FakeClipServer(seed=0), FakeClipServer(seed=1)
    try:
        ma, mb, mo = (ClipServerModel(s.spec) for s in (a, b, other))
        for m in (ma, mb, mo):
            m.check()
        assert ma.identity == mb.identity and ma.describe()["url"] != mb.describe()["url"]
        assert mo.identity != ma.identity  # another model behind a URL never shares a cache
        probe = a.received[0]["data"]
        vecs = np.array([fake_embedding(d) for d in probe], dtype=np.float32)
        assert ma.fingerprint == fingerprint(vecs)
        assert probe[-1]["uri"] == "data:image/png;base64," + base64.b64encode(probe_image()).decode()
        d = ma.describe()
        assert (d["protocol"], d["embed_dim"], d["fingerprint"], d["decode"]) == ("http", WIDTH, ma.fingerprint,
                                                                                   DECODE_NOTE)
    finally:
        for s in (a, b, other):
            s.close()


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            arr = rng.integers(0, 255, (20 + i, 30, 3), dtype=np.uint8)
            Image.fromarray(arr, "RGB").save(root / cls / f"{i}.{'png' if i % 2 else 'jpg'}")
    (root / "cat" / "broken.png").write_bytes(b"not an image at all")
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    Image.fromarray(rgba, "RGBA").save(root / "dog" / "alpha.png")
    return root


def test_records_go_as_bytes_in_order_with_bad_images_skipped(fake, tmp_path):
    ds = load_image_folder(_folder(tmp_path))
    m = ClipServerModel(fake.spec, {"max_concurrency": 3})
    batches = list(m.encode_records(ds, list(range(len(ds))), batch_size=3, num_workers=2))
    got_idx = [i for b in batches for i in b.indices]
    skipped = [(ds.records[i].id, why) for b in batches for i, why in b.skipped]
    assert [s[0] for s in skipped] == ["cat/broken.png"] and "not an image" in skipped[0][1]
    assert got_idx == [i for i, r in enumerate(ds.records) if r.id != "cat/broken.png"]
    received = sorted(d["uri"] for body in fake.received[1:] for d in body["data"])
    docs = [{"uri": image_data_uri(ds, i)} for i in got_idx]  # requests arrive in any order; rows come back in order
    assert received == sorted(d["uri"] for d in docs) and all(u.startswith("data:image/") for u in received)
    vecs = np.concatenate([b.vectors for b in batches])
    assert np.abs(vecs - unit_rows([fake_embedding(d) for d in docs])).max() < 1e-6
    for i, d in zip(got_idx, docs):
        rec = ds.records[i]
        raw = base64.b64decode(d["uri"].split(",", 1)[1])
        if rec.id.endswith("alpha.png"):  # RGBA: semscale's decode (alpha on white) sent as a lossless PNG
            import io
            sent = np.asarray(Image.open(io.BytesIO(raw)))
            assert sent.shape == (16, 16, 3) and np.array_equal(sent, np.asarray(ds.open(i)))
        else:  # RGB JPEG/PNG: the file's own bytes
            assert raw == rec.path.read_bytes()


def test_requests_are_pipelined(tmp_path):
    srv = FakeClipServer(delay=0.3)
    try:
        ds = load_image_folder(_folder(tmp_path))
        m = ClipServerModel(srv.spec, {"max_concurrency": 4})
        list(m.encode_records(ds, list(range(len(ds))), batch_size=2, num_workers=1))
        assert srv.peak >= 3  # several requests were in flight at once
        assert (m.probe_requests, m.requests) == (1, 6)
    finally:
        srv.close()


# ------------------------------------------------------------------ faults


def test_throttling_is_retried_with_backoff_honouring_retry_after(fake):
    sleeps = Sleeps()
    m = ClipServerModel(fake.spec, {"backoff": 0.5}, sleep=sleeps)
    m.check()
    fake.script = [{"status": 503, "headers": {"Retry-After": "7"}}, {"status": 429}, {"status": 502}]
    got = m.encode_texts(["a photo of a cat."])
    assert sleeps == [7.0, 1.0, 2.0]  # Retry-After wins over the 0.5 s first wait; then 0.5 * 2**k
    assert (m.probe_requests, m.requests) == (1, 4)
    assert np.abs(got - unit_rows([fake_embedding({"text": "a photo of a cat."})])).max() < 1e-6


def test_a_server_that_keeps_failing_is_a_clear_error(fake):
    sleeps = Sleeps()
    m = ClipServerModel(fake.spec, {"retries": 3, "backoff": 1, "max_backoff": 3}, sleep=sleeps)
    m.check()
    fake.script = [{"status": 503}] * 10
    with pytest.raises(ServerError, match=r"127\.0\.0\.1.*4 attempt.*HTTP 503.*resume"):
        m.encode_texts(["x"])
    assert sleeps == [1, 2, 3]


def test_wrong_count_or_changed_width_is_an_error(fake):
    m = ClipServerModel(fake.spec)
    m.check()
    fake.script = [{"drop": 1}]
    with pytest.raises(ServerError, match="returned 1 embeddings for 2 documents"):
        m.encode_texts(["a", "b"])
    fake.script = [{"width": WIDTH + 4}]
    with pytest.raises(ServerError, match=f"{WIDTH + 4}-wide embeddings, not {WIDTH}"):
        m.encode_texts(["a"])


def test_unreachable_server_at_check_names_url_and_what_was_tried():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    m = ClipServerModel(f"clip-server:http://127.0.0.1:{port}", {"retries": 2}, sleep=sleeps)
    with pytest.raises(InputError) as e:
        m.check()
    msg = str(e.value)
    assert f"http://127.0.0.1:{port}" in msg and "POST" in msg and "3 attempt" in msg
    assert len(sleeps) == 2 and m.probe_requests == 3 and m.requests == 0


def test_grpc_without_the_client_package_says_what_to_install():
    try:
        import clip_client  # noqa: F401
        pytest.skip("clip-client is installed here")
    except Exception:
        pass
    with pytest.raises(InputError, match=r"pip install 'semscale\[clip-server\]'"):
        ClipServerModel("clip-server:grpc://127.0.0.1:1").check()


def test_authorization_comes_from_the_environment_and_is_never_recorded(fake, monkeypatch):
    monkeypatch.setenv("LAB_CLIP_TOKEN", "Bearer very-secret-token")
    m = ClipServerModel(fake.spec, {"auth_env": "LAB_CLIP_TOKEN"})
    m.check()
    assert fake.headers[0]["Authorization"] == "Bearer very-secret-token"
    text = json.dumps(m.describe()) + json.dumps(m.identity_info) + m.identity + m.name
    assert "very-secret" not in text and "LAB_CLIP_TOKEN" in text  # the variable's name, not its value
    monkeypatch.delenv("LAB_CLIP_TOKEN")
    with pytest.raises(InputError, match="LAB_CLIP_TOKEN"):
        ClipServerModel(fake.spec, {"auth_env": "LAB_CLIP_TOKEN"}).check()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_https_verifies_certificates_and_accepts_a_private_ca(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    srv = FakeClipServer(tls=(str(cert), str(key)))
    try:
        with pytest.raises(InputError, match="TLS verification failed.*--ca-bundle"):
            ClipServerModel(srv.spec).check()
        m = ClipServerModel(srv.spec, {"ca_bundle": str(cert)})
        m.check()
        assert m.describe()["url"].startswith("https://127.0.0.1")
    finally:
        srv.close()


def test_cli_unreachable_server_exits_2_before_the_run_folder(tmp_path, capsys):
    from core.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ds = _folder(tmp_path)
    out = tmp_path / "run"
    rc = main(["sweep", "--dataset", str(ds), "--model", f"clip-server:http://127.0.0.1:{port}", "--out", str(out),
               "--request-timeout", "2", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert f"http://127.0.0.1:{port}" in err and "tried: POST" in err


def test_cli_server_options_reach_the_kind(fake, tmp_path, monkeypatch):
    from core.cli import build_parser, _backbone_specs

    args = build_parser().parse_args(["sweep", "--dataset", "x", "--model", fake.spec, "--model", "demo-vit",
                                      "--max-concurrency", "7", "--request-timeout", "9.5", "--auth-env", "TOK",
                                      "--out", str(tmp_path / "run")])
    server, local = _backbone_specs(args)
    assert server.options == {"max_concurrency": 7, "request_timeout": 9.5, "auth_env": "TOK"}
    assert local.options == {}
    m = ClipServerModel(server)
    assert (m.options["max_concurrency"], m.options["request_timeout"], m.options["auth_env"]) == (7, 9.5, "TOK")
