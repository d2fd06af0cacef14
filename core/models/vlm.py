"""A local Hugging Face ``transformers`` vision-language model as a classifier (spec ``vlm:PATH_OR_HF_ID``).

Three modes: ``open`` (one greedy answer per image to the prompt), ``closed`` (the prompt lists
the level's categories; one answer per image and level) and ``likelihood`` (the score of a name
is the log-probability of its tokens as the answer). Likelihood encodes the image and prompt
once per image and reuses the key-value cache for every name, a batch of names at a time; the
straightforward way (one full forward per image and name, as in the published analysis) costs
a full image and prompt encoding per name.

Answers are cached per (identity, image content key, prompt) and name scores per (identity,
image content key, prompt, name), so a re-run or a synonym edit computes only what is new.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from core.util.errors import InputError, WeightsUnavailable
from core.util.events import CancelToken, Log, Progress, Stage, ignore_events
from core.models.answer_cache import AnswerCache, cached_answers
from core.models.base import ANSWERS, SCORES, AnsweringModel, ImageAnswers, ImageScores, ModelKind, ScoringModel
from core.models.prompts import DEFAULT_MAX_NEW_TOKENS, DEFAULT_PROMPT, VLM_MODES, VLM_NORMS

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
NO_IMAGE = "-"  # the image key of the prompt-only prior (calibration)
CACHE_BYTES_PER_BATCH = 1 << 30  # key-value cache copies one batch of names may hold


def resolve_source(source: str) -> Path:
    """The local folder of ``source``: a folder as given, or a Hugging Face id already downloaded.

    Nothing is downloaded while ``HF_HUB_OFFLINE`` is set; an id that is not local is an
    InputError that says how to get it.
    """
    p = Path(source).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise InputError(f"{p} has no config.json: not a transformers model folder", field="model")
        return p.resolve()
    if p.suffix or source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise InputError(f"model folder {source} does not exist", field="model")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - transformers always brings it
        raise InputError("VLMs need the 'vlm' extra (pip install 'semscale[vlm]')", field="model") from None
    try:
        return Path(snapshot_download(source, local_files_only=True))
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise InputError(f"model '{source}' is not in the Hugging Face cache and downloads are off (HF_HUB_OFFLINE); "
                         f"download it where there is a network (`hf download {source}`) or give a local folder",
                         field="model")
    try:
        return Path(snapshot_download(source))
    except Exception as e:
        raise InputError(f"model '{source}' is neither a local folder nor downloadable from the Hugging Face Hub "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); give a local folder "
                         f"or download it with `hf download {source}`", field="model") from None


def weights_sha256(folder: Path) -> str:
    """sha256 over the weight files of a model folder (names and contents, in name order)."""
    from core.util.config import file_sha256

    files = sorted(f for f in folder.iterdir() if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES))
    if not files:
        raise InputError(f"{folder} has no weight files ({', '.join(WEIGHT_SUFFIXES)})", field="model")
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


def _dtype(precision: str, device: str):
    import torch

    if precision == "fp32":
        return torch.float32
    if precision == "bf16" or (precision == "fp16" and device == "cpu"):
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    raise InputError(f"unknown precision '{precision}' (choose from fp32, fp16, bf16)", field="precision")


class LocalVLM(ModelKind):
    """A transformers VLM on this machine; ``load()`` happens on first use. :func:`from_spec`
    gives the answering (open, closed) or the scoring (likelihood) form."""

    kind = "vlm"

    def __init__(self, source: str, *, mode: str = "open", prompt: str = DEFAULT_PROMPT,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, norm: str = "mean", calibrate: bool = False,
                 answer_prefix: str = "", device: str = "auto", precision: str = "fp32", batch_size: int = 8,
                 name_batch: int = 64, label: Optional[str] = None, spec: Any = None) -> None:
        if mode not in VLM_MODES:
            raise InputError(f"unknown VLM mode '{mode}' (choose from {', '.join(VLM_MODES)})", field="vlm-mode")
        if norm not in VLM_NORMS:
            raise InputError(f"unknown VLM norm '{norm}' (choose from {', '.join(VLM_NORMS)})", field="vlm-norm")
        if max_new_tokens < 1:
            raise InputError("max-new-tokens must be at least 1", field="max-new-tokens")
        if not prompt.strip():
            raise InputError("the VLM prompt is empty", field="vlm-prompt")
        self.source, self.mode, self.prompt, self.max_new_tokens = source, mode, prompt, int(max_new_tokens)
        self.norm, self.calibrate, self.answer_prefix = norm, bool(calibrate), answer_prefix
        self.device_asked, self.precision, self.batch_size, self.name_batch = device, precision, batch_size, name_batch
        self.spec = spec
        self.name = label or default_name(source, mode)
        self.n_computed = 0  # images the last call computed (the rest came from the cache)
        self.skipped: list[tuple[int, str]] = []  # (dataset index, reason) of images that could not be used
        self._folder: Optional[Path] = None
        self._weights: Optional[str] = None
        self._model = None
        self._processor = None
        self.device: Optional[str] = None
        self._name_ids: dict[str, list[int]] = {}
        self._config: Optional[dict] = None

    # -- identity and checks (no weights loaded)
    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = resolve_source(self.source)
        return self._folder

    @property
    def config(self) -> dict:
        if self._config is None:
            try:
                self._config = json.loads((self.folder / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise InputError(f"cannot read the model config: {e}", file=self.folder / "config.json") from None
        return self._config

    @property
    def identity_info(self) -> dict:
        """What the cache identity hashes: weights, prompt and what decides the outputs."""
        if self._weights is None:
            self._weights = weights_sha256(self.folder)
        info = {"kind": self.kind, "model_type": self.config.get("model_type", ""), "weights_sha256": self._weights,
                "mode": self.mode, "prompt": self.prompt, "precision": self.precision}
        if self.mode == "likelihood":
            info.update(norm=self.norm, calibrate=self.calibrate, answer_prefix=self.answer_prefix)
        else:
            info.update(max_new_tokens=self.max_new_tokens)
        return info

    @property
    def identity(self) -> str:
        return hashlib.sha256(json.dumps(self.identity_info, sort_keys=True).encode()).hexdigest()

    @property
    def _score_identity(self) -> str:
        """Raw (uncalibrated) name scores do not depend on calibration: both settings share them."""
        info = {k: v for k, v in self.identity_info.items() if k != "calibrate"}
        return hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()

    def check(self) -> None:
        """Fail before any work when the folder, its config or its weights are missing."""
        _ = self.identity_info
        mt = self.config.get("model_type")
        if not mt:
            raise InputError("config.json names no model_type", file=self.folder / "config.json", field="model_type")

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "source": self.source, "folder": str(self.folder),
                "device": self.device or self.device_asked, **self.identity_info,
                **({"spec": self.spec.to_dict()} if hasattr(self.spec, "to_dict") else {})}

    @property
    def context_length(self) -> Optional[int]:
        cfg = self.config.get("text_config") or self.config
        for key in ("max_position_embeddings", "max_sequence_length", "seq_length", "n_positions"):
            if isinstance(cfg.get(key), int):
                return cfg[key]
        return None

    # -- loading
    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> "LocalVLM":
        if self._model is not None:
            return self
        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor, LlavaForConditionalGeneration
        except ImportError:
            raise InputError("VLMs need the 'vlm' extra (pip install 'semscale[vlm]')", field="model") from None
        from core.models.openclip import resolve_device

        self.check()
        self.device = resolve_device(self.device_asked)
        dtype = _dtype(self.precision, self.device)
        try:
            processor = AutoProcessor.from_pretrained(self.folder)
            cls = LlavaForConditionalGeneration if self.config.get("model_type") == "llava" else AutoModelForImageTextToText
            model = cls.from_pretrained(self.folder, dtype=dtype)
        except (OSError, ValueError, KeyError) as e:
            raise WeightsUnavailable(f"cannot load the VLM in {self.folder}: {str(e).splitlines()[0]}") from None
        model.eval().to(self.device)
        tok = getattr(processor, "tokenizer", processor)
        tok.padding_side = "left"  # generation appends on the right of every row
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self._processor, self._model, self._torch = processor, model, torch
        return self

    def close(self) -> None:
        self._model = self._processor = None

    @property
    def model(self):
        return self.load()._model

    @property
    def processor(self):
        return self.load()._processor

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    # -- prompts
    def chat_text(self, prompt: str, image: bool = True) -> str:
        """The model's chat template applied to one user turn (image, then text), ready to answer."""
        content = ([{"type": "image"}] if image else []) + [{"type": "text", "text": prompt}]
        try:
            return self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                      add_generation_prompt=True, tokenize=False)
        except Exception as e:  # a processor without a chat template
            raise InputError(f"the model in {self.folder} has no usable chat template ({e})", field="model") from None

    def prompt_tokens(self, prompt: str) -> int:
        """Tokens of ``prompt`` with an image, as the model sees them (image tokens included)."""
        from PIL import Image

        side = 32
        ip = getattr(self.processor, "image_processor", None)
        crop = getattr(ip, "crop_size", None) or getattr(ip, "size", None) or {}
        if isinstance(crop, dict):
            side = int(crop.get("height") or crop.get("shortest_edge") or side)
        inputs = self.processor(images=[Image.new("RGB", (side, side))], text=[self.chat_text(prompt)], return_tensors="pt")
        return int(inputs["input_ids"].shape[1])

    def check_prompt_fits(self, prompt: str, what: str = "the prompt") -> None:
        """InputError with the count when ``prompt`` and the answer would exceed the context."""
        ctx = self.context_length
        if ctx is None:
            return
        n = self.prompt_tokens(prompt)
        if n + self.max_new_tokens > ctx:
            raise InputError(f"{what} takes {n} tokens (+{self.max_new_tokens} for the answer), more than the model's "
                             f"context of {ctx} tokens; use fewer categories or a model with a longer context",
                             field="vlm-mode")

    # -- answers (open / closed)
    def answer_texts(self, dataset, indices: Sequence[int], prompts: Sequence[str], *, cache=None, emit=ignore_events,
                     cancel: Optional[CancelToken] = None, keys: Optional[Sequence[str]] = None) -> list[Optional[str]]:
        """One raw answer per image (``prompts[j]`` is image j's prompt); None for an unusable image."""
        from core.data.images import BadImage

        ident = self.identity
        store, keys, out, todo = cached_answers(cache, ident, dataset, indices, prompts, keys)
        self.n_computed = len(todo)
        total, done, t0 = len(todo), 0, time.perf_counter()
        emit(Progress(Stage.ANSWER, 0, total, None, self.name))
        for s in range(0, len(todo), self.batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled()
            batch, images = [], []
            for j in todo[s : s + self.batch_size]:
                try:
                    images.append(dataset.open(indices[j]))
                    batch.append(j)
                except BadImage as e:
                    self.skipped.append((indices[j], str(e)))
                    emit(Log(f"{self.name}: skipped image {indices[j]}: {e}", "warning"))
            if batch:
                texts = self.generate(images, [prompts[j] for j in batch])
                for j, t in zip(batch, texts):
                    out[j] = t
                if store:
                    store.put_answers(ident, [(keys[j], prompts[j], out[j]) for j in batch])
            done = min(s + self.batch_size, total)
            emit(Progress(Stage.ANSWER, done, total, done / max(time.perf_counter() - t0, 1e-9), self.name))
        return out

    def generate(self, images: list, prompts: Sequence[str]) -> list[str]:
        """Greedy answers to one batch (left-padded), special tokens dropped, whitespace stripped."""
        torch = self.load()._torch
        inputs = self.processor(images=images, text=[self.chat_text(p) for p in prompts], padding=True,
                                return_tensors="pt").to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id)
        new = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    # -- likelihood
    def context_text(self, image: bool = True) -> str:
        """What precedes a name when it is scored: the prompt's chat turn and the answer prefix."""
        text = self.chat_text(self.prompt, image=image)
        if self.answer_prefix:
            text += ("" if text[-1:].isspace() else " ") + self.answer_prefix
        return text

    def name_token_ids(self, name: str) -> list[int]:
        """Token ids of ``name`` as it continues the context (tokenised in context when the
        context's own tokens stay a prefix, else on its own with a leading space)."""
        ids = self._name_ids.get(name)
        if ids is None:
            tok = self.tokenizer
            ctx = self.context_text(image=False)
            sep = "" if ctx[-1:].isspace() else " "
            a = tok(ctx, add_special_tokens=False)["input_ids"]
            b = tok(ctx + sep + name, add_special_tokens=False)["input_ids"]
            ids = b[len(a):] if b[: len(a)] == a and len(b) > len(a) else tok(sep + name, add_special_tokens=False)["input_ids"]
            if not ids:
                raise InputError(f"name '{name}' has no tokens", field="names")
            self._name_ids[name] = ids
        return ids

    def _context(self, image) -> tuple[Any, Any, int]:
        """(key-value cache, log-probs of the next token, context length) of one image's context."""
        torch = self._torch
        if image is None:  # through the processor too, so special tokens are added the same way
            inputs = self.processor(text=[self.context_text(image=False)], return_tensors="pt")
        else:
            inputs = self.processor(images=[image], text=[self.context_text()], return_tensors="pt")
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        out = self.model(**inputs, use_cache=True)
        logp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        return out.cache, logp, int(inputs["input_ids"].shape[1])

    def _cache_bytes(self, past) -> int:
        try:
            return sum(t.numel() * t.element_size() for layer in past.layers for t in (layer.keys, layer.values)
                       if t is not None)
        except AttributeError:
            return 0

    def _expand_cache(self, past, rows: int):
        """A cache holding ``rows`` copies of the context's keys and values (the context's own
        cache is left as it is for the next batch of names)."""
        from transformers import DynamicCache

        try:
            data = [(layer.keys.expand(rows, *layer.keys.shape[1:]), layer.values.expand(rows, *layer.values.shape[1:]))
                    for layer in past.layers]
            return DynamicCache(ddp_cache_data=data, config=self.model.config)
        except (AttributeError, TypeError, ValueError):  # another cache type: copy it whole
            kv = copy.deepcopy(past)
            kv.batch_repeat_interleave(rows)
            return kv

    @property
    def reuses_cache(self) -> bool:
        """Whether names continue the context's key-value cache. Models with multi-axis rotary
        positions (Qwen2-VL and kin: ``mrope``) compute the positions of new tokens from state
        of their own; for them each batch of names is one full forward of context + name."""
        text = self.config.get("text_config") or {}
        rope = {**(self.config.get("rope_scaling") or {}), **(text.get("rope_scaling") or {}),
                **(text.get("rope_parameters") or {})}
        return "mrope_section" not in rope and not str(self.config.get("model_type", "")).startswith(("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "glm4v"))

    def _score_with_context(self, image, names: Sequence[str]) -> np.ndarray:
        """Sum and count of token log-probs of each name after one context (one context forward,
        then the names in batches over a copy of the key-value cache)."""
        torch = self._torch
        with torch.inference_mode():
            if not self.reuses_cache:
                return self._score_full(image, names)
            return self._score_with_context_(image, names)

    def _score_full(self, image, names: Sequence[str]) -> np.ndarray:
        """(sum, count) of each name's token log-probs from full forwards of context + name, a
        batch of names at a time (right padding: every real token keeps its position)."""
        torch = self._torch
        tok = self.tokenizer
        ctx = self.context_text(image is not None)
        sep = "" if ctx[-1:].isspace() else " "
        out = np.zeros((2, len(names)), dtype=np.float64)
        batch = max(1, min(self.name_batch, 16))
        side = tok.padding_side
        tok.padding_side = "right"
        try:
            for s in range(0, len(names), batch):
                chunk = list(names[s : s + batch])
                texts = [ctx + sep + n for n in chunk]
                if image is None:
                    inputs = self.processor(text=texts, padding=True, return_tensors="pt")
                else:
                    inputs = self.processor(images=[image] * len(chunk), text=texts, padding=True, return_tensors="pt")
                inputs = inputs.to(self.device)
                if "pixel_values" in inputs:
                    inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
                logp = torch.log_softmax(self.model(**inputs).logits.float(), dim=-1)
                lengths = inputs["attention_mask"].sum(dim=1).tolist()
                for r, n in enumerate(chunk):
                    k, L = len(self.name_token_ids(n)), int(lengths[r])
                    ids = inputs["input_ids"][r, L - k : L]
                    lp = logp[r, L - k - 1 : L - 1].gather(-1, ids[:, None]).squeeze(-1).double()
                    out[0, s + r], out[1, s + r] = lp.sum().item(), k
        finally:
            tok.padding_side = side
        return out

    def _score_with_context_(self, image, names: Sequence[str]) -> np.ndarray:
        torch = self._torch
        past, first_logp, n_ctx = self._context(image)
        per_row = max(self._cache_bytes(past), 1)
        batch = max(1, min(self.name_batch, CACHE_BYTES_PER_BATCH // per_row))
        sums = np.zeros(len(names), dtype=np.float64)
        counts = np.zeros(len(names), dtype=np.int64)
        ids = [self.name_token_ids(n) for n in names]
        order = sorted(range(len(names)), key=lambda i: len(ids[i]))  # similar lengths pad less
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for s in range(0, len(order), batch):
            rows = order[s : s + batch]
            lens = [len(ids[i]) for i in rows]
            L = max(lens)
            tokens = torch.full((len(rows), L), pad, dtype=torch.long)
            for r, i in enumerate(rows):
                tokens[r, : lens[r]] = torch.tensor(ids[i])
            tokens = tokens.to(self.device)
            lp = first_logp[tokens[:, 0]].double()
            total = lp.clone()
            if L > 1:
                kv = self._expand_cache(past, len(rows))
                mask = torch.zeros((len(rows), n_ctx + L - 1), dtype=torch.long, device=self.device)
                mask[:, :n_ctx] = 1
                for r, n in enumerate(lens):
                    mask[r, n_ctx : n_ctx + n - 1] = 1
                logits = self.model(input_ids=tokens[:, : L - 1], attention_mask=mask, cache=kv, use_cache=True).logits
                logp = torch.log_softmax(logits.float(), dim=-1)  # [B, L-1, V]: position t predicts token t+1
                tok_lp = logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1).double()
                valid = torch.arange(1, L, device=self.device)[None, :] < torch.tensor(lens, device=self.device)[:, None]
                total = total + (tok_lp * valid).sum(dim=1)
            sums[rows] = total.cpu().numpy()
            counts[rows] = lens
        return np.stack([sums, counts])

    def _normed(self, sc: np.ndarray) -> np.ndarray:
        return sc[0] / sc[1] if self.norm == "mean" else sc[0]

    def score_matrix(self, dataset, indices: Sequence[int], names: Sequence[str], *, cache=None, emit=ignore_events,
                     cancel: Optional[CancelToken] = None, keys: Optional[Sequence[str]] = None) -> np.ndarray:
        """[images, names] float32 scores (higher = better; NaN for an unusable image): mean (or
        sum) token log-prob of each name as the answer, minus the prompt-only prior when calibrated."""
        from core.data.images import BadImage

        if self.mode != "likelihood":
            raise ValueError("score_names needs the likelihood mode")
        store = AnswerCache.of(cache)
        keys = list(keys) if keys is not None else [dataset.content_hash(i) for i in indices]
        names = list(names)
        ident, prompt = self._score_identity, self.prompt
        out = np.full((len(indices), len(names)), np.nan, dtype=np.float32)
        col = {n: c for c, n in enumerate(names)}
        torch = self.load()._torch
        prior = None
        if self.calibrate:
            prior = self._cached_scores(store, ident, NO_IMAGE, prompt, names, lambda todo: self._score_with_context(None, todo))
        total, t0 = len(indices), time.perf_counter()
        self.n_computed = 0
        emit(Progress(Stage.SCORE_NAMES, 0, total, None, self.name))
        with torch.inference_mode():
            for j, i in enumerate(indices):
                if cancel is not None:
                    cancel.raise_if_cancelled()

                def compute(todo, i=i):
                    self.n_computed += 1
                    return self._score_with_context(dataset.open(i), todo)

                try:
                    got = self._cached_scores(store, ident, keys[j], prompt, names, compute)
                except BadImage as e:
                    self.skipped.append((i, str(e)))
                    emit(Log(f"{self.name}: skipped image {i}: {e}", "warning"))
                    continue
                row = np.array([got[n] for n in names], dtype=np.float64)
                if prior is not None:
                    row = row - np.array([prior[n] for n in names])
                out[j] = row
                emit(Progress(Stage.SCORE_NAMES, j + 1, total, (j + 1) / max(time.perf_counter() - t0, 1e-9), self.name))
        del col
        return out

    def _cached_scores(self, store: Optional[AnswerCache], ident: str, image: str, prompt: str, names: list[str],
                       compute: Callable[[list[str]], np.ndarray]) -> dict[str, float]:
        """Normed scores of ``names``: the cached ones, the rest computed (only those) and stored."""
        torch = self._torch
        got = store.get_scores(ident, image, prompt, names) if store else {}
        todo = [n for n in dict.fromkeys(names) if n not in got]
        if todo:
            with torch.inference_mode():
                new = self._normed(compute(todo))
            got.update(zip(todo, new.tolist()))
            if store:
                store.put_scores(ident, image, prompt, zip(todo, new.tolist()))
        return got


def default_name(source: str, mode: str) -> str:
    """``vlm:<folder name or Hub id>``, with the mode unless it is ``open``."""
    p = Path(source)
    shown = p.name if (p.is_absolute() or source.startswith((".", "~")) or p.is_dir()) and p.name else source
    return f"vlm:{shown}" + ("" if mode == "open" else f"[{mode}]")


class VLMAnswers(LocalVLM, AnsweringModel):
    """A local VLM in the open or closed mode: one answer text per image."""

    output = ANSWERS

    def answer(self, dataset, indices: Sequence[int], prompts: Sequence[str], *, cache=None, emit=ignore_events,
               cancel: Optional[CancelToken] = None, keys: Optional[Sequence[str]] = None) -> ImageAnswers:
        skipped_before = len(self.skipped)
        texts = self.answer_texts(dataset, indices, prompts, cache=cache, emit=emit, cancel=cancel, keys=keys)
        keep = [j for j, t in enumerate(texts) if t is not None]
        return ImageAnswers(np.asarray([indices[j] for j in keep], dtype=np.int64), [texts[j] for j in keep],
                            self.skipped[skipped_before:], self.n_computed)


class VLMScores(LocalVLM, ScoringModel):
    """A local VLM in the likelihood mode: a score per (image, name)."""

    output = SCORES

    def score_names(self, dataset, indices: Sequence[int], names: Sequence[str], *, cache=None, emit=ignore_events,
                    cancel: Optional[CancelToken] = None, keys: Optional[Sequence[str]] = None) -> ImageScores:
        skipped_before = len(self.skipped)
        m = self.score_matrix(dataset, indices, names, cache=cache, emit=emit, cancel=cancel, keys=keys)
        ok = ~np.isnan(m).any(axis=1) if m.size else np.ones(len(indices), dtype=bool)
        return ImageScores(np.asarray(indices, dtype=np.int64)[ok], m[ok], self.skipped[skipped_before:], self.n_computed)


OPTIONS = ("mode", "prompt", "max_new_tokens", "norm", "calibrate", "answer_prefix", "batch_size", "name_batch")


DEMO_VLM = "demo-vlm"


def from_spec(spec, *, lazy: bool = True) -> LocalVLM:
    """The kind a ``vlm:PATH_OR_HF_ID`` spec names (its options in ``spec.options``)."""
    source = spec.model.split(":", 1)[1].strip() if spec.model.startswith("vlm:") else spec.model
    if source == DEMO_VLM:  # the bundled LLaVA (resources/models/demo-vlm)
        import resources

        source = str(resources.ROOT / "models" / DEMO_VLM)
    if not source:
        raise InputError(f"no model folder or Hub id in '{spec.model}' (vlm:PATH_OR_HF_ID)", field="model")
    opts = {k: v for k, v in (spec.options or {}).items() if k in OPTIONS and v is not None}
    cls = VLMScores if opts.get("mode", "open") == "likelihood" else VLMAnswers
    kind = cls(source, device=spec.device, precision=spec.precision, label=spec.label, spec=spec, **opts)
    if not lazy:
        kind.load()
    return kind
