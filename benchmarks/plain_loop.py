"""The zero-shot loop a user would write by hand, as the reference for the engine's overhead.

open_clip + torchvision ``ImageFolder`` + ``DataLoader``, encode, argmax against one text
embedding per class. Run as a script (one whole process, like ``semscale sweep``):

    python benchmarks/plain_loop.py MODEL_CONFIG.json CHECKPOINT IMAGE_FOLDER LABELS.csv WORKERS

Prints one JSON line: top-1, images, seconds of the encode stage and images/s.
"""

import csv
import json
import sys
import time
from pathlib import Path

import open_clip
import torch
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="open_clip model config (JSON)")
    ap.add_argument("checkpoint", help="checkpoint file")
    ap.add_argument("data", help="image folder (<root>/<class>/<images>)")
    ap.add_argument("labels_csv", help="labels CSV (class,synonym)")
    ap.add_argument("workers", type=int, help="DataLoader workers")
    a = ap.parse_args(argv)
    config, checkpoint, data, labels_csv, workers = a.config, a.checkpoint, a.data, a.labels_csv, a.workers
    open_clip.add_model_config(config)
    name = Path(config).stem
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
    open_clip.load_checkpoint(model, checkpoint, weights_only=True)
    model.eval()
    tokenizer = open_clip.get_tokenizer(name)

    dataset = ImageFolder(data, transform=preprocess)
    first_name = {}
    with open(labels_csv, newline="") as f:
        for row in csv.DictReader(f):
            first_name.setdefault(row["class"], row["synonym"])
    names = [first_name[c] for c in dataset.classes]

    with torch.no_grad():
        text = torch.nn.functional.normalize(model.encode_text(tokenizer([f"a photo of a {n}." for n in names])), dim=-1)
        loader = DataLoader(dataset, batch_size=64, num_workers=int(workers))
        correct, n, t0 = 0, 0, time.perf_counter()
        for x, y in loader:
            feats = torch.nn.functional.normalize(model.encode_image(x), dim=-1)
            correct += int(((feats @ text.T).argmax(1) == y).sum())
            n += len(y)
        dt = time.perf_counter() - t0
    print(json.dumps({"top1": correct / n, "images": n, "encode_seconds": dt, "images_per_s": n / dt}))


if __name__ == "__main__":
    main()
