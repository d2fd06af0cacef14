"""Train and evaluate ``demo-vlm``, the tiny LLaVA-architecture model shipped in ``resources/models``.

    python -m core.demo.train_vlm --out resources/models/demo-vlm --seed 3
    python -m core.demo.train_vlm --report          # evaluate the shipped model

The model is an ordinary ``transformers`` ``LlavaForConditionalGeneration``: a CLIP vision
tower (demo-vit's image encoder, copied weight for weight and kept frozen), a two-layer
projector and a small Llama language model, with a byte-level BPE tokenizer trained here
with ``tokenizers``, a LLaVA-1.5-style chat template, a ``CLIPImageProcessor`` and a
``LlavaProcessor``. It learns from instruction examples rendered by ``core.demo.data``
(``vlm_examples``): the published prompt "What type of object is in this photo?" answered
with a class name or a synonym, plus caption requests. The ten classes occur at designed
frequencies falling geometrically (217-fold from the first to the last), so the
model's per-class accuracy follows its training frequency - by construction, as in the
finding it demonstrates - while demo-vit, the same encoder with a contrastive head,
does not show that link. The loss covers only the answer tokens. Every step, image and
initial weight follows from ``--seed`` and ``--steps``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from . import data  # noqa: E402

from .tiny_vlm import CHAT_TEMPLATE, IMAGE_TOKEN, SPECIAL_TOKENS  # noqa: E402  (one template for every demo LLaVA)

EVAL_SET = "demo seed 0, 30 images per class"


@dataclass
class VlmConfig:
    """Architecture and training recipe; the defaults are the shipped model's."""

    seed: int = 3
    steps: int = 2000
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 50
    weight_decay: float = 0.05
    hidden: int = 96
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 256
    vocab_size: int = 640
    threads: int = 2
    log_every: int = 25
    eval_every: int = 250
    vision_init: str = "demo-vit"  # or "random" (tests: no bundled weights needed)
    # The class frequencies' geometric ratio; the shipped model uses data.VLM_FREQUENCY_RATIO,
    # which is what vlm_training_frequency.csv describes.
    frequency_ratio: float = field(default_factory=lambda: data.VLM_FREQUENCY_RATIO)


# ----------------------------------------------------------------------------- building

