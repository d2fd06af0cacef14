"""Train and evaluate the tiny demo CLIP backbones shipped in ``resources/models``.

    python -m core.demo.train --arch vit --minutes 11 --seed 1 --out resources/models
    python -m core.demo.train --report            # flat levels, oracle, frequency link

Training is CLIP's symmetric InfoNCE with a learnable logit scale on an endless stream of
freshly rendered (image, caption) pairs from ``core.demo.data`` (its training seed stream
never produces a held-out image). Identical captions inside a batch are treated as
positives of each other, otherwise a batch with two "a photo of a house." captions would
teach the model to tell two houses apart by their caption. Runs on CPU in minutes: the
cosine schedule follows wall-clock time (``--steps N`` makes it follow steps instead, for an
exact replay), and the accuracies written to ``index.json`` are measured on the fp16
weights as shipped, not on the fp32 model in memory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

# Spinning OpenMP workers make a 2-thread run crawl when another process shares the
# cores; passive waiting costs little when the machine is idle. Only effective when this
# module is the first to import torch (the CLI case).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import open_clip  # noqa: E402

from core.util.config import file_sha256_uncached  # noqa: E402

from core.demo import data  # noqa: E402

ZERO_SHOT_TEMPLATES: tuple[str, ...] = ("a photo of a {}.",)
LEVELS: tuple[int, ...] = (1, 2, 4, 8)

# Defaults per architecture: different seeds and augmentations make the two towers err
# on different images, which is what the ensemble features of the app need to show.
ARCH_DEFAULTS: dict[str, dict] = {
    "vit": {"seed": 1, "lr": 2e-3, "augment": "shift", "minutes": 19.0},
    "resnet": {"seed": 2, "lr": 2e-3, "augment": "shift", "minutes": 12.0},
}
DESCRIPTIONS = {
    "vit": "Tiny ViT CLIP (32 px input, patch 4, 3 layers, width 96, fixed 2-D sin-cos positions, "
           "average pooling) trained from scratch on the semscale demo renderer; for the offline demo only",
    "resnet": "Tiny ModifiedResNet CLIP (32 px input, [1,1,1,1] blocks, width 16) trained from scratch "
              "on the semscale demo renderer; for the offline demo only",
}


def configs_dir() -> Path:
    """Directory of the demo open_clip configs (bundled resources)."""
    from resources import path

    return path("models/configs")


def build_model(name: str, config_dir: Optional[Path] = None) -> tuple[torch.nn.Module, object, object]:
    """Create an fp32 demo model, its eval preprocess and tokenizer from the bundled config."""
    open_clip.add_model_config(config_dir or configs_dir())
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
    tokenizer = open_clip.get_tokenizer(name)
    return model, preprocess, tokenizer


# ----------------------------------------------------------------------------- evaluation

@dataclass
class LevelResult:
    """Flat zero-shot accuracy at each level plus per-image predicted classes."""

    accuracy: dict[int, float]
    predicted: dict[int, np.ndarray]  # level -> predicted class index per image
    true: np.ndarray


@torch.no_grad()
def encode_images(model: torch.nn.Module, preprocess, images: Sequence, batch_size: int = 100) -> torch.Tensor:
    """L2-normalised image embeddings, preprocessing exactly as the engine does."""
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.stack([preprocess(im) for im in images[i:i + batch_size]])
        out.append(model.encode_image(x, normalize=True))
    return torch.cat(out)


@torch.no_grad()
def name_embeddings(model: torch.nn.Module, tokenizer, names: Sequence[str],
                    templates: Sequence[str] = ZERO_SHOT_TEMPLATES) -> dict[str, torch.Tensor]:
    """Category embedding per name: normalised mean over templates of normalised embeddings."""
    model.eval()
    unique = list(dict.fromkeys(names))
    texts = [t.format(n) for n in unique for t in templates]
    emb = model.encode_text(tokenizer(texts), normalize=True)
    emb = emb.reshape(len(unique), len(templates), -1).mean(dim=1)
    emb = F.normalize(emb, dim=-1)
    return {n: emb[i] for i, n in enumerate(unique)}


def flat_levels(image_emb: torch.Tensor, true: np.ndarray, labels: dict[str, list[str]],
                name_emb: dict[str, torch.Tensor], levels: Iterable[int] = LEVELS) -> LevelResult:
    """Flat sweep: every name of the first k per class is its own category; an image is
    right when its best category belongs to its class (ties go to the first category)."""
    classes = list(labels)
    acc: dict[int, float] = {}
    pred: dict[int, np.ndarray] = {}
    for k in levels:
        owners, vecs = [], []
        for ci, c in enumerate(classes):
            for n in labels[c][:k]:
                owners.append(ci)
                vecs.append(name_emb[n])
        scores = image_emb @ torch.stack(vecs).T
        p = np.asarray(owners)[scores.argmax(dim=1).numpy()]
        pred[k] = p
        acc[k] = float((p == true).mean())
    return LevelResult(acc, pred, true)


def demo_eval_set(seed: int = 0, n_per_class: int = 30) -> tuple[list, np.ndarray, list[str]]:
    """Held-out images (as written by ``write_demo_dataset``), class indices and variants."""
    images, true, variants = [], [], []
    for item, img in data.iter_demo_images(seed, n_per_class):
        images.append(img)
        true.append(data.DEMO_CLASSES.index(item.cls))
        variants.append(item.variant)
    return images, np.asarray(true), variants


def evaluate(model: torch.nn.Module, preprocess, tokenizer, images: Sequence, true: np.ndarray,
             levels: Iterable[int] = LEVELS) -> LevelResult:
    """Flat accuracies of one model on a held-out set with the demo's ranked labels."""
    labels = data.demo_labels()
    emb = name_embeddings(model, tokenizer, [n for ns in labels.values() for n in ns])
    return flat_levels(encode_images(model, preprocess, images), true, labels, emb, levels)


