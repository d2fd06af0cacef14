"""An OpenAI-compatible chat-completions endpoint as a classifier (spec ``openai:MODEL@URL``).

vLLM, Ollama's ``/v1``, ``transformers serve`` and OpenAI itself answer the same request: one
user turn with the image as a base64 data URI and the prompt, greedy (temperature 0). Remote
is normal here: requests run ``max_concurrency`` at a time, time out, and are retried with
backoff on 429 and 5xx, honouring ``Retry-After`` (the ``openai`` client's own retry loop).
Every answer is cached as soon as it arrives, keyed by (identity, image content key, prompt),
so a re-run, or a run resumed after a failure or a cancel, never pays for an image twice.

The key comes from the environment only (``OPENAI_API_KEY`` or the variable named by
``api_key_env``) and is never written anywhere: not in the identity, ``describe()``, logs or
the cache.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import io
import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Optional, Sequence
from urllib.parse import urlsplit, urlunsplit

from core.util.errors import InputError
from core.util.events import CancelToken, Log, Progress, Stage, ignore_events
from core.models.answer_cache import cached_answers
from core.models.base import AnsweringModel, ImageAnswers
from core.models.prompts import DEFAULT_MAX_NEW_TOKENS, DEFAULT_PROMPT

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
NO_KEY = "no-key"  # what the client sends when no key is set (local servers accept anything)


def parse_target(text: str) -> tuple[str, str]:
    """(model, base URL) of ``MODEL@URL``; the URL gets ``/v1`` when it has no path."""
    at = text.rfind("@http")
    if at <= 0:
        raise InputError(f"'{text}' is not MODEL@URL (e.g. llava-1.5@http://127.0.0.1:8000/v1)", field="model")
    model, url = text[:at].strip(), text[at + 1 :].strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"'{url}' is not an http(s) URL", field="model")
    if parts.username or parts.password:
        raise InputError("the endpoint URL must not contain credentials; put the key in an environment variable",
                         field="model")
    path = parts.path.rstrip("/") or "/v1"
    return model, urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _sniff(raw: bytes) -> Optional[str]:
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if raw.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "webp"
    return None


def image_data_uri(dataset, i: int) -> str:
    """The image of record ``i`` as a data URI: the file's own bytes when they show what the
    engine sees (PNG/JPEG/WebP, RGB, upright), else the decoded RGB image as PNG."""
    from PIL import Image

    im = dataset.open(i)  # BadImage: skipped before anything is sent
    r = dataset.records[i]
    if r.path is not None:
        try:
            raw = r.path.read_bytes()
            fmt = _sniff(raw)
            if fmt:
                with Image.open(io.BytesIO(raw)) as src:
                    upright = src.getexif().get(0x0112, 1) == 1 and src.mode == "RGB" and src.size == im.size
                if upright:
                    return f"data:image/{fmt};base64,{base64.b64encode(raw).decode('ascii')}"
        except OSError:
            pass
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return f"data:image/png;base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


class OpenAIChat(AnsweringModel):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint (answers only)."""

    kind = "openai"
    output = "answers"

    def __init__(self, target: str, *, mode: str = "open", prompt: str = DEFAULT_PROMPT,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, max_concurrency: int = 4, request_timeout: float = 120.0,
                 retries: int = 5, api_key_env: Optional[str] = None, allow_insecure: bool = False,
                 label: Optional[str] = None, spec: Any = None) -> None:
        if mode not in ("open", "closed"):
            raise InputError(f"an endpoint answers in the open or closed mode, not '{mode}' (likelihood needs a local "
                             "model: chat endpoints return no log-probabilities of given answers)", field="vlm-mode")
        if max_concurrency < 1:
            raise InputError("max-concurrency must be at least 1", field="max-concurrency")
        if request_timeout <= 0:
            raise InputError("request-timeout must be positive", field="request-timeout")
        self.model, self.url = parse_target(target)
        self.mode, self.prompt, self.max_new_tokens = mode, prompt, int(max_new_tokens)
        self.max_concurrency, self.request_timeout, self.retries = int(max_concurrency), float(request_timeout), int(retries)
        self.api_key_env = api_key_env or DEFAULT_KEY_ENV
        self.allow_insecure = allow_insecure
        self.spec = spec
        self.name = label or f"openai:{self.model}" + ("" if mode == "open" else f"[{mode}]")
        self.skipped: list[tuple[int, str]] = []
        self.served: dict = {}  # what the endpoint says about the model (id, created, owned_by)
        self._client = None
        self.requests = 0  # requests that returned an answer (retries not counted)

    # -- key and client
    def _key(self) -> Optional[str]:
        return os.environ.get(self.api_key_env) or None

    def _check_transport(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme == "http" and self._key() and not is_loopback(parts.hostname or "") and not self.allow_insecure:
            raise InputError(f"refusing to send the key in ${self.api_key_env} over plain http to {parts.hostname}; use "
                             "https, or --allow-insecure if this network is trusted", field="model")

    @property
    def client(self):
        if self._client is None:
            try:
                from openai import OpenAI
            except ImportError:
                raise InputError("endpoints need the 'vlm' extra (pip install 'semscale[vlm]')", field="model") from None
            self._check_transport()
            self._client = OpenAI(base_url=self.url, api_key=self._key() or NO_KEY, timeout=self.request_timeout,
                                  max_retries=self.retries)
        return self._client

    @property
    def loaded(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- identity
    @property
    def identity_info(self) -> dict:
        """Model, URL and what the endpoint reports about the model (so a model swapped behind
        the URL gets a new identity), prompt and mode; never the key."""
        return {"kind": self.kind, "model": self.model, "url": self.url, "served": self.served, "mode": self.mode,
                "prompt": self.prompt, "max_new_tokens": self.max_new_tokens, "temperature": 0}

    @property
    def identity(self) -> str:
        return hashlib.sha256(json.dumps(self.identity_info, sort_keys=True).encode()).hexdigest()

    def describe(self) -> dict:
        return {"name": self.name, **self.identity_info, "max_concurrency": self.max_concurrency,
                "request_timeout": self.request_timeout, "retries": self.retries, "api_key_env": self.api_key_env,
                **({"spec": self.spec.to_dict()} if hasattr(self.spec, "to_dict") else {})}

    def check(self) -> None:
        """Before any work: the endpoint answers and serves the model (its model list, else a
        one-token probe); InputError saying which otherwise."""
        import openai

        self._check_transport()
        client = self.client.with_options(max_retries=1, timeout=min(self.request_timeout, 30.0))
        listed: list = []
        try:
            listed = list(client.models.list())
        except openai.APIConnectionError as e:
            raise InputError(f"cannot reach the endpoint {self.url} ({e.__cause__ or e})", field="model") from None
        except openai.AuthenticationError:
            raise InputError(f"the endpoint {self.url} refused the key (set it in ${self.api_key_env})", field="model") from None
        except openai.APIError:
            listed = []  # no model list on this server: the probe decides
        for m in listed:
            if m.id == self.model:
                self.served = {k: v for k, v in {"id": m.id, "created": getattr(m, "created", None),
                                                 "owned_by": getattr(m, "owned_by", None)}.items() if v is not None}
                return
        try:
            client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": "Say yes."}],
                                           max_tokens=1, temperature=0)
        except (openai.NotFoundError, openai.BadRequestError) as e:
            ids = ", ".join(sorted(m.id for m in listed)[:20]) or "none listed"
            raise InputError(f"the endpoint {self.url} does not serve model '{self.model}' (models: {ids}; "
                             f"{e.status_code}: {_brief(e)})", field="model") from None
        except openai.APIConnectionError as e:
            raise InputError(f"cannot reach the endpoint {self.url} ({e.__cause__ or e})", field="model") from None
        except openai.AuthenticationError:
            raise InputError(f"the endpoint {self.url} refused the key (set it in ${self.api_key_env})", field="model") from None
        self.served = {"id": self.model}

    # -- answers
    def ask(self, data_uri: str, prompt: str) -> str:
        """One request: the image and the prompt, greedy; the answer text as returned."""
        resp = self.client.chat.completions.create(
            model=self.model, temperature=0, max_tokens=self.max_new_tokens,
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_uri}},
                                                   {"type": "text", "text": prompt}]}])
        return (resp.choices[0].message.content or "").strip()

    def answer(self, dataset, indices: Sequence[int], prompts: Sequence[str], *, cache=None, emit=ignore_events,
               cancel: Optional[CancelToken] = None, keys: Optional[Sequence[str]] = None) -> ImageAnswers:
        """One raw answer per readable image; see :meth:`answer_texts`."""
        import numpy as np

        skipped_before, requests_before = len(self.skipped), self.requests
        texts = self.answer_texts(dataset, indices, prompts, cache=cache, emit=emit, cancel=cancel, keys=keys)
        keep = [j for j, t in enumerate(texts) if t is not None]
        return ImageAnswers(np.asarray([indices[j] for j in keep], dtype=np.int64), [texts[j] for j in keep],
                            self.skipped[skipped_before:], self.requests - requests_before)

    def answer_texts(self, dataset, indices: Sequence[int], prompts: Sequence[str], *, cache=None,
                     emit=ignore_events, cancel: Optional[CancelToken] = None,
                     keys: Optional[Sequence[str]] = None) -> list[Optional[str]]:
        """One raw answer per image (None for an image that could not be sent or was refused).

        Requests run ``max_concurrency`` at a time; each answer is cached when it arrives, so a
        cancel or a failure keeps everything already paid for.
        """
        import openai

        from core.data.images import BadImage

        ident = self.identity
        store, keys, out, todo = cached_answers(cache, ident, dataset, indices, prompts, keys)
        total, done, t0 = len(todo), 0, time.perf_counter()
        emit(Progress(Stage.ANSWER, 0, total, None, self.name, f"{total} requests to {self.url}"))
        if not todo:
            return out

        def job(j: int) -> str:
            return self.ask(image_data_uri(dataset, indices[j]), prompts[j])

        pending: dict[Future, int] = {}
        queue = iter(todo)
        failure: Optional[BaseException] = None
        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="semscale-endpoint") as pool:
            def fill() -> None:
                while len(pending) < 2 * self.max_concurrency and failure is None and not (cancel and cancel.cancelled):
                    j = next(queue, None)
                    if j is None:
                        return
                    pending[pool.submit(job, j)] = j

            fill()
            while pending:
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for f in finished:
                    j = pending.pop(f)
                    done += 1
                    try:
                        out[j] = f.result()
                    except BadImage as e:
                        self._skip(indices[j], str(e), emit)
                        continue
                    except (openai.BadRequestError, openai.UnprocessableEntityError) as e:  # this image only
                        self._skip(indices[j], f"the endpoint refused it ({e.status_code}: {_brief(e)})", emit)
                        continue
                    except openai.AuthenticationError:
                        failure = failure or InputError(f"the endpoint {self.url} refused the key (set it in "
                                                        f"${self.api_key_env})", field="model")
                        continue
                    except Exception as e:  # noqa: BLE001 - unreachable, timed out, retries spent: stop, keep answers
                        failure = failure or e
                        continue
                    self.requests += 1
                    if store:
                        store.put_answers(ident, [(keys[j], prompts[j], out[j])])
                elapsed = max(time.perf_counter() - t0, 1e-9)
                rate = done / elapsed
                eta = (total - done) / rate if rate > 0 else float("nan")
                emit(Progress(Stage.ANSWER, done, total, rate, self.name, f"{rate:.2f} requests/s, ETA {eta:.0f} s"))
                fill()
        if failure is not None:
            if isinstance(failure, InputError):
                raise failure
            raise RuntimeError(f"{self.name}: requests to {self.url} failed ({type(failure).__name__}: "
                               f"{_brief(failure)}); the {self.requests} answers received are cached and a re-run "
                               "resumes from them") from failure
        if cancel is not None:
            cancel.raise_if_cancelled()
        return out

    def _skip(self, index: int, reason: str, emit) -> None:
        self.skipped.append((index, reason))
        emit(Log(f"{self.name}: skipped image {index}: {reason}", "warning"))


def _brief(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


OPTIONS = ("mode", "prompt", "max_new_tokens", "max_concurrency", "request_timeout", "retries", "api_key_env",
           "allow_insecure")


def from_spec(spec, *, lazy: bool = True) -> OpenAIChat:
    """The kind an ``openai:MODEL@URL`` spec names (its options in ``spec.options``); nothing is
    contacted until :meth:`OpenAIChat.check`."""
    target = spec.model.split(":", 1)[1] if spec.model.startswith("openai:") else spec.model
    opts = {k: v for k, v in (spec.options or {}).items() if k in OPTIONS and v is not None}
    return OpenAIChat(target, label=spec.label, spec=spec, **opts)
