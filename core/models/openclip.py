"""One factory for every backbone: open_clip names, pretrained tags, hf-hub ids, local
checkpoints, custom JSON configs and the bundled demo models.

A :class:`Backbone` carries an ``identity`` string (model, weights hash, preprocessing,
precision) that keys the embedding cache, so changing any of them never reuses stale
embeddings.
"""

from __future__ import annotations

import json
import logging
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from core.util.config import DECODERS, DEVICES, PRECISIONS, BackboneSpec, file_sha256, file_sha256_uncached  # noqa: F401  (re-exported)
from core.models import open_clip_files
from core.models.base import EmbeddingModel, identity_hash
from core.util.errors import InputError, WeightsUnavailable
from core.util.events import ignore_events
from core.util.tables import read_user_json


def resolve_device(device: str = "auto") -> str:
    if device not in DEVICES and not device.startswith("cuda:"):
        raise InputError(f"unknown device '{device}' (choose from {', '.join(DEVICES)})", field="device")
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("CUDA was requested but no CUDA GPU is available (use --device cpu or auto)", field="device")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("MPS was requested but is not available on this machine", field="device")
    return device


def available_devices() -> list[str]:
    """Devices usable on this machine (for pickers)."""
    out = ["auto", "cpu"]
    if torch.cuda.is_available():
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.device_count() > 1 else ["cuda"]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


# ---------------------------------------------------------------- demo models


def demo_index() -> dict:
    """The bundled demo backbones (``resources/models/index.json``), or {} if absent."""
    import resources

    p = resources.ROOT / "models" / "index.json"
    if not p.exists():
        return {}
    return json.loads(p.read_text(encoding="utf-8"))


def _register_config(path: Path) -> str:
    import open_clip

    open_clip.add_model_config(path)
    return path.stem


def config_file(spec: BackboneSpec) -> Optional[Path]:
    """The JSON config a demo backbone or a ``model.json`` spec brings (registered with open_clip
    only when the network is built, so resolving a backbone never imports open_clip)."""
    import resources

    demos = demo_index()
    if spec.model in demos:
        return resources.ROOT / "models" / demos[spec.model]["config"]
    if spec.model.endswith(".json"):
        return Path(spec.model).expanduser()
    return None


def resolve_model(spec: BackboneSpec) -> tuple[str, Optional[str], Optional[str]]:
    """(open_clip model name, checkpoint path or None, expected sha256 or None)."""
    import resources

    model, checkpoint, expected = spec.model, spec.checkpoint, None
    demos = demo_index()
    if model in demos:
        entry = demos[model]
        if checkpoint is None:
            checkpoint = str(resources.ROOT / "models" / entry["weights"])
            expected = entry.get("sha256")
        return model, checkpoint, expected
    if model.endswith(".json"):
        p = Path(model).expanduser()
        if not p.is_file():
            raise InputError("model config file not found", file=model, field="model")
        cfg = read_user_json(p, field="model")
        if not {"embed_dim", "vision_cfg", "text_cfg"} <= set(cfg):
            raise InputError("not an open_clip model config (needs embed_dim, vision_cfg, text_cfg)", file=model)
        return p.stem, checkpoint, None
    if model.startswith("hf-hub:"):
        return model, checkpoint, None
    if model not in open_clip_files.known_models():
        raise InputError(
            f"unknown model '{model}'; run 'semscale models' for the list, or pass a config .json",
            field="model",
        )
    return model, checkpoint, None


def _offline_help(spec: BackboneSpec, err: Exception) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    first = first.rstrip(". ")
    what = spec.model if spec.model.startswith("hf-hub:") else f"{spec.model} / pretrained '{spec.pretrained}'"
    return (
        f"could not load weights for {what}: {first}. "
        "If this machine is offline, download the checkpoint elsewhere (open_clip stores it under "
        "~/.cache/huggingface/hub), copy it here and pass it with --checkpoint PATH (same --model), "
        "or use a bundled demo backbone (--model demo-vit or demo-resnet)."
    )


_quiet = threading.local()


