"""A running clip-as-service server (Jina's CLIP server) as a backbone.

The server holds the model; semscale sends it prompt texts and image bytes and gets
embeddings back. Everything after the embeddings (levels, ties, statistics, cache) is the
same as for a local open_clip model, so the server's numbers equal the local model's when it
holds the same weights:

* images always travel as bytes (a data URI of the file's bytes, or a lossless PNG of the
  decoded image when the server would read the file differently), never as paths: the
  server may be another machine;
* embeddings come back unnormalised and are L2-normalised here exactly as the local path
  does (``torch.nn.functional.normalize`` on float32);
* prompts are built from templates here, so the text side is the local prompts verbatim;
* the server does not say which model it holds, so it is fingerprinted: a fixed probe
  (a few texts and one generated image) is encoded at connect time and the rounded
  embeddings are hashed. That fingerprint, not the URL, is the cache identity: a model
  swapped behind a URL never reuses another model's cache, and the same model reached
  through another address does.

Requests are pipelined (``max_concurrency`` in flight, default 4) while the next ones are
being built; connection errors, timeouts and 429/502/503/504 answers are retried with
exponential backoff (``Retry-After`` honoured) before a clear error. Credentials come only
from the environment (``auth_env``) and are never written to run.json, logs or the cache.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import io
import json
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Optional, Sequence
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import requests
import torch
from PIL import Image

from core.data.images import BadImage
from core.models.base import EmbeddingModel, EncodedBatch, identity_hash
from core.util.errors import InputError, RemoteFailure
from core.util.events import Progress, Stage, ignore_events


KIND = "clip-server"
PREFIX = KIND + ":"
SCHEMES = ("http", "https", "grpc", "grpcs")
INSTALL_HINT = "pip install 'semscale[clip-server]'"
DECODE_NOTE = "does not apply: the server decodes and preprocesses images itself"

DEFAULTS: dict[str, Any] = {
    "max_concurrency": 4,  # requests in flight
    "request_timeout": 120.0,  # seconds per request (a cold server's first answer takes ~20 s)
    "connect_timeout": 10.0,  # seconds to open a connection
    "retries": 5,  # further attempts after a failed one
    "backoff": 0.5,  # first wait in seconds; doubles per attempt
    "max_backoff": 30.0,
    "text_batch_size": 64,  # prompts per request
    "ca_bundle": None,  # a CA file (or folder) for https servers with a private CA
    "auth_env": None,  # name of an environment variable holding the Authorization header's value
    "logit_scale": 100.0,  # the server does not report it; clip-as-service's own ranking uses 100
}
RETRY_STATUS = {429, 502, 503, 504}

# The probe: fixed texts and one generated image. Embeddings rounded to this many decimals
# (of the normalised vectors) are hashed, so float noise in the last digits does not matter.
PROBE_TEXTS = ("a photo of a cat.", "a photo of a dog.", "a diagram of a molecule.")
FINGERPRINT_DECIMALS = 3


class ServerError(RemoteFailure):
    """The server failed mid-run (unreachable after retries, or a malformed answer).

    Finished levels and cached embeddings are kept; running the same command again resumes.
    """


def probe_image() -> bytes:
    """A deterministic 96x80 RGB test image (a colour gradient with a square), as PNG bytes."""
    y, x = np.mgrid[0:80, 0:96]
    arr = np.stack([x * 255 // 95, y * 255 // 79, (x + y) * 255 // 174], axis=-1).astype(np.uint8)
    arr[20:50, 30:60] = (240, 30, 60)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows L2-normalised exactly as the local path normalises (torch, float32)."""
    t = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    return torch.nn.functional.normalize(t, dim=-1).numpy()