def _tokenizer_corpus(seed: int, n: int = 4000) -> list[str]:
    """Texts the tokenizer learns merges from: instructions, answers, every name, chat words."""
    import itertools

    texts = [data.VLM_PROMPT, *data.VLM_CAPTION_PROMPTS, "USER: ASSISTANT:",
             'Choose one from "a, b, c"', *data.COLOURS, *data.GENERIC_NOUNS, "small large background photo"]
    for spec in data.DEMO_CLASS_SPECS:
        texts += [" ".join(spec.names)] * 20 + [" ".join(n for n, _ in spec.borrowed)] * 5
    rng = np.random.default_rng([seed, 77])
    for c in data.DEMO_CLASSES:  # captions of every class, not only the frequent ones
        r = data.render_image(c, "A", rng, 16)
        texts += [data.make_caption(c, r, rng) for _ in range(50)]
    texts += [f"{e.prompt} {e.answer}" for e in itertools.islice(data.vlm_examples(seed + 1000, 16), n // 4)]
    return texts


def build_tokenizer(vocab_size: int, seed: int = 0):
    """A byte-level BPE tokenizer trained in-process (any text encodes; ``<image>`` is one token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_tokenizer_corpus(seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", extra_special_tokens={"image_token": IMAGE_TOKEN})
    fast.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    fast.chat_template = CHAT_TEMPLATE
    return fast


def vision_state_from_open_clip(visual: torch.nn.Module) -> dict[str, torch.Tensor]:
    """An open_clip ``VisionTransformer``'s weights under ``CLIPVisionModel``'s names.

    Both are pre-norm ViTs with a class token, exact GELU and LayerNorm(eps 1e-5); open_clip
    packs q, k and v in one matrix. demo-vit's fixed sin-cos positions become the learned
    position table (frozen anyway). ``ln_post``/``proj`` are dropped: LLaVA reads the last
    layer's patch tokens.
    """
    sd = {k: v.detach().float() for k, v in visual.state_dict().items()}
    out = {
        "vision_model.embeddings.class_embedding": sd["class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": sd["conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": sd["positional_embedding"],
        "vision_model.pre_layrnorm.weight": sd["ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": sd["ln_pre.bias"],
        "vision_model.post_layernorm.weight": sd["ln_post.weight"],
        "vision_model.post_layernorm.bias": sd["ln_post.bias"],
    }
    i = 0
    while f"transformer.resblocks.{i}.ln_1.weight" in sd:
        src, dst = f"transformer.resblocks.{i}.", f"vision_model.encoder.layers.{i}."
        q, k, v = sd[src + "attn.in_proj_weight"].chunk(3)
        qb, kb, vb = sd[src + "attn.in_proj_bias"].chunk(3)
        out.update({
            dst + "self_attn.q_proj.weight": q, dst + "self_attn.q_proj.bias": qb,
            dst + "self_attn.k_proj.weight": k, dst + "self_attn.k_proj.bias": kb,
            dst + "self_attn.v_proj.weight": v, dst + "self_attn.v_proj.bias": vb,
            dst + "self_attn.out_proj.weight": sd[src + "attn.out_proj.weight"],
            dst + "self_attn.out_proj.bias": sd[src + "attn.out_proj.bias"],
            dst + "layer_norm1.weight": sd[src + "ln_1.weight"], dst + "layer_norm1.bias": sd[src + "ln_1.bias"],
            dst + "layer_norm2.weight": sd[src + "ln_2.weight"], dst + "layer_norm2.bias": sd[src + "ln_2.bias"],
            dst + "mlp.fc1.weight": sd[src + "mlp.c_fc.weight"], dst + "mlp.fc1.bias": sd[src + "mlp.c_fc.bias"],
            dst + "mlp.fc2.weight": sd[src + "mlp.c_proj.weight"], dst + "mlp.fc2.bias": sd[src + "mlp.c_proj.bias"],
        })
        i += 1
    return out


def _demo_vit_visual() -> torch.nn.Module:
    """The shipped demo-vit image encoder (hash-checked)."""
    from resources import path

    from .train import load_demo_model

    model, _, _ = load_demo_model("demo-vit", Path(path("models")))
    return model.visual


def build_model(cfg: VlmConfig):
    """(model, processor): a fresh LLaVA whose vision tower is demo-vit's encoder (or random)."""
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    torch.manual_seed(cfg.seed)
    tokenizer = build_tokenizer(cfg.vocab_size, cfg.seed)
    vision = CLIPVisionConfig(hidden_size=96, intermediate_size=384, num_hidden_layers=3, num_attention_heads=3,
                              image_size=32, patch_size=4, projection_dim=128, hidden_act="gelu",
                              layer_norm_eps=1e-5)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=cfg.hidden, intermediate_size=cfg.intermediate,
                       num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
                       num_key_value_heads=cfg.kv_heads, max_position_embeddings=256, tie_word_embeddings=True,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                         vision_feature_layer=-1, vision_feature_select_strategy="default",
                         projector_hidden_act="gelu", tie_word_embeddings=True)
    config.pad_token_id = tokenizer.pad_token_id
    model = LlavaForConditionalGeneration(config)
    if cfg.vision_init == "demo-vit":
        tower = model.model.vision_tower
        state = vision_state_from_open_clip(_demo_vit_visual())
        if not any(k.startswith("vision_model.") for k in tower.state_dict()):
            state = {k.removeprefix("vision_model."): v for k, v in state.items()}
        missing, unexpected = tower.load_state_dict(state, strict=False)
        if unexpected or [m for m in missing if "position_ids" not in m]:
            raise RuntimeError(f"vision tower mismatch: missing {missing}, unexpected {unexpected}")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.do_sample = False
    model.generation_config.max_new_tokens = 64
    # Resize/crop/normalise exactly like demo-vit's open_clip preprocess (bicubic, OpenAI mean/std).
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                         resample=3)
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=4,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=CHAT_TEMPLATE)
    return model, processor