class _QuietThread(logging.Filter):
    """Drops root-logger records of a thread inside :func:`_quiet_open_clip`; other threads log as usual."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "depth", 0)


_QUIET_FILTER = _QuietThread()


@contextmanager
def _quiet_open_clip():
    """open_clip logs 'initialized randomly' before we load the checkpoint ourselves.

    Only the calling thread is silenced (a thread-local flag read by a filter on the root
    logger), so a sweep on a worker thread never changes what the rest of the process logs.
    """
    root = logging.getLogger()
    if _QUIET_FILTER not in root.filters:
        root.addFilter(_QUIET_FILTER)
    _quiet.depth = getattr(_quiet, "depth", 0) + 1
    try:
        yield
    finally:
        _quiet.depth -= 1


def _is_conv_tower(model) -> bool:
    """True when the image tower is convolutional (ResNet, ConvNeXt…), not a ViT."""
    visual = getattr(model, "visual", None)
    return visual is not None and any(isinstance(m, torch.nn.Conv2d) for m in visual.modules()) and not hasattr(
        visual, "transformer")


def preprocess_side(preprocess) -> Optional[int]:
    """The largest ``size`` among a torchvision Compose's resize/crop steps (the model input side)."""
    sides = []
    for t in getattr(preprocess, "transforms", [preprocess]):
        size = getattr(t, "size", None) if not isinstance(t, type) else None
        if isinstance(size, int):
            sides.append(size)
        elif isinstance(size, (tuple, list)) and size and all(isinstance(x, int) for x in size):
            sides.append(max(size))
    return max(sides) if sides else None