def fingerprint(vectors: np.ndarray) -> str:
    """sha256 of the probe's normalised embeddings rounded to FINGERPRINT_DECIMALS."""
    v = np.round(normalize(vectors).astype(np.float64), FINGERPRINT_DECIMALS) + 0.0  # -0.0 -> 0.0
    payload = json.dumps({"shape": list(v.shape), "values": v.ravel().tolist()}, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


# ------------------------------------------------------------------ the address


@dataclass(frozen=True)
class ServerAddress:
    """A parsed ``clip-server:`` spec."""

    scheme: str  # http | https | grpc | grpcs
    url: str  # scheme://host:port[/path]

    @property
    def protocol(self) -> str:
        return "grpc" if self.scheme.startswith("grpc") else "http"

    @property
    def tls(self) -> bool:
        return self.scheme in ("https", "grpcs")


def is_clip_server(text: str) -> bool:
    return isinstance(text, str) and text.strip().startswith(PREFIX)


def parse_address(text: str) -> ServerAddress:
    """``clip-server:http://HOST:PORT`` (or https, grpc, grpcs) -> ServerAddress; InputError otherwise."""
    raw = text.strip()
    if raw.startswith(PREFIX):
        raw = raw[len(PREFIX):]
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as e:
        raise InputError(f"not a server address: '{raw}' ({e})", field="model") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.hostname:
        raise InputError(
            f"a CLIP server is written clip-server:http://HOST:PORT, clip-server:https://HOST[:PORT] or "
            f"clip-server:grpc://HOST:PORT, not '{text.strip()}'", field="model")
    if scheme.startswith("grpc") and port is None:
        raise InputError(f"a gRPC server address needs a port: '{text.strip()}'", field="model")
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    url = urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))
    if parts.username or parts.password:  # the spec is written to run.json: never a secret in it
        raise InputError(f"put no credentials in the server address ({url}): name an environment variable holding "
                         "the Authorization header's value with --auth-env instead", field="model")
    return ServerAddress(scheme=scheme, url=url)


def _retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _as_vector(emb: Any) -> np.ndarray:
    """An embedding from a JSON answer: a list, or docarray's dense dict (base64 buffer)."""
    if isinstance(emb, dict):
        dense = emb.get("dense", emb)
        buf = base64.b64decode(dense["buffer"])
        return np.frombuffer(buf, dtype=np.dtype(dense.get("dtype", "<f4"))).reshape(dense["shape"])
    return np.asarray(emb, dtype=np.float32)


# ------------------------------------------------------------------ transports


class _HttpTransport:
    """clip-as-service's HTTP gateway: ``POST /post`` with a JSON list of documents."""

    def __init__(self, address: ServerAddress, options: dict, headers: dict[str, str]):
        self.address = address
        self.endpoint = address.url + "/post"
        self.timeout = (float(options["connect_timeout"]), float(options["request_timeout"]))
        self.verify: Any = options["ca_bundle"] or True
        self.headers = {"Content-Type": "application/json", **headers}
        self.pool = int(options["max_concurrency"])
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.trust_env = True  # proxies from the environment, as every HTTP client
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max(1, self.pool))
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            self._local.session = s
            with self._lock:
                self._sessions.append(s)
        return s

    def send(self, docs: list[dict]) -> list[Any]:
        """One request; returns the embeddings in order. Raises _Retryable or ServerError."""
        body = json.dumps({"data": docs, "execEndpoint": "/"})
        try:
            r = self._session().post(self.endpoint, data=body, headers=self.headers, timeout=self.timeout,
                                     verify=self.verify)
        except requests.exceptions.SSLError as e:
            raise ServerError(f"TLS verification failed for {self.address.url} ({_first_line(e)}); "
                              "for a private certificate authority pass its CA file with --ca-bundle") from None
        except (requests.ConnectionError, requests.Timeout) as e:
            raise _Retryable(_first_line(e)) from None
        if r.status_code in RETRY_STATUS:
            raise _Retryable(f"HTTP {r.status_code} {r.reason}", _retry_after(r.headers.get("Retry-After")))
        if r.status_code in (401, 403):
            raise ServerError(f"{self.address.url} refused the request (HTTP {r.status_code}): "
                              "check the Authorization header's environment variable (--auth-env)")
        if r.status_code != 200:
            raise ServerError(f"{self.address.url} answered HTTP {r.status_code} {r.reason}: {r.text[:300]}")
        try:
            answer = r.json()
        except ValueError:
            raise ServerError(f"{self.address.url} did not answer with JSON: {r.text[:200]!r}") from None
        status = (answer.get("header") or {}).get("status") or {}
        if status.get("code") not in (None, 0, "SUCCESS"):
            desc = status.get("description") or status.get("exception", {}).get("name") or "error"
            raise ServerError(f"{self.address.url} reported an error: {str(desc)[:300]}")
        data = answer.get("data")
        if not isinstance(data, list):
            raise ServerError(f"{self.address.url} answered without documents: {r.text[:200]!r}")
        return [d.get("embedding") if isinstance(d, dict) else None for d in data]

    def close(self) -> None:
        with self._lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()


