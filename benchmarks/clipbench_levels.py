"""LAION CLIP_benchmark's zero-shot evaluation of a semantic-scaling sweep, one ``evaluate()`` per level.

Runs inside CLIP_benchmark's own environment (see ``bench_clipbench.py``), so it imports
nothing from semscale. CLIP_benchmark's classifier has one name per class, so level k is
passed the way its users must: every one of the first k names of each class becomes its
own class name for ``evaluate()`` (the semscale "flat" label set). Its own ``acc1`` then
counts an image right only when the *first* name of its class wins; the flat accuracy
(any of its class's names wins) needs the logits, which ``evaluate()`` computes through
the module-level ``run_classification`` and does not return: a pass-through wrapper
records them, so the evaluation itself runs unchanged and nothing is computed twice.

    python clipbench_levels.py --images DIR --labels CSV --model ViT-S-32-alt --checkpoint W.pt \
        --template "a photo of a {c}." --levels 1,2,4 --out result.json
"""

from __future__ import annotations

import argparse
import csv
import json
import time

T_START = time.perf_counter()


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--template", required=True)
    ap.add_argument("--levels", required=True)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--amp", action="store_true", help="CLIP_benchmark's autocast (off: fp32, like semscale's default)")
    ap.add_argument("--out", required=True)
    return ap


if __name__ == "__main__":
    _parser().parse_args()  # answer --help before the imports, which need CLIP_benchmark's environment

import torch  # noqa: E402
import open_clip  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision.datasets import ImageFolder  # noqa: E402

from clip_benchmark.metrics import zeroshot_classification as zsc  # noqa: E402

T_IMPORTS = time.perf_counter() - T_START


def read_labels(path: str) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            names.setdefault(row["class"], []).append(row["synonym"])
    return names


def main() -> None:
    args = _parser().parse_args()

    t0 = time.perf_counter()
    model, _, preprocess = open_clip.create_model_and_transforms(args.model, pretrained=args.checkpoint)
    model.eval()
    tokenizer = open_clip.get_tokenizer(args.model)
    t_model = time.perf_counter() - t0

    recorded = []
    original = zsc.run_classification

    def recording(*a, **kw):
        logits, target = original(*a, **kw)
        recorded.append((logits, target))
        return logits, target

    zsc.run_classification = recording
    names = read_labels(args.labels)
    rows = []
    for k in [int(x) for x in args.levels.split(",")]:
        t1 = time.perf_counter()
        folder = ImageFolder(args.images)
        classnames, owner, first_of = [], [], {}
        for c, cls in enumerate(folder.classes):
            first_of[c] = len(classnames)
            for n in names[cls][:k]:
                classnames.append(n)
                owner.append(c)
        # the dataset's classes are the level's category names; an image's target is its class's first name
        dataset = ImageFolder(args.images, transform=preprocess, target_transform=lambda c: first_of[c])
        dataset.classes = classnames
        loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False, num_workers=args.workers)
        metrics = zsc.evaluate(model, loader, tokenizer, classnames, [args.template], "cpu", amp=args.amp)
        logits, target = recorded.pop()
        owner_t = torch.tensor(owner)
        true_class = owner_t[target]
        flat = (owner_t[logits.argmax(dim=1)] == true_class).float().mean().item()
        rows.append({"level": k, "n_categories": len(classnames), "seconds": time.perf_counter() - t1,
                     "acc1_first_name": metrics["acc1"], "top1_flat": flat})
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"imports_seconds": T_IMPORTS, "model_seconds": t_model, "levels": rows,
                   "total_seconds": time.perf_counter() - T_START}, f, indent=1)


if __name__ == "__main__":
    main()
