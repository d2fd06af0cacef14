"""GPU throughput: end-to-end images/s against the decode-only and encoder-only limits (``make bench-gpu``).

For random-initialised ViT-B-32 and ViT-L-14 (no weights needed) on one CUDA device, fp16
autocast, synthetic photo-like JPEGs (500x375):

* encoder only: synthetic input tensors already on the GPU;
* decode only: CPU decode workers (draft and exact) into pinned batches, and nvJPEG batches
  decoded and preprocessed on the GPU (``--decode gpu``), without the encoder;
* end to end: :func:`core.embedding.embed.embed_images` with each decode mode;
* text: prompts/s of the text tower.

Writes ``benchmarks/results_gpu.md`` (and ``.json``); sized to finish in under 5 minutes on
one GPU. Without CUDA it exits at once with a message; ``--cpu-smoke`` runs every step on the
CPU with a tiny model and a handful of images (a check that the script works, not a figure).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import machine, write_images

HERE = Path(__file__).resolve().parent


def _backbone(model: str, device: str, precision: str, decode: str, config: dict | None = None):
    """A Backbone around a randomly initialised open_clip model (no checkpoint file is written)."""
    import open_clip

    from core.models.openclip import Backbone, BackboneSpec

    name = model
    if config is not None:
        open_clip.factory._MODEL_CONFIGS[model] = config
    spec = BackboneSpec(model, device=device, precision=precision, decode=decode)
    bb = Backbone(spec, name, None, f"random:{model}", device, open_clip.get_model_config(name), precision)
    torch.manual_seed(0)
    net, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
    net.eval().to(device)
    bb._model, bb._preprocess = net, preprocess
    return bb


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _items_per_s(step, batch: int, steps: int, device: str) -> float:
    """Items/s of ``steps`` calls of ``step`` on ``batch`` items, after one warm-up call (kernel selection)."""
    step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return batch * steps / (time.perf_counter() - t0)


def encoder_only(bb, batch: int, steps: int) -> float:
    side = bb.input_side or 224
    x = torch.randn(batch, 3, side, side, device=bb.device)
    return _items_per_s(lambda: bb.encode_images(x), batch, steps, bb.device)


def text_only(bb, batch: int, steps: int) -> float:
    prompts = [f"a photo of a thing number {i}." for i in range(batch)]
    return _items_per_s(lambda: bb.encode_texts(prompts), batch, steps, bb.device)


def decode_only(bb, dataset, batch: int, workers: int) -> float:
    """The image pipeline without the encoder: every batch decoded, preprocessed and on the device."""
    from torch.utils.data import DataLoader

    from core.models.local_images import _collate, _decode_on_device, _DecodeSet
    from core.data.gpu_decode import tensor_preprocess

    gpu = bb.spec.decode == "gpu"
    prep = tensor_preprocess(bb.preprocess) if gpu else None
    ds = _DecodeSet(dataset, range(len(dataset)), bb.preprocess, bb.draft_side, raw_jpeg=gpu)
    loader = DataLoader(ds, batch_size=batch, num_workers=workers, collate_fn=_collate,
                        pin_memory=bb.device.startswith("cuda"), prefetch_factor=4 if workers else None)
    n, t0 = 0, time.perf_counter()
    for idx, xs, bad, *jpegs in loader:
        if jpegs:
            idx, xs, _ = _decode_on_device(jpegs[0], idx, xs, bb.device, prep, dataset, bb.preprocess)
        elif xs is not None:
            xs = xs.to(bb.device, non_blocking=True)
        n += len(idx)
    _sync(bb.device)
    return n / (time.perf_counter() - t0)


def end_to_end(bb, dataset, batch: int, workers: int) -> float:
    from core.embedding.embed import embed_images

    t0 = time.perf_counter()
    emb = embed_images(bb, dataset, batch_size=batch, num_workers=workers)
    _sync(bb.device)
    return len(emb.indices) / (time.perf_counter() - t0)


def run(out: Path, cpu_smoke: bool = False) -> dict:
    import os

    from core.data import load_dataset
    from core.demo.tiny import tiny_config

    if cpu_smoke:
        device, precision, models, n_images, batch, steps = "cpu", "fp32", ["smoke-tiny"], 24, 8, 2
        decodes = ["draft", "exact", "gpu"]
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: bench-gpu measures a GPU (torch.cuda.is_available() is False); "
                             "use --cpu-smoke to check the script on the CPU")
        device, precision, models, n_images, batch, steps = "cuda", "fp16", ["ViT-B-32", "ViT-L-14"], 3000, 256, 20
        decodes = ["draft", "exact", "gpu"]
    workers = max(1, min(16, (os.cpu_count() or 2) - 1))
    res: dict = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (smoke run)",
                 "precision": precision, "n_images": n_images, "image_size": "500x375", "batch": batch,
                 "workers": workers, "models": {}}
    with tempfile.TemporaryDirectory(prefix="semscale-bench-gpu-") as tmp:
        data = write_images(Path(tmp) / "jpegs", n_images, 10, size=(500, 375), fmt="jpg", style="photo")
        dataset = load_dataset(str(data))
        for model in models:
            t_model = time.perf_counter()
            cfg = tiny_config(embed_dim=32) if model == "smoke-tiny" else None
            row: dict = {}
            for decode in decodes:
                if decode == "gpu" and device == "cpu":
                    # the batched-decode code path on torchvision's CPU decoder (checks the script, not nvJPEG)
                    bb = _backbone(model, device, precision, "exact", cfg)
                    bb.spec.decode = "gpu"
                else:
                    bb = _backbone(model, device, precision, decode, cfg)
                if decode == decodes[0]:
                    row["encoder_only"] = encoder_only(bb, batch, steps)
                    row["text_prompts_per_s"] = text_only(bb, batch * 4, steps)
                row[f"decode_only_{decode}"] = decode_only(bb, dataset, batch, workers)
                row[f"end_to_end_{decode}"] = end_to_end(bb, dataset, batch, workers)
                print(model, decode, json.dumps({k: round(v, 1) for k, v in row.items()}), flush=True)
                del bb
                if device == "cuda":
                    torch.cuda.empty_cache()
            row["seconds"] = time.perf_counter() - t_model
            res["models"][model] = row
    md = markdown(res)
    out.write_text(md)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    print(md)
    return res


def markdown(r: dict) -> str:
    lines = ["# GPU benchmark", "", f"`make bench-gpu` on {r['device']}, {r['precision']} autocast, "
             f"{r['n_images']} synthetic photo-like JPEGs {r['image_size']}, batches of {r['batch']}, "
             f"{r['workers']} CPU decode workers. Random-initialised weights (throughput does not depend on them).", "",
             "| model | encoder only (img/s) | decode only: draft / exact / nvJPEG (img/s) | end to end: draft / exact / "
             "nvJPEG (img/s) | end to end vs the smaller limit | text (prompts/s) |", "|---|---|---|---|---|---|"]
    for m, x in r["models"].items():
        dec = [x[f"decode_only_{d}"] for d in ("draft", "exact", "gpu")]
        e2e = [x[f"end_to_end_{d}"] for d in ("draft", "exact", "gpu")]
        best = max(range(3), key=lambda k: e2e[k])
        limit = min(x["encoder_only"], dec[best])
        lines.append(f"| {m} | {x['encoder_only']:.0f} | {' / '.join(f'{v:.0f}' for v in dec)} | "
                     f"{' / '.join(f'{v:.0f}' for v in e2e)} | {100 * e2e[best] / limit:.0f}% "
                     f"({['draft', 'exact', 'nvJPEG'][best]}) | {x['text_prompts_per_s']:.0f} |")
    m = machine()
    lines += ["", f"torch {m['torch']}, open_clip {m['open_clip']}, {m['cores']} CPU cores ({m['cpu']})."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny model, 24 images, on the CPU (a check of the script)")
    ap.add_argument("--out", default=str(HERE / "results_gpu.md"))
    ns = ap.parse_args(argv)
    run(Path(ns.out), ns.cpu_smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