class _GrpcTransport:
    """clip-as-service's gRPC gateway through the ``clip-client`` package (an optional extra)."""

    def __init__(self, address: ServerAddress, options: dict, headers: dict[str, str]):
        try:
            from clip_client import Client  # noqa: F401
            from docarray import Document, DocumentArray  # noqa: F401
        except Exception as e:  # ImportError, or a broken install (protobuf mismatch…)
            raise InputError(
                f"{address.url}: the gRPC protocol needs clip-as-service's client ({INSTALL_HINT}); "
                f"importing it failed ({_first_line(e)}). The HTTP gateway (clip-server:http://…) needs nothing "
                "extra", field="model") from None
        self.address = address
        self.timeout = float(options["request_timeout"])
        self.headers = headers
        self._local = threading.local()
        host = address.url.split("://", 1)[1]
        self._client_url = ("grpcs://" if address.tls else "grpc://") + host

    def _client(self):
        c = getattr(self._local, "client", None)
        if c is None:
            from clip_client import Client

            c = Client(self._client_url, credential=dict(self.headers))  # sent as gRPC "authorization" metadata
            self._local.client = c
        return c

    def send(self, docs: list[dict]) -> list[Any]:
        from docarray import Document, DocumentArray

        da = DocumentArray([Document(text=d["text"]) if "text" in d else Document(uri=d["uri"]).load_uri_to_blob()
                            for d in docs])
        try:
            out = self._client().encode(da, batch_size=len(da), show_progress=False)
        except (ConnectionError, TimeoutError, OSError) as e:
            raise _Retryable(_first_line(e)) from None
        except Exception as e:  # jina wraps transport failures in its own exception types
            text = _first_line(e)
            if any(w in text.lower() for w in ("unavailable", "connect", "deadline", "timeout", "resource_exhausted")):
                raise _Retryable(text) from None
            raise ServerError(f"{self.address.url}: {text}") from None
        return [d.embedding for d in out]

    def close(self) -> None:
        self._local = threading.local()


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: Optional[float] = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


# ------------------------------------------------------------------ the kind


