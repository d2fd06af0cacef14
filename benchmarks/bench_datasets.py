"""Dataset readers: listing, hashing and decoding the same images as an ImageFolder, a
``save_to_disk`` folder and a parquet file (``python -m benchmarks.bench_datasets [N]``)."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from core.data import load_dataset

from benchmarks.common import write_images


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(n: int = 2000) -> list[dict]:
    import datasets

    tmp = Path(tempfile.mkdtemp(prefix="semscale-bench-ds-"))
    try:
        folder = write_images(tmp / "images", n, n_classes=10, size=(64, 64))
        files = sorted(folder.rglob("*.png"))
        names = sorted({f.parent.name for f in files})
        feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
        hf = datasets.Dataset.from_dict({"image": [str(f) for f in files],
                                         "label": [names.index(f.parent.name) for f in files]}, features=feats)
        hf.save_to_disk(str(tmp / "saved"))
        hf.to_parquet(str(tmp / "images.parquet"))
        rows = []
        for name, source in (("imagefolder", folder), ("save_to_disk", tmp / "saved"),
                             ("parquet", tmp / "images.parquet")):
            holder = {}
            t_list = _time(lambda: holder.setdefault("ds", load_dataset(source)))
            ds = holder["ds"]
            t_hash = _time(lambda: [ds.content_hash(i) for i in range(len(ds))])
            t_open = _time(lambda: [ds.open(i) for i in range(len(ds))])
            rows.append({"format": name, "images": len(ds), "list_s": round(t_list, 3),
                         "hash_per_s": round(len(ds) / t_hash), "decode_per_s": round(len(ds) / t_open)})
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print("| format | images | listing (s) | hashes/s | decodes/s |\n|---|---|---|---|---|")
    for r in bench(n):
        print(f"| {r['format']} | {r['images']} | {r['list_s']} | {r['hash_per_s']} | {r['decode_per_s']} |")