class Backbone(EmbeddingModel):
    """An open_clip model in this process, with its preprocessing, tokenizer and cache identity.

    The network itself is built on first use: a re-run whose images and prompts are
    all in the cache never pays for building the model or loading its weights.
    The identity is computed without the model, from the model config, the pretrained
    config (which sets preprocessing), the weights hash and the precision.
    """

    def __init__(self, spec: BackboneSpec, name: str, checkpoint: Optional[str], weights_id: str, device: str,
                 config: Optional[dict], precision: Optional[str] = None, config_path: Optional[Path] = None):
        self.spec = spec  # what the user asked for, never changed
        self.precision = precision or spec.precision  # what runs (fp16 on a CPU runs as bf16)
        self.open_clip_name = name
        self.checkpoint = checkpoint
        self.device = device
        self.weights_id = weights_id
        self.name = spec.display
        self.config = config
        self._model = None
        self._load_lock = threading.Lock()  # a load started ahead (prefetch) and the pipeline's own never overlap
        self._preprocess = None
        self._channels_last = False
        self._tokenizer = None
        self.config_path = config_path  # registered with open_clip before the network or tokenizer is built
        pcfg = _open_clip().get_pretrained_cfg(name, spec.pretrained) if spec.pretrained else {}
        ident = {
            "model": spec.model,
            "weights": weights_id,
            "config": config,
            "preprocess": {k: pcfg.get(k) for k in ("mean", "std", "interpolation", "resize_mode")},
            "precision": self.precision,
            "open_clip": open_clip_files.version(),
        }
        if spec.decode != "exact":  # reduced-scale or GPU decoding gives other pixels, hence other embeddings;
            ident["decode"] = spec.decode  # full-size decoding keeps the identity it had before the option existed
        self.identity = identity_hash(ident)
        self.identity_info = ident
        self._prompts: Optional[PromptEncoder] = None

    def _open_clip(self):
        """open_clip, with this backbone's own config registered (demo models, config files)."""
        open_clip = _open_clip()
        # (re-)register when the registry lacks this config or another file of the same name replaced it
        if self.config_path is not None and open_clip.get_model_config(self.open_clip_name) != self.config:
            _register_config(self.config_path)
        return open_clip

    kind = "open_clip"
    decodes_locally = True  # images are decoded and batched here (core.models.local_images)

    def check(self) -> None:
        self.ensure_weights()

    def ensure_loaded(self, emit=None) -> None:
        self.load()

    def embed_texts(self, prompts: list[str]) -> np.ndarray:
        """Through :class:`PromptEncoder`: the text tower runs only as far as the longest prompt."""
        if self._prompts is None:
            self._prompts = PromptEncoder(self)
        return self._prompts(prompts).numpy()

    def embed_records(self, dataset, indices, *, batch_size=64, num_workers=None, emit=ignore_events, cancel=None,
                      backoff=None, prefetch_factor: int = 4):
        from core.models.local_images import encode_local

        return encode_local(self, dataset, indices, batch_size=batch_size, num_workers=num_workers, emit=emit,
                            cancel=cancel, backoff=backoff, prefetch_factor=prefetch_factor)

    def _checkpoint_error(self, e: BaseException) -> InputError:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return InputError(
            f"cannot load this checkpoint into model '{self.open_clip_name}' ({msg}); check that --model matches the "
            "checkpoint and that it is a state-dict file (safe loading refuses arbitrary pickles)",
            file=self.checkpoint,
            field="checkpoint",
        )

    def check_checkpoint(self) -> None:
        """Load the checkpoint into a weightless ("meta") copy of the architecture: a file that is
        no state dict, unsafe, or of another model is refused before a run folder exists, while a
        run whose images and prompts are all cached still never builds the real network."""
        import warnings

        import torch

        open_clip = self._open_clip()
        try:
            with _quiet_open_clip(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "copying into a meta parameter is a no-op"
                with torch.device("meta"):
                    model = open_clip.create_model(self.open_clip_name, pretrained=None, device="meta")
        except Exception:
            return  # an architecture that cannot be built weightless is checked when it is built
        mmap = getattr(getattr(getattr(torch.serialization, "config", None), "load", None), "mmap", None)
        try:
            if mmap is not None:
                torch.serialization.config.load.mmap = True  # map the file instead of reading it whole
            with _quiet_open_clip(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                open_clip.load_checkpoint(model, str(self.checkpoint), weights_only=True)
        except Exception as e:
            raise self._checkpoint_error(e) from None
        finally:
            if mmap is not None:
                torch.serialization.config.load.mmap = mmap

    def ensure_weights(self) -> None:
        """Fetch (or find in the local cache) pretrained weights without building the model,
        so a missing download is reported before a run starts; a checkpoint is test-loaded."""
        if self._model is None and self.checkpoint and not self.cache_seen:
            self.check_checkpoint()
        if self._model is not None or self.checkpoint or not self.spec.pretrained:
            return
        open_clip = self._open_clip()

        pcfg = open_clip.get_pretrained_cfg(self.open_clip_name, self.spec.pretrained)
        if pcfg:
            try:
                with _quiet_open_clip():
                    open_clip.download_pretrained(pcfg)
            except Exception as e:
                raise WeightsUnavailable(_offline_help(self.spec, e)) from None

    # -- lazily built parts
    def prefetch(self) -> threading.Thread:
        """Build the network on a background thread while the pipeline lists and hashes images.

        The pipeline's own :meth:`load` waits for it; an error is left for that call to raise
        again, where it is reported as usual.
        """
        def build() -> None:
            try:
                self.load()
            except Exception:  # noqa: BLE001 - re-raised by the pipeline's own load()
                pass

        t = threading.Thread(target=build, name=f"load {self.name}", daemon=True)
        t.start()
        return t

    def load(self) -> "Backbone":
        if self._model is not None:
            return self
        with self._load_lock:
            if self._model is None:
                self._build()
        return self

    def _build(self) -> None:
        open_clip = self._open_clip()

        name, spec = self.open_clip_name, self.spec
        if self.checkpoint:
            with _quiet_open_clip():
                model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
            try:
                open_clip.load_checkpoint(model, str(self.checkpoint), weights_only=True)
            except Exception as e:
                raise self._checkpoint_error(e) from None
        else:
            try:
                self.ensure_weights()  # fail fast, before building a big model
                with _quiet_open_clip():
                    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=spec.pretrained or None)
            except Exception as e:
                raise WeightsUnavailable(_offline_help(spec, e)) from None
        model.eval().to(self.device)
        self._channels_last = self.device.startswith("cuda") and _is_conv_tower(model)
        if self._channels_last:  # cuDNN's fast convolution kernels want NHWC
            model.to(memory_format=torch.channels_last)
        self._preprocess = preprocess
        self._model = model  # last: another thread reads a built model only once it is complete

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self):
        return self.load()._model

    @property
    def preprocess(self):
        return self.load()._preprocess

    @property
    def input_side(self) -> Optional[int]:
        """Longest side of the model input (the preprocessing's resize/crop size), or None if unknown."""
        return preprocess_side(self.preprocess)

    @property
    def draft_side(self) -> Optional[int]:
        """Shorter side JPEGs may be decoded down to (``decode="draft"``), else None (full size)."""
        return self.input_side if self.spec.decode == "draft" else None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = self._open_clip().get_tokenizer(self.open_clip_name)
        return self._tokenizer

    @property
    def logit_scale(self) -> float:
        m = self.model
        return float(m.logit_scale.exp().item()) if hasattr(m, "logit_scale") else 100.0

    @property
    def embed_dim(self) -> int:
        if self.config and "embed_dim" in self.config:
            return int(self.config["embed_dim"])
        return int(getattr(self.model, "embed_dim", 0) or self.model.text_projection.shape[-1])

    def autocast(self):
        p = self.precision
        if p == "fp32":
            return nullcontext()
        dtype = torch.float16 if p == "fp16" else torch.bfloat16
        dev = "cuda" if self.device.startswith("cuda") else self.device
        return torch.autocast(device_type=dev, dtype=dtype)

    @torch.no_grad()
    def encode_images(self, batch: torch.Tensor) -> torch.Tensor:
        """L2-normalised float32 image embeddings on the CPU."""
        model = self.model
        batch = batch.to(self.device, non_blocking=True)  # overlaps the copy when the batch is pinned
        if self._channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            feats = model.encode_image(batch)
        return torch.nn.functional.normalize(feats.float(), dim=-1).cpu()

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised float32 text embeddings on the CPU."""
        model = self.model
        tokens = self.tokenizer(texts).to(self.device)
        with self.autocast():
            feats = model.encode_text(tokens)
        return torch.nn.functional.normalize(feats.float(), dim=-1).cpu()

    def describe(self) -> dict:
        # "spec" is what was asked for; "device" and "precision" (in the identity) are what ran
        return {"name": self.name, "kind": self.kind, "spec": self.spec.to_dict(), "device": self.device,
                **self.identity_info, "identity": self.identity}


def load_backbone(spec: BackboneSpec, *, verify_hash: bool = True, lazy: bool = False) -> Backbone:
    """Resolve the model and its weights, check them, and (unless ``lazy``) build it.

    With ``lazy`` nothing imports open_clip unless a pretrained tag must be looked up (its
    preprocessing is part of the identity): demo models, config files and checkpoints of
    bundled architectures resolve from files alone.
    """
    if spec.precision not in PRECISIONS:
        raise InputError(f"unknown precision '{spec.precision}' (choose from {', '.join(PRECISIONS)})", field="precision")
    if spec.decode not in DECODERS:
        raise InputError(f"unknown decode mode '{spec.decode}' (choose from {', '.join(DECODERS)})", field="decode")
    device = resolve_device(spec.device)
    if spec.decode == "gpu" and not device.startswith("cuda"):
        raise InputError(f"--decode gpu needs a CUDA device (this backbone runs on {device}); "
                         "use --decode draft or exact", field="decode")
    # fp16 kernels are missing or slow on CPU; bf16 keeps the memory saving (the spec keeps what was asked)
    precision = "bf16" if device == "cpu" and spec.precision == "fp16" else spec.precision
    name, checkpoint, expected = resolve_model(spec)
    if spec.pretrained and checkpoint:
        raise InputError("give either --pretrained or --checkpoint, not both", field="pretrained")
    if checkpoint:
        ck = Path(checkpoint).expanduser()
        if not ck.is_file():
            raise InputError("checkpoint file not found", file=checkpoint, field="checkpoint")
        weights_id = "sha256:" + file_sha256(ck)
        if verify_hash and expected and weights_id != "sha256:" + expected:
            raise InputError(
                f"bundled weights do not match their recorded hash (expected {expected[:12]}…); reinstall semscale",
                file=ck,
            )
        checkpoint = str(ck)
    elif spec.pretrained or name.startswith("hf-hub:"):
        if spec.pretrained and not name.startswith("hf-hub:") and not _open_clip().get_pretrained_cfg(name, spec.pretrained):
            tags = ", ".join(_open_clip().list_pretrained_tags_by_model(name)) or "none"
            raise InputError(f"'{spec.pretrained}' is not a pretrained tag of {name} (known tags: {tags})",
                             field="pretrained")
        weights_id = f"pretrained:{name}:{spec.pretrained or ''}"
        if name.startswith("hf-hub:"):
            lazy = False  # the config of a hub model is only known once it is fetched
    else:
        raise InputError(
            f"no weights given for '{name}': pass --pretrained TAG (see 'semscale models'), --checkpoint PATH, "
            "or use a demo backbone (--model demo-vit)",
            field="pretrained",
        )
    cfg_path = config_file(spec)
    if name.startswith("hf-hub:"):
        config = None
    elif cfg_path is not None:
        config = read_user_json(cfg_path, field="model")  # what open_clip registers under this name
    else:
        config = open_clip_files.model_config(name)
    bb = Backbone(spec, name, checkpoint, weights_id, device, config, precision, config_path=cfg_path)
    return bb if lazy else bb.load()


def from_spec(spec: BackboneSpec, *, lazy: bool = True) -> Backbone:
    """The registry's factory for this kind (:mod:`core.models.registry`)."""
    return load_backbone(spec, lazy=lazy)