class ClipServerModel(EmbeddingModel):
    """Embeddings from a clip-as-service server reached over HTTP(S) or gRPC."""

    kind: ClassVar[str] = KIND
    decodes_locally = False  # the server decodes and preprocesses; --decode does not apply

    def __init__(self, spec: Any, options: Optional[dict] = None, *,
                 sleep: Callable[[float], None] = time.sleep):
        """``spec``: a BackboneSpec whose ``model`` is ``clip-server:URL`` (its ``options`` dict, when it
        has one, holds the kind's options), or the spec text itself. ``options`` override those."""
        text = spec if isinstance(spec, str) else spec.model
        self.spec = spec
        self.address = parse_address(text)
        opts = dict(DEFAULTS)
        given = {**(getattr(spec, "options", None) or {}), **(options or {})}
        unknown = sorted(set(given) - set(DEFAULTS))
        if unknown:
            raise InputError(f"unknown clip-server option(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}",
                             field="options")
        opts.update({k: v for k, v in given.items() if v is not None})
        for key in ("max_concurrency", "retries", "text_batch_size"):
            if int(opts[key]) < (0 if key == "retries" else 1):
                raise InputError(f"{key} must be at least {0 if key == 'retries' else 1}, not {opts[key]}",
                                 field=key)
            opts[key] = int(opts[key])
        for key in ("request_timeout", "connect_timeout", "backoff", "max_backoff", "logit_scale"):
            if float(opts[key]) <= 0 and key not in ("backoff",):
                raise InputError(f"{key} must be positive, not {opts[key]}", field=key)
            opts[key] = float(opts[key])
        if opts["ca_bundle"] and not os.path.exists(str(opts["ca_bundle"])):
            raise InputError("CA bundle not found", file=str(opts["ca_bundle"]), field="ca_bundle")
        self.options = opts
        self.name = PREFIX + self.address.url if isinstance(spec, str) else spec.display
        self._sleep = sleep
        self._transport: Any = None
        self._lock = threading.Lock()
        self.requests = 0  # encode requests sent (every attempt), for progress, tests and benchmarks
        self.probe_requests = 0  # connect-time fingerprint requests (every attempt)
        self.request_seconds = 0.0  # summed round-trip time of the encode requests
        self.request_spans: list[tuple[float, float]] = []  # (start, end) perf_counter of each encode request
        self._embed_dim = 0
        self.fingerprint: str = ""
        self._identity = ""
        self._identity_info: dict = {}
        self.latency: Optional[float] = None  # the probe's round trip, seconds

    # -- the protocol
    @property
    def loaded(self) -> bool:
        return self._transport is not None and bool(self.fingerprint)

    # identity and width come from the fingerprint: reading them connects (check) when nothing has yet
    @property
    def embed_dim(self) -> int:
        if not self.loaded:
            self.check()
        return self._embed_dim

    @property
    def identity(self) -> str:
        if not self.loaded:
            self.check()
        return self._identity

    @property
    def identity_info(self) -> dict:
        if not self.loaded:
            self.check()
        return self._identity_info

    def ensure_loaded(self, emit=ignore_events) -> None:
        self.check()

    @property
    def logit_scale(self) -> float:
        return self.options["logit_scale"]

    def _headers(self) -> dict[str, str]:
        env = self.options["auth_env"]
        if not env:
            return {}
        value = os.environ.get(str(env))
        if not value:
            raise InputError(f"the environment variable {env} (named by --auth-env) is not set or empty",
                             field="auth_env")
        return {"Authorization": value}

    def check(self) -> None:
        """Connect and fingerprint the server; InputError naming the URL and what was tried if that fails."""
        if self.loaded:
            return
        headers = self._headers()
        transport_cls = _GrpcTransport if self.address.protocol == "grpc" else _HttpTransport
        transport = transport_cls(self.address, self.options, headers)
        docs = [{"text": t} for t in PROBE_TEXTS] + [{"uri": _data_uri(probe_image(), "image/png")}]
        tried = (f"{'POST ' + self.address.url + '/post' if self.address.protocol == 'http' else 'gRPC encode at ' + self.address.url}"
                 f" with {len(docs)} probe documents")
        t0 = time.perf_counter()
        try:
            vecs = self._send(docs, transport=transport, probe=True)
        except (ServerError, InputError) as e:
            transport.close()
            raise InputError(f"cannot use the CLIP server at {self.address.url}: {e} (tried: {tried}, "
                             f"{self.options['retries'] + 1} attempt(s), timeout {self.options['request_timeout']:g} s)",
                             field="model") from None
        self.latency = time.perf_counter() - t0
        self._transport = transport
        self._embed_dim = int(vecs.shape[1])
        self.fingerprint = fingerprint(vecs)
        # the identity hashes what the server computes, not where it is: the URL is in describe()
        self._identity_info = {"kind": KIND, "fingerprint": self.fingerprint, "embed_dim": self._embed_dim,
                               "probe": {"texts": list(PROBE_TEXTS), "image": "probe_image() v1",
                                         "decimals": FINGERPRINT_DECIMALS}}
        self._identity = identity_hash(self._identity_info)

    def describe(self) -> dict:
        spec: Any = self.spec if isinstance(self.spec, str) else self.spec.to_dict()
        public = {k: v for k, v in self.options.items()}
        return {"name": self.name, "kind": KIND, "spec": spec, "url": self.address.url,
                "protocol": self.address.protocol, "embed_dim": self._embed_dim, "fingerprint": self.fingerprint,
                "logit_scale": self.logit_scale, "options": public, "decode": DECODE_NOTE,
                **({"probe_latency_s": round(self.latency, 4)} if self.latency is not None else {}),
                "identity_info": self._identity_info, "identity": self._identity}

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = None
        self.fingerprint = ""

    # -- requests
    def _send(self, docs: list[dict], transport: Any = None, probe: bool = False) -> np.ndarray:
        """One request with retries; [len(docs), d] float32 unnormalised embeddings."""
        transport = transport or self._transport
        if transport is None:
            self.check()
            transport = self._transport
        opts = self.options
        attempts = opts["retries"] + 1
        last = ""
        for attempt in range(attempts):
            t0 = time.perf_counter()
            try:
                with self._lock:
                    if probe:
                        self.probe_requests += 1
                    else:
                        self.requests += 1
                raw = transport.send(docs)
            except _Retryable as e:
                last = e.reason
                if attempt + 1 >= attempts:
                    break
                wait = min(opts["max_backoff"], opts["backoff"] * 2 ** attempt)
                if e.retry_after is not None:
                    wait = max(wait, min(e.retry_after, 10 * opts["max_backoff"]))
                self._sleep(wait)
                continue
            finally:
                if not probe:
                    t1 = time.perf_counter()
                    with self._lock:
                        self.request_seconds += t1 - t0
                        self.request_spans.append((t0, t1))
            return self._check_answer(docs, raw)
        raise ServerError(f"the CLIP server at {self.address.url} did not answer after {attempts} attempt(s) "
                          f"(last: {last}); finished work is kept, run the same command again to resume")

    def _check_answer(self, docs: list[dict], raw: list[Any]) -> np.ndarray:
        if len(raw) != len(docs):
            raise ServerError(f"the CLIP server at {self.address.url} returned {len(raw)} embeddings for "
                              f"{len(docs)} documents")
        if any(e is None for e in raw):
            raise ServerError(f"the CLIP server at {self.address.url} returned documents without an embedding")
        try:
            vecs = np.stack([_as_vector(e).reshape(-1) for e in raw]).astype(np.float32, copy=False)
        except (ValueError, KeyError, TypeError) as e:
            raise ServerError(f"the CLIP server at {self.address.url} returned embeddings of different widths "
                              f"or an unreadable form ({_first_line(e)})") from None
        if self._embed_dim and vecs.shape[1] != self._embed_dim:
            raise ServerError(f"the CLIP server at {self.address.url} now returns {vecs.shape[1]}-wide embeddings, "
                              f"not {self._embed_dim} as when it was fingerprinted: the model behind the URL changed")
        if not np.isfinite(vecs).all():
            raise ServerError(f"the CLIP server at {self.address.url} returned non-finite embeddings")
        return vecs

    def _pipeline(self, jobs: Iterator[Callable[[], Any]], send: Callable[[Any], Any], cancel=None,
                  build_workers: int = 1) -> Iterator[tuple[Any, Any]]:
        """Run ``send(job())`` for every job, up to max_concurrency requests in flight while the next jobs
        are built; yields (built, sent) in order. Cancels what is queued when the consumer stops."""
        width = self.options["max_concurrency"]
        builders = ThreadPoolExecutor(max(1, build_workers), thread_name_prefix="clip-server-build")
        senders = ThreadPoolExecutor(width, thread_name_prefix="clip-server-request")
        window: deque[tuple[Future, Future]] = deque()

        def submit(job):
            built = builders.submit(job)
            window.append((built, senders.submit(lambda: send(built.result()))))

        try:
            it = iter(jobs)
            for job in it:
                submit(job)
                if len(window) > width:  # one built request waits beside those in flight
                    break
            while window:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                built, sent = window.popleft()
                result = sent.result()
                nxt = next(it, None)
                if nxt is not None:
                    submit(nxt)
                yield built.result(), result
        finally:
            for built, sent in window:
                sent.cancel()
                built.cancel()
            senders.shutdown(wait=True, cancel_futures=True)
            builders.shutdown(wait=True, cancel_futures=True)

    def embed_texts(self, prompts: list[str]) -> np.ndarray:
        """[n, d] float32 L2-normalised embeddings of these prompts (sent as text, verbatim)."""
        if not self.loaded:
            self.check()
        n = self.options["text_batch_size"]
        chunks = [list(prompts[i:i + n]) for i in range(0, len(prompts), n)]
        jobs = ((lambda c=c: [{"text": t} for t in c]) for c in chunks)
        out = [vecs for _, vecs in self._pipeline(jobs, self._send)]
        if not out:
            return np.zeros((0, self._embed_dim), dtype=np.float32)
        return normalize(np.concatenate(out))

    def embed_records(self, dataset, indices: list[int], *, batch_size: int = 64, num_workers: Optional[int] = None,
                      emit=ignore_events, cancel=None) -> Iterator[EncodedBatch]:
        """Encode these dataset records, ``batch_size`` images per request, requests pipelined.

        Each image is read and checked here (a bad image is skipped with its reason, never sent); the
        server gets its bytes. Batches come back in order."""
        if not self.loaded:
            self.check()
        batch_size = max(1, int(batch_size))
        workers = num_workers if num_workers and num_workers > 0 else min(4, os.cpu_count() or 1)
        batches = [list(indices[i:i + batch_size]) for i in range(0, len(indices), batch_size)]
        total, done, t0 = len(indices), 0, time.perf_counter()

        def build(batch: list[int]):
            docs, kept, skipped = [], [], []
            for i in batch:
                try:
                    docs.append({"uri": image_data_uri(dataset, i)})
                    kept.append(i)
                except BadImage as e:
                    skipped.append((i, str(e)))
            return docs, kept, skipped

        def send(built):
            docs = built[0]
            return self._send(docs) if docs else np.zeros((0, self._embed_dim), dtype=np.float32)

        for (docs, kept, skipped), vecs in self._pipeline(((lambda b=b: build(b)) for b in batches), send, cancel,
                                                          build_workers=workers):
            done += len(kept) + len(skipped)
            elapsed = time.perf_counter() - t0
            rate = done / elapsed if elapsed > 0 else None
            eta = (total - done) / rate if rate else None
            emit(Progress(Stage.ENCODE_IMAGES, done, total, rate, self.name,
                          message=f"{self.requests} requests" + (f", ETA {eta:.0f} s" if eta is not None else "")))
            yield EncodedBatch(indices=kept, vectors=normalize(vecs), skipped=skipped)

    encode_texts = embed_texts  # older names of the same calls
    encode_records = embed_records