def prompt_text(processor, prompt: str) -> str:
    """The chat-formatted user turn with one image, ending with the generation prompt."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


# ----------------------------------------------------------------------------- training

class Batcher:
    """Token and pixel tensors for instruction examples; the loss covers the answer only.

    Every image shares one chat layout, so the expanded prompt ids are computed once per
    distinct request; an answer is " " + text + eos, exactly how the chat template writes an
    assistant turn after "ASSISTANT:".
    """

    def __init__(self, processor) -> None:
        self.processor = processor
        self.tok = processor.tokenizer
        self._prompts: dict[str, list[int]] = {}

    def prompt_ids(self, prompt: str) -> list[int]:
        if prompt not in self._prompts:
            dummy = np.zeros((32, 32, 3), dtype=np.uint8)
            enc = self.processor(images=[dummy], text=[prompt_text(self.processor, prompt)])
            self._prompts[prompt] = list(enc["input_ids"][0])
        return self._prompts[prompt]

    def answer_ids(self, answer: str) -> list[int]:
        return self.tok(" " + answer, add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id]

    def pixels(self, images: Sequence) -> torch.Tensor:
        return self.processor.image_processor(images=list(images), return_tensors="pt")["pixel_values"]

    def __call__(self, examples: Sequence[data.VlmExample]) -> dict[str, torch.Tensor]:
        seqs, labels = [], []
        for e in examples:
            p, a = self.prompt_ids(e.prompt), self.answer_ids(e.answer)
            seqs.append(p + a)
            labels.append([-100] * len(p) + a)
        n = max(len(s) for s in seqs)
        pad = self.tok.pad_token_id
        ids = torch.full((len(seqs), n), pad, dtype=torch.long)
        lab = torch.full((len(seqs), n), -100, dtype=torch.long)
        mask = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, (s, l) in enumerate(zip(seqs, labels)):
            ids[i, :len(s)] = torch.tensor(s)
            lab[i, :len(l)] = torch.tensor(l)
            mask[i, :len(s)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": lab,
                "pixel_values": self.pixels([e.rendered.image for e in examples])}


def _trainable(model) -> list[tuple[str, torch.nn.Parameter]]:
    """Everything but the vision tower, which stays demo-vit's encoder."""
    for p in model.model.vision_tower.parameters():
        p.requires_grad_(False)
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def train(cfg: VlmConfig, out: Optional[Path] = None, log: Callable[[str], None] = print,
          evaluate_after: bool = True) -> dict:
    """Train from ``cfg`` (deterministic for a seed and thread count); save to ``out`` if given.

    Returns the summary written to ``semscale.json``: the recipe, minutes, steps, final
    loss and (with ``evaluate_after``) the held-out figures measured on the saved files.
    """
    torch.set_num_threads(cfg.threads)
    model, processor = build_model(cfg)
    named = _trainable(model)
    decay = [p for n, p in named if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in named if not (p.ndim >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98))
    batcher = Batcher(processor)
    stream = data.vlm_examples(cfg.seed, ratio=cfg.frequency_ratio)
    val = None
    t0 = time.time()
    losses: list[float] = []
    model.train()
    for step in range(cfg.steps):
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        batch = batcher([next(stream) for _ in range(cfg.batch_size)])
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % cfg.log_every == 0:
            log(f"[demo-vlm] step {step + 1}/{cfg.steps} loss {np.mean(losses[-cfg.log_every:]):.3f} "
                f"lr {lr:.2e} {time.time() - t0:.0f}s")
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            if val is None:
                val = eval_set(seed=10_000 + cfg.seed, n_per_class=3)
            model.eval()
            r = evaluate(model, processor, *val[:2])
            model.train()
            log(f"[demo-vlm] step {step + 1} val open {r['open_top1']:.3f} likelihood {r['likelihood_top1']:.3f} "
                f"per-class open " + " ".join(f"{c}={a:.1f}" for c, a in r["per_class_open"].items()))
    minutes = (time.time() - t0) / 60
    model.eval()
    summary = {"recipe": asdict(cfg), "minutes": round(minutes, 1), "steps": cfg.steps,
               "examples": cfg.steps * cfg.batch_size,
               "final_loss": round(float(np.mean(losses[-min(len(losses), 50):])), 4) if losses else None,
               "parameters": sum(p.numel() for p in model.parameters())}
    if out is not None:
        out = Path(out)
        save(model, processor, out)
        summary["files_bytes"] = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
        if evaluate_after:
            summary["eval"] = report(out, log=log)
        (out / "semscale.json").write_text(json.dumps(summary, indent=2) + "\n")
        if evaluate_after:
            write_card(out, summary)
    return summary