def _open_clip():
    import open_clip

    return open_clip


def list_models() -> list[tuple[str, list[str]]]:
    """(architecture, [pretrained tags]) for every open_clip architecture, demo models first."""
    import open_clip

    tags: dict[str, list[str]] = {}
    for arch, tag in open_clip.list_pretrained():
        tags.setdefault(arch, []).append(tag)
    out = [(name, ["(bundled)"]) for name in demo_index()]
    out += [(m, tags.get(m, [])) for m in open_clip.list_models()]
    return out


class PromptEncoder:
    """Text embeddings of a causal CLIP text tower, run only as far as the batch's longest prompt.

    open_clip pads every prompt to the full context (77 tokens for most models) and pools
    the end-of-text token. Under a causal attention mask no position sees the positions
    after it, so cutting the padding after the batch's last end-of-text token leaves every
    pooled feature unchanged (up to float rounding), at a fraction of the cost: prompts
    are usually under 15 tokens. Used only for open_clip's standard ``CLIP`` text tower
    with a causal mask and ``argmax``/``eos`` pooling, and checked once per backbone
    against the full-context encoder; anything else uses ``Backbone.encode_texts``.
    """

    TOLERANCE = {"fp32": 1e-4}  # largest difference to the full-context features accepted (else 3e-2)

    def __init__(self, backbone: Backbone) -> None:
        self.backbone = backbone
        self.checked: Optional[bool] = None if self._applicable() else False

    def _applicable(self) -> bool:
        m = self.backbone.model
        mask = getattr(m, "attn_mask", None)
        if type(m).__name__ != "CLIP" or getattr(m, "text_pool_type", None) not in ("argmax", "eos"):
            return False
        if mask is None or mask.ndim != 2 or not all(hasattr(m, a) for a in
                                                     ("token_embedding", "positional_embedding", "ln_final")):
            return False
        upper = torch.ones(mask.shape, dtype=torch.bool, device=mask.device).triu(1)
        return bool(torch.equal(torch.isneginf(mask), upper))

    @torch.no_grad()
    def _short(self, texts: list[str]) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        bb, m = self.backbone, self.backbone.model
        tokens = bb.tokenizer(texts).to(bb.device)
        eos = getattr(m, "text_eos_id", None)
        ends = tokens.argmax(dim=-1) if m.text_pool_type == "argmax" else (tokens == eos).int().argmax(dim=-1)
        n = int(ends.max()) + 1
        tokens = tokens[:, :n]
        with bb.autocast():  # the steps of open_clip's CLIP.encode_text, on the first n positions
            cast = m.transformer.get_cast_dtype()
            x = m.token_embedding(tokens).to(cast) + m.positional_embedding[:n].to(cast)
            x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask[:n, :n]))
            x = text_global_pool(x, tokens, m.text_pool_type, eos_token_id=eos)
            if m.text_projection is not None:
                x = m.text_projection(x) if isinstance(m.text_projection, torch.nn.Linear) else x @ m.text_projection
        return torch.nn.functional.normalize(x.float(), dim=-1).cpu()

    def __call__(self, texts: list[str]) -> torch.Tensor:
        if self.checked is None:  # once: the same features as the full context, else never again
            probe = texts[:4]
            diff = float((self._short(probe) - self.backbone.encode_texts(probe)).abs().max())
            self.checked = diff <= self.TOLERANCE.get(self.backbone.precision, 3e-2)
        return self._short(texts) if self.checked else self.backbone.encode_texts(texts)
