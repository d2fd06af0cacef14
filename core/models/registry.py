"""Model kinds by name: how a backbone string becomes a :class:`~core.models.base.ModelKind`.

One registry for the CLI's ``--model``, ``--backbones`` files, study files, the Python API,
``run.json`` and the app's backbone picker. A kind registers a *prefix* (``clip-server:``,
``vlm:``, ``openai:``) and/or bare names (``demo-vlm``) and a factory; anything no kind
claims is an open_clip backbone (``NAME``, ``NAME@TAG``, ``NAME=CHECKPOINT``). Factories
are named as ``"module:function"`` strings and imported on first use, so resolving or
listing kinds imports neither torch nor any kind's client library.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from core.util.config import DEFAULT_DEVICE, DEFAULT_PRECISION, BackboneSpec
from core.util.errors import InputError

Factory = Union[str, Callable[..., "object"]]  # "module:function" or the function itself


@dataclass(frozen=True)
class KindEntry:
    """One registered kind: what it answers to and how it is built."""

    kind: str
    factory: Factory  # (spec, *, lazy: bool) -> ModelKind
    prefix: Optional[str] = None  # e.g. "clip-server:"; None for the default kind
    names: tuple[str, ...] = ()  # bare names it answers to (bundled models)
    summary: str = ""
    example: str = ""
    options: tuple[str, ...] = field(default=())  # the spec.options keys it reads

    def build(self, spec: BackboneSpec, lazy: bool = True):
        fn = self.factory
        if isinstance(fn, str):
            module, _, attr = fn.partition(":")
            fn = getattr(importlib.import_module(module), attr)
        return fn(spec, lazy=lazy)


DEFAULT_KIND = "open_clip"
_ENTRIES: dict[str, KindEntry] = {}


def register(entry: KindEntry) -> KindEntry:
    """Add (or replace) a kind; a prefix or bare name already claimed by another kind is refused."""
    for other in _ENTRIES.values():
        if other.kind == entry.kind:
            continue
        if entry.prefix and entry.prefix == other.prefix:
            raise ValueError(f"prefix {entry.prefix!r} already belongs to kind {other.kind!r}")
        clash = set(entry.names) & set(other.names)
        if clash:
            raise ValueError(f"{sorted(clash)} already belong to kind {other.kind!r}")
    _ENTRIES[entry.kind] = entry
    return entry


def unregister(kind: str) -> None:
    _ENTRIES.pop(kind, None)


def kinds() -> list[KindEntry]:
    return list(_ENTRIES.values())


def kind_of(model: str) -> KindEntry:
    """The kind a model string names: a registered prefix or bare name, else open_clip."""
    text = model.strip()
    for e in _ENTRIES.values():
        if (e.prefix and text.startswith(e.prefix)) or text in e.names:
            return e
    return _ENTRIES[DEFAULT_KIND]


def parse_backbone(text: str, pretrained: Optional[str] = None, checkpoint: Optional[str] = None,
                   device: str = DEFAULT_DEVICE, precision: str = DEFAULT_PRECISION,
                   options: Optional[dict] = None) -> BackboneSpec:
    """A backbone as written on the command line.

    A string with a registered prefix (``clip-server:http://…``, ``vlm:PATH``, ``openai:MODEL@URL``)
    or a registered bare name is that kind's, whole. Anything else is open_clip's ``MODEL``,
    ``MODEL@TAG`` or ``MODEL=CHECKPOINT``; ``pretrained``/``checkpoint`` fill in the weights when
    the text names none (one ``--model`` with a separate ``--pretrained``).
    """
    model = text.strip()
    if not model:
        raise InputError(f"no model name in backbone '{text}'", field="model")
    if kind_of(model).kind != DEFAULT_KIND:
        return BackboneSpec(model=model, device=device, precision=precision, options=dict(options or {}))
    tag, ck = None, None
    if "=" in model:
        model, ck = model.split("=", 1)
    elif "@" in model:
        model, tag = model.split("@", 1)
    if not model:
        raise InputError(f"no model name in backbone '{text}'", field="model")
    return BackboneSpec(model=model, pretrained=tag or pretrained, checkpoint=ck or checkpoint,
                        device=device, precision=precision, options=dict(options or {}))


def as_backbone(item: Union[str, BackboneSpec, dict], device: str = DEFAULT_DEVICE,
                precision: str = DEFAULT_PRECISION) -> BackboneSpec:
    """A spec from a command-line string, a spec's dict, or a spec (returned as is)."""
    if isinstance(item, BackboneSpec):
        return item
    if isinstance(item, dict):
        from core.util.config import DEFAULT_DECODE

        return BackboneSpec.from_dict({"device": device, "precision": precision, "decode": DEFAULT_DECODE, **item})
    if isinstance(item, str):
        return parse_backbone(item, device=device, precision=precision)
    raise InputError(f"a backbone is a name such as 'demo-resnet' or a BackboneSpec, not {type(item).__name__}",
                     field="model")


def load_model(spec: BackboneSpec, *, lazy: bool = True):
    """The :class:`~core.models.base.ModelKind` a spec names; with ``lazy`` nothing heavy is built yet."""
    return kind_of(spec.model).build(spec, lazy=lazy)


register(KindEntry(
    DEFAULT_KIND, "core.models.openclip:from_spec",
    summary="open_clip in this process: architectures with pretrained tags, hf-hub: ids, local checkpoints, "
            "config .json files and the bundled demo backbones",
    example="ViT-B-32@laion2b_s34b_b79k, ViT-B-32=weights.pt, demo-vit",
))
register(KindEntry(
    "vlm", "core.models.vlm:from_spec", prefix="vlm:", names=("demo-vlm",),
    summary="a local Hugging Face transformers vision-language model (LLaVA family; others through "
            "AutoModelForImageTextToText): open or closed answers, or the likelihood of each name",
    example="vlm:llava-hf/llava-1.5-7b-hf, vlm:./my-llava, demo-vlm (bundled)",
    options=("mode", "prompt", "max_new_tokens", "norm", "calibrate", "answer_prefix", "batch_size", "name_batch"),
))
register(KindEntry(
    "openai", "core.models.openai_chat:from_spec", prefix="openai:",
    summary="an OpenAI-compatible chat-completions endpoint (vLLM, Ollama's /v1, transformers serve, OpenAI): "
            "open or closed answers; the key from $OPENAI_API_KEY or --api-key-env",
    example="openai:llava-1.5@http://127.0.0.1:8000/v1, openai:gpt-4o@https://api.openai.com/v1",
    options=("mode", "prompt", "max_new_tokens", "max_concurrency", "request_timeout", "retries", "api_key_env",
             "allow_insecure"),
))
register(KindEntry(
    "clip-server", "core.models.clip_server:from_spec", prefix="clip-server:",
    summary="a running clip-as-service server (Jina's CLIP server) over HTTP(S) or gRPC; embeddings equal the local "
            "model's when it holds the same weights; cached under the server's fingerprint",
    example="clip-server:http://127.0.0.1:51000, clip-server:grpc://gpu-box:51001",
    options=("max_concurrency", "request_timeout", "connect_timeout", "retries", "backoff", "max_backoff",
             "text_batch_size", "ca_bundle", "auth_env", "logit_scale"),
))