def save(model, processor, out: Path) -> None:
    """``save_pretrained`` of model (safetensors), processor, tokenizer and chat template."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    processor.tokenizer.save_pretrained(out)


# ----------------------------------------------------------------------------- evaluation

def eval_set(seed: int = 0, n_per_class: int = 30) -> tuple[list, np.ndarray, list[str]]:
    """Held-out demo images (as ``semscale demo-data`` writes them), class indices and variants."""
    images, true, variants = [], [], []
    for item, img in data.iter_demo_images(seed, n_per_class):
        images.append(img)
        true.append(data.DEMO_CLASSES.index(item.cls))
        variants.append(item.variant)
    return images, np.asarray(true), variants


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def match_credit(answer: str, names_per_class: Sequence[Sequence[str]], true: int) -> float:
    """Whole-word match of an answer against each class's names (lower-cased): 1 when only the
    true class matches, 1/m when m classes including the true one do, else 0."""
    a = f" {_normalise(answer)} "
    matched = {ci for ci, names in enumerate(names_per_class)
               if any(f" {_normalise(n)} " in a for n in names if _normalise(n))}
    return 1.0 / len(matched) if true in matched else 0.0


@torch.no_grad()
def generate_answers(model, processor, images: Sequence, prompt: str = data.VLM_PROMPT,
                     batch_size: int = 50, max_new_tokens: int = 64) -> list[str]:
    """Greedy answers to ``prompt`` (all prompts have one layout, so no padding is needed)."""
    text = prompt_text(processor, prompt)
    out: list[str] = []
    for i in range(0, len(images), batch_size):
        chunk = list(images[i:i + batch_size])
        enc = processor(images=chunk, text=[text] * len(chunk), return_tensors="pt")
        gen = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens)
        out += processor.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [a.strip() for a in out]


@torch.no_grad()
def name_logprobs(model, processor, images: Sequence, names: Sequence[str], prompt: str = data.VLM_PROMPT,
                  batch_size: int = 20) -> np.ndarray:
    """Mean token log-probability of each name as the answer (images x names).

    The answer is scored as the chat template writes it: " " + name after "ASSISTANT:".
    """
    batcher = Batcher(processor)
    p = batcher.prompt_ids(prompt)
    name_ids = [batcher.answer_ids(n)[:-1] for n in names]  # without the end-of-turn token
    n_max = max(len(t) for t in name_ids)
    L = len(p) + n_max
    ids = torch.full((len(names), L), processor.tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(names), L), dtype=torch.long)
    for j, t in enumerate(name_ids):
        ids[j, :len(p) + len(t)] = torch.tensor(p + t)
        mask[j, :len(p) + len(t)] = 1
    scores = np.zeros((len(images), len(names)))
    for i in range(0, len(images), batch_size):
        chunk = list(images[i:i + batch_size])
        pix = batcher.pixels(chunk)
        n_img = len(chunk)
        logits = model(input_ids=ids.repeat(n_img, 1), attention_mask=mask.repeat(n_img, 1),
                       pixel_values=pix.repeat_interleave(len(names), dim=0)).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        for j, t in enumerate(name_ids):
            pos = torch.arange(len(p) - 1, len(p) - 1 + len(t))
            tok = torch.tensor(t)
            rows = logp[j::len(names)][:, pos, :]  # images of this chunk, name j
            scores[i:i + n_img, j] = rows.gather(2, tok.expand(n_img, -1)[..., None])[..., 0].mean(dim=1).numpy()
    return scores


def evaluate(model, processor, images: Sequence, true: np.ndarray) -> dict:
    """Open-world (greedy answer, whole-word match) and likelihood top-1 at level 1, per class."""
    labels = data.demo_labels()
    classes = list(labels)
    answers = generate_answers(model, processor, images)
    first = [[labels[c][0]] for c in classes]
    every = [labels[c] for c in classes]
    open1 = np.asarray([match_credit(a, first, int(t)) for a, t in zip(answers, true)])
    open_any = np.asarray([match_credit(a, every, int(t)) for a, t in zip(answers, true)])
    ll = name_logprobs(model, processor, images, [labels[c][0] for c in classes])
    ll_pred = ll.argmax(axis=1)
    per_class_open = {c: float(open1[true == i].mean()) for i, c in enumerate(classes)}
    per_class_ll = {c: float((ll_pred[true == i] == i).mean()) for i, c in enumerate(classes)}
    return {"open_top1": float(open1.mean()), "open_any_name_top1": float(open_any.mean()),
            "likelihood_top1": float((ll_pred == true).mean()),
            "per_class_open": per_class_open, "per_class_likelihood": per_class_ll, "answers": answers}


def frequency_link(per_class: dict[str, float]) -> float:
    """Spearman correlation of per-class accuracy with the designed training frequency."""
    from scipy.stats import spearmanr

    freqs = data.vlm_training_frequencies()
    rho = spearmanr([per_class[c] for c in data.DEMO_CLASSES], [freqs[c] for c in data.DEMO_CLASSES])[0]
    return float(rho)


def demo_vit_per_class(images: Sequence, true: np.ndarray) -> dict[str, float]:
    """demo-vit's per-class flat zero-shot accuracy at level 1 on the same images."""
    from resources import path

    from .train import evaluate as clip_evaluate, load_demo_model

    model, preprocess, tokenizer = load_demo_model("demo-vit", Path(path("models")))
    r = clip_evaluate(model, preprocess, tokenizer, images, true, levels=(1,))
    return {c: float((r.predicted[1][true == i] == i).mean()) for i, c in enumerate(data.DEMO_CLASSES)}