# ----------------------------------------------------------------------------- training

@dataclass
class TrainConfig:
    arch: str
    minutes: float
    seed: int
    out: Path
    steps: Optional[int] = None
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup: int = 60
    augment: str = "none"
    eval_every: int = 100
    threads: int = 2
    workers: int = 1
    pool_size: int = 4096
    fresh_per_batch: int = 32
    config_dir: Optional[Path] = None
    init: Optional[Path] = None  # continue from these weights (a second stage), else from scratch


class _PairBatches(torch.utils.data.IterableDataset):
    """Endless batches of preprocessed training images and freshly sampled captions.

    Rendering is the slow part on CPU, so images live in a replay pool: every batch
    renders ``fresh`` new images into it and draws the batch from the pool, each use
    with a newly sampled caption (so one image meets several of its names). Images go
    through the model's own eval preprocess, the exact pixels the engine will feed it.
    """

    def __init__(self, seed: int, batch_size: int, preprocess, pool_size: int, fresh: int) -> None:
        super().__init__()
        self.seed, self.batch_size, self.preprocess = seed, batch_size, preprocess
        self.pool_size, self.fresh = pool_size, fresh

    def __iter__(self) -> Iterator[tuple[torch.Tensor, list[str]]]:
        images = data.training_images(self.seed)
        rng = np.random.default_rng([self.seed, 2])
        pool_x: list[torch.Tensor] = []
        pool_r: list[data.Rendered] = []
        while True:
            n_new = self.batch_size if len(pool_r) < self.pool_size else self.fresh
            for _ in range(n_new):
                r = next(images)
                x = self.preprocess(r.image)
                if len(pool_r) < self.pool_size:
                    pool_x.append(x)
                    pool_r.append(r)
                else:
                    slot = int(rng.integers(self.pool_size))
                    pool_x[slot], pool_r[slot] = x, r
            idx = rng.integers(0, len(pool_r), self.batch_size)
            yield (torch.stack([pool_x[i] for i in idx]),
                   [data.make_caption(pool_r[i].cls, pool_r[i], rng) for i in idx])


def _batches(cfg: "TrainConfig", preprocess) -> Iterator[tuple[torch.Tensor, list[str]]]:
    """Render in a worker process (when ``cfg.workers`` > 0) while the main process trains."""
    ds = _PairBatches(cfg.seed, cfg.batch_size, preprocess, cfg.pool_size, cfg.fresh_per_batch)
    if cfg.workers <= 0:
        return iter(ds)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=1, prefetch_factor=4)
    return iter(loader)