# ------------------------------------------------------------------ image bytes


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


_AS_IS = {"JPEG": "image/jpeg", "PNG": "image/png"}


def image_data_uri(dataset, i: int) -> str:
    """Record ``i`` as a data URI. The file's own bytes when the server reads them as semscale does
    (an RGB JPEG or PNG without EXIF rotation); otherwise a lossless PNG of semscale's decoded image
    (rotation applied, alpha on white, 16-bit scaled), so both sides embed the same pixels.
    Raises BadImage for an unusable image."""
    rgb = dataset.open(i)  # semscale's decode: BadImage with the reason for unusable files
    rec = dataset.records[i]
    if rec.path is not None and getattr(dataset, "perturbation", None) is None:  # a perturbed image goes as PNG
        data = rec.path.read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            fmt, mode = im.format, im.mode
            orientation = im.getexif().get(0x0112, 1)
        if fmt in _AS_IS and mode == "RGB" and orientation in (None, 1):
            return _data_uri(data, _AS_IS[fmt])
    buf = io.BytesIO()
    rgb.save(buf, format="PNG", compress_level=1)
    return _data_uri(buf.getvalue(), "image/png")



def from_spec(spec: Any, *, lazy: bool = True) -> ClipServerModel:
    """The registry's factory: a lazy model connects (and fingerprints) on check() or first use."""
    model = ClipServerModel(spec)
    if not lazy:
        model.check()
    return model