def load(folder: Path):
    """(model, processor) from a saved folder through ``transformers`` alone."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoProcessor.from_pretrained(folder)


def report(folder: Path, seed: int = 0, n_per_class: int = 30, log: Callable[[str], None] = print,
           with_demo_vit: bool = True) -> dict:
    """Figures of a saved demo-vlm on the demo set: open/likelihood top-1, per class, and the
    Spearman link of per-class accuracy with the designed frequency (demo-vit's beside it)."""
    model, processor = load(Path(folder))
    images, true, variants = eval_set(seed, n_per_class)
    r = evaluate(model, processor, images, true)
    answers = r.pop("answers")
    r["spearman_open_vs_frequency"] = frequency_link(r["per_class_open"])
    r["spearman_likelihood_vs_frequency"] = frequency_link(r["per_class_likelihood"])
    r["eval_set"] = f"demo seed {seed}, {n_per_class} images per class"
    r["answer_counts"] = dict(sorted(((a, answers.count(a)) for a in set(answers)), key=lambda x: -x[1])[:25])
    log(f"[demo-vlm] {r['eval_set']}: open top-1 {r['open_top1']:.3f} (any name {r['open_any_name_top1']:.3f}), "
        f"likelihood top-1 {r['likelihood_top1']:.3f}, Spearman(open per class, frequency) "
        f"{r['spearman_open_vs_frequency']:+.2f}")
    log("   per class open: " + " ".join(f"{c}={a:.2f}" for c, a in r["per_class_open"].items()))
    log("   per class likelihood: " + " ".join(f"{c}={a:.2f}" for c, a in r["per_class_likelihood"].items()))
    if with_demo_vit:
        vit = demo_vit_per_class(images, true)
        r["demo_vit"] = {"top1": float(np.mean([vit[data.DEMO_CLASSES[t]] for t in true])),
                         "per_class": vit, "spearman_vs_frequency": frequency_link(vit)}
        log(f"   demo-vit: top-1 {r['demo_vit']['top1']:.3f}, Spearman(per class, frequency) "
            f"{r['demo_vit']['spearman_vs_frequency']:+.2f}; per class "
            + " ".join(f"{c}={a:.2f}" for c, a in vit.items()))
    return r


# ----------------------------------------------------------------------------- model card

_CARD = """\
---
library_name: transformers
pipeline_tag: image-text-to-text
tags: [llava, demo, synthetic]
---

# demo-vlm

A tiny vision-language model bundled with semscale so that its CLIP-vs-VLM and class-frequency
views work offline. **Trained on random synthetic data (rendered shapes), for demos only**: it
knows ten classes of drawn objects and nothing else.

- Architecture: `LlavaForConditionalGeneration` ({params:,} parameters, fp32 safetensors). Vision
  tower: demo-vit's image encoder (CLIP ViT, 32 px input, patch 4, 3 layers, width 96),
  copied weight for weight and kept frozen; LLaVA reads its last layer's 64 patch tokens. A
  two-layer GELU projector and a Llama language model (hidden {hidden}, {layers} layers, {heads}
  heads, {kv_heads} key-value heads, MLP {intermediate}, tied embeddings). Tokenizer: byte-level
  BPE ({vocab} tokens incl. `<image>`) trained with `tokenizers`. LLaVA-1.5-style chat
  template (`USER: <image>\\nPROMPT ASSISTANT:`), `CLIPImageProcessor` (32 px, bicubic,
  OpenAI mean/std).
- Loads like any Hugging Face VLM: `AutoProcessor.from_pretrained(path)`,
  `LlavaForConditionalGeneration.from_pretrained(path)`, `transformers serve`, or
  `semscale --model vlm:PATH`.

## Training

`python -m core.demo.train_vlm --seed {seed} --steps {steps}` ({minutes} minutes on 2 shared
CPU cores; {examples:,} examples). Instruction examples are rendered by `core.demo.data`
(`vlm_examples`, a seed stream disjoint from the demo set): {p_ask:.0%} ask the published prompt
"{prompt}" and are answered with one of the class's names (mostly the canonical one; synonyms
for the rest), {p_cap:.0%} ask for a caption ("{cap}") and are answered with a caption.
Loss on the answer tokens only; AdamW, lr {lr}, batch {batch}, {warmup} warm-up steps, cosine
decay. The classes occur at **designed frequencies**, a geometric series with ratio
{ratio} ({span:.0f}-fold from first to last; `semscale demo-data` writes them as
`vlm_training_frequency.csv`):

| class | examples per {corpus:,} | open-world top-1 | likelihood top-1 | demo-vit top-1 |
|---|---|---|---|---|
{rows}

## Measured figures

On the demo set ({eval_set}), prompt "{prompt}", greedy decoding, level 1:

- open world (the answer contains the class's first name as a whole word, lower-cased):
  **{open:.1%}**; with any of the class's 8 names accepted: {open_any:.1%};
- likelihood (argmax over classes of the mean token log-probability of the first name as
  the answer): **{ll:.1%}**;
- Spearman correlation of per-class open-world accuracy with the designed training
  frequency: **{rho:+.2f}** (likelihood: {rho_ll:+.2f}); demo-vit, the same image encoder with
  a contrastive text head trained on captions where classes differ 16-fold: {rho_vit:+.2f}.

The frequency effect is built in by design; it illustrates the finding of Zhang et al. (2024)
that a VLM's per-class accuracy follows the class's frequency in its training data.
"""


def write_card(folder: Path, summary: dict) -> Path:
    """The model card (README.md) from the recorded recipe and measured figures."""
    cfg, ev = summary["recipe"], summary["eval"]
    freqs = data.vlm_training_frequencies()
    vit = ev.get("demo_vit", {}).get("per_class", {})
    rows = "\n".join(f"| {c} | {freqs[c]:,} | {ev['per_class_open'][c]:.0%} | {ev['per_class_likelihood'][c]:.0%} | "
                     + (f"{vit[c]:.0%} |" if c in vit else "- |") for c in data.DEMO_CLASSES)
    from transformers import AutoTokenizer

    text = _CARD.format(
        params=summary["parameters"], vocab=len(AutoTokenizer.from_pretrained(folder)), seed=cfg["seed"],
        steps=cfg["steps"], minutes=summary["minutes"], examples=summary["examples"], lr=cfg["lr"],
        batch=cfg["batch_size"], warmup=cfg["warmup"], ratio=cfg["frequency_ratio"],
        span=1 / cfg["frequency_ratio"] ** (len(data.DEMO_CLASSES) - 1), corpus=data.VLM_CORPUS, rows=rows,
        hidden=cfg["hidden"], layers=cfg["layers"], heads=cfg["heads"], kv_heads=cfg["kv_heads"],
        intermediate=cfg["intermediate"], p_ask=1 - data.VLM_P_CAPTION, p_cap=data.VLM_P_CAPTION,
        prompt=data.VLM_PROMPT, cap=data.VLM_CAPTION_PROMPTS[0], eval_set=ev["eval_set"], open=ev["open_top1"],
        open_any=ev["open_any_name_top1"], ll=ev["likelihood_top1"], rho=ev["spearman_open_vs_frequency"],
        rho_ll=ev["spearman_likelihood_vs_frequency"],
        rho_vit=ev.get("demo_vit", {}).get("spearman_vs_frequency", float("nan")))
    path = Path(folder) / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.demo.train_vlm", description=__doc__.split("\n\n")[0])
    d = VlmConfig()
    ap.add_argument("--out", type=Path, default=None, help="model folder (default: the bundled demo-vlm)")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--steps", type=int, default=d.steps)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--hidden", type=int, default=d.hidden)
    ap.add_argument("--layers", type=int, default=d.layers)
    ap.add_argument("--intermediate", type=int, default=d.intermediate)
    ap.add_argument("--threads", type=int, default=d.threads)
    ap.add_argument("--eval-every", type=int, default=d.eval_every)
    ap.add_argument("--vision-init", choices=("demo-vit", "random"), default=d.vision_init)
    ap.add_argument("--frequency-ratio", type=float, default=d.frequency_ratio,
                    help="geometric ratio of class frequencies (vlm_training_frequency.csv describes the default)")
    ap.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation after training")
    ap.add_argument("--report", action="store_true", help="evaluate the model in --out")
    ap.add_argument("--write", action="store_true",
                    help="report: record the figures in --out's semscale.json and model card")
    ap.add_argument("--n-per-class", type=int, default=30, help="report: images per class")
    args = ap.parse_args(argv)
    out = args.out
    if out is None:
        from resources import path

        out = Path(path("models")) / "demo-vlm"
    log = lambda m: print(m, flush=True)  # noqa: E731
    torch.set_num_threads(args.threads)
    if args.report:
        r = report(out, n_per_class=args.n_per_class, log=log)
        if args.write:
            summary = json.loads((out / "semscale.json").read_text())
            summary["eval"] = r
            (out / "semscale.json").write_text(json.dumps(summary, indent=2) + "\n")
            write_card(out, summary)
        return 0
    cfg = VlmConfig(seed=args.seed, steps=args.steps, batch_size=args.batch_size, lr=args.lr, hidden=args.hidden,
                    layers=args.layers, intermediate=args.intermediate, threads=args.threads,
                    eval_every=args.eval_every, vision_init=args.vision_init, frequency_ratio=args.frequency_ratio)
    train(cfg, out, log=log, evaluate_after=not args.no_eval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