def _augment(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    if kind == "shift":
        m = max(1, x.shape[-1] // 16)
        dx, dy = (torch.randint(-m, m + 1, (2,), generator=gen)).tolist()
        return torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return x


def clip_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, captions: Sequence[str]) -> torch.Tensor:
    """Symmetric InfoNCE; pairs with identical captions count as positives of each other."""
    logits = scale * img @ txt.T
    ids = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    cid = torch.tensor([ids[c] for c in captions])
    target = (cid[:, None] == cid[None, :]).float()
    target = target / target.sum(dim=1, keepdim=True)
    return 0.5 * (torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()
                  + torch.sum(-target * F.log_softmax(logits.T, dim=1), dim=1).mean())


def _param_groups(model: torch.nn.Module, wd: float) -> list[dict]:
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if n == "token_embedding.weight":
            continue  # sparse rows, updated by SparseAdam
        skip = p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def save_checkpoint(model: torch.nn.Module, path: Path) -> str:
    """Save an fp16 state dict (loads into an fp32 model) and return its sha256."""
    sd = {k: (v.detach().half() if v.is_floating_point() else v.detach()).clone()
          for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return file_sha256_uncached(path)


def _index_entry(weights: Path) -> dict:
    """The ``index.json`` entry next to a weights file that names it (empty if none)."""
    index_path = weights.parent / "index.json"
    if not index_path.is_file():
        return {}
    for entry in json.loads(index_path.read_text()).values():
        if entry.get("weights") == weights.name:
            return entry
    return {}


def update_index(out: Path, name: str, entry: dict) -> None:
    index_path = out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    index[name] = entry
    index_path.write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n")


def train(cfg: TrainConfig, log=print) -> dict:
    """Train one demo backbone, evaluate it on the held-out demo set and write it to ``cfg.out``."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    name = f"demo-{cfg.arch}"
    model, preprocess, tokenizer = build_model(name, cfg.config_dir)
    previous = None
    if cfg.init is not None:
        # A second stage: the shipped fp16 weights, a fresh optimiser and a new warm-up and
        # cosine cycle (a warm restart), on a new stream of rendered images.
        previous = {"weights_sha256": file_sha256_uncached(cfg.init),
                    "trained": _index_entry(Path(cfg.init)).get("trained")}
        open_clip.load_checkpoint(model, str(cfg.init), weights_only=True)
    # The token table has ~49k rows of which the captions use a few hundred: a sparse
    # gradient with SparseAdam updates only those rows instead of the whole table.
    model.token_embedding.sparse = True
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    opt_emb = torch.optim.SparseAdam([model.token_embedding.weight], lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    batches = _batches(cfg, preprocess)
    gen = torch.Generator().manual_seed(cfg.seed)
    val_images, val_true, _ = demo_eval_set(seed=10_000 + cfg.seed, n_per_class=10)

    # Without --steps the cosine schedule follows wall-clock time, which keeps the budget
    # on a loaded machine; the step count actually run is recorded for --steps replays.
    train_seconds = max(cfg.minutes * 60.0 - 30.0, 10.0)
    t_start = time.time()
    step = 0
    data_wait = 0.0
    while True:
        if cfg.steps is not None:
            progress = step / cfg.steps
        else:
            progress = (time.time() - t_start) / train_seconds
        if progress >= 1.0:
            break
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * progress))
        for o in (opt, opt_emb):
            for g in o.param_groups:
                g["lr"] = lr
        model.train()
        t_data = time.time()
        x, captions = next(batches)
        data_wait += time.time() - t_data
        x = _augment(x, cfg.augment, gen)
        img, txt, scale = model(x, tokenizer(captions))[:3]
        loss = clip_loss(img, txt, scale, captions)
        opt.zero_grad(set_to_none=True)
        opt_emb.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        opt_emb.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        step += 1

        if step % 20 == 0:
            log(f"[{name}] step {step} loss {loss.item():.3f} scale {model.logit_scale.exp().item():.1f} "
                f"lr {lr:.2e} {time.time() - t_start:.0f}s (data wait {data_wait:.0f}s)")
        if step % cfg.eval_every == 0:
            r = evaluate(model, preprocess, tokenizer, val_images, val_true, levels=(1,))
            log(f"[{name}] step {step} val level-1 {r.accuracy[1]:.3f}")
    model.token_embedding.sparse = False

    elapsed = (time.time() - t_start) / 60

    out = Path(cfg.out)
    weights = out / f"{name}.pt"
    digest = save_checkpoint(model, weights)
    shipped, preprocess, tokenizer = build_model(name, cfg.config_dir)
    open_clip.load_checkpoint(shipped, str(weights), weights_only=True)
    images, true, _ = demo_eval_set()
    res = evaluate(shipped, preprocess, tokenizer, images, true)
    log(f"[{name}] held-out flat accuracy " + " ".join(f"L{k}={v:.3f}" for k, v in res.accuracy.items()))
    entry = {
        "config": f"configs/{name}.json",
        "weights": weights.name,
        "sha256": digest,
        "description": DESCRIPTIONS[cfg.arch],
        "trained": {
            "minutes": round(elapsed, 1),
            "steps": step,
            "seed": cfg.seed,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "augment": cfg.augment,
            "level1_top1": round(res.accuracy[1], 4),
            "flat_top1": {str(k): round(v, 4) for k, v in res.accuracy.items()},
            "eval_set": "demo seed 0, 30 images per class",
        },
    }
    if previous is not None:
        entry["trained"]["init"] = previous
        entry["trained"]["total_steps"] = step + int((previous["trained"] or {}).get("total_steps")
                                                     or (previous["trained"] or {}).get("steps") or 0)
    update_index(out, name, entry)
    log(f"[{name}] wrote {weights} sha256 {digest}")
    return entry


# ----------------------------------------------------------------------------- report

def load_demo_model(name: str, models_dir: Path) -> tuple[torch.nn.Module, object, object]:
    """Build a demo model and load its shipped fp16 weights, checking the recorded hash."""
    index = json.loads((models_dir / "index.json").read_text())
    entry = index[name]
    weights = models_dir / entry["weights"]
    if file_sha256_uncached(weights) != entry["sha256"]:
        raise RuntimeError(f"{weights}: sha256 does not match index.json")
    model, preprocess, tokenizer = build_model(name)
    open_clip.load_checkpoint(model, str(weights), weights_only=True)
    model.eval()
    return model, preprocess, tokenizer


def _spearman(a: Sequence[float], b: Sequence[float]) -> float:
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def report(models_dir: Path, n_per_class: int = 30, seed: int = 0, log=print) -> dict:
    """Flat accuracy per level and backbone, oracle vs best single, and the link between
    per-class accuracy and class frequency, on a freshly generated demo set."""
    images, true, variants = demo_eval_set(seed, n_per_class)
    is_b = np.asarray([v == "B" for v in variants])
    freqs = data.canonical_frequencies()
    results: dict[str, LevelResult] = {}
    summary: dict = {"n_images": len(images), "seed": seed, "models": {}}
    log(f"demo set seed {seed}, {n_per_class} images/class ({len(images)} images, "
        f"{int(is_b.sum())} variant B)")
    for name in ("demo-vit", "demo-resnet"):
        model, preprocess, tokenizer = load_demo_model(name, models_dir)
        r = evaluate(model, preprocess, tokenizer, images, true)
        results[name] = r
        per_class = [float((r.predicted[1][true == i] == i).mean()) for i in range(len(data.DEMO_CLASSES))]
        rho = _spearman(per_class, [freqs[c] for c in data.DEMO_CLASSES])
        by_variant = {k: (float((r.predicted[k] == true)[~is_b].mean()), float((r.predicted[k] == true)[is_b].mean()))
                      for k in r.accuracy}
        summary["models"][name] = {"flat": r.accuracy, "variant_A_B": by_variant,
                                   "per_class_level1": dict(zip(data.DEMO_CLASSES, per_class)),
                                   "spearman_freq_level1": rho}
        log(f"{name}: " + "  ".join(f"L{k} {v:.3f}" for k, v in r.accuracy.items())
            + f"  | Spearman(per-class L1, frequency) {rho:+.2f}")
        log("   variant A / B: " + "  ".join(f"L{k} {a:.2f}/{b:.2f}" for k, (a, b) in by_variant.items()))
        log("   per class L1: " + " ".join(f"{c}={a:.2f}" for c, a in zip(data.DEMO_CLASSES, per_class)))
    for k in LEVELS:
        right = [results[n].predicted[k] == true for n in results]
        oracle = float(np.logical_or.reduce(right).mean())
        best = max(float(x.mean()) for x in right)
        summary.setdefault("oracle", {})[k] = {"oracle": oracle, "best_single": best}
        log(f"level {k}: oracle {oracle:.3f} vs best single {best:.3f} (+{100 * (oracle - best):.1f} pts)")
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.demo.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=sorted(ARCH_DEFAULTS))
    ap.add_argument("--minutes", type=float, default=None, help="wall-clock budget (default per arch)")
    ap.add_argument("--steps", type=int, default=None, help="fixed step count (reproduces a run)")
    ap.add_argument("--seed", type=int, default=None, help="training seed (default per arch)")
    ap.add_argument("--out", type=Path, default=None, help="models directory (default: bundled)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--augment", choices=("none", "shift"), default=None, help="default per arch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="render in a worker process (0: inline)")
    ap.add_argument("--config-dir", type=Path, default=None, help="alternative open_clip configs")
    ap.add_argument("--init", type=Path, default=None,
                    help="continue from these weights (e.g. the shipped ones) with a new warm-up and cosine cycle")
    ap.add_argument("--report", action="store_true", help="evaluate the shipped demo models")
    ap.add_argument("--n-per-class", type=int, default=30, help="report: images per class")
    args = ap.parse_args(argv)

    out = args.out
    if out is None:
        from resources import path

        out = path("models")
    if args.report:
        report(Path(out), n_per_class=args.n_per_class)
        return 0
    if not args.arch:
        ap.error("--arch is required unless --report is given")
    d = ARCH_DEFAULTS[args.arch]
    cfg = TrainConfig(arch=args.arch, minutes=d["minutes"] if args.minutes is None else args.minutes, seed=d["seed"] if args.seed is None else args.seed,
                      out=Path(out), steps=args.steps, batch_size=args.batch_size,
                      lr=d["lr"] if args.lr is None else args.lr, augment=d["augment"] if args.augment is None else args.augment,
                      threads=args.threads, workers=args.workers, config_dir=args.config_dir, init=args.init)
    train(cfg, log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
