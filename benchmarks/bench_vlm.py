"""Vision-language models: likelihood scoring with the key-value cache reused across names vs
the straightforward loop, an OpenAI-compatible server at concurrency 4 vs 1, cached re-runs.

* Likelihood: ``LocalVLM.score_names`` (one forward of image + prompt per image, then the
  names in batches over a copy of its key-value cache) against the loop of the published
  analysis code (one full forward of image + prompt + name per image and name), on the same
  random LLaVA, images and names; the scores must agree to 1e-4.
* Endpoint: ``OpenAIChat.answer`` against ``transformers serve`` on 127.0.0.1, open mode,
  ``max_concurrency`` 4 vs 1, then the same request again answered from the cache.

Run alone with ``python -m benchmarks.bench_vlm`` (writes ``benchmarks/results_vlm.md``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _names(n: int) -> list[str]:
    words = ["red", "green", "blue", "square", "circle", "cat", "dog", "sea", "lion", "tiny", "block", "disc"]
    rng = np.random.default_rng(1)
    return list(dict.fromkeys(" ".join(rng.choice(words, size=1 + i % 3)) + f" {i}" for i in range(n)))[:n]


def _dataset(root: Path, n_images: int):
    from core.data.imagefolder import load_image_folder

    from .common import write_images

    return load_image_folder(write_images(root / "images", n_images, n_classes=5, size=(48, 48)))


def straightforward_scores(vlm, dataset, indices, names) -> np.ndarray:
    """The paper's loop: a full forward of image + prompt + name for every (image, name)."""
    import torch

    proc, model, tok = vlm.processor, vlm.model, vlm.tokenizer
    ctx = vlm.context_text()
    out = np.zeros((len(indices), len(names)))
    with torch.inference_mode():
        for r, i in enumerate(indices):
            image = dataset.open(i)
            for c, n in enumerate(names):
                k = len(tok(" " + n, add_special_tokens=False)["input_ids"])
                inputs = proc(images=[image], text=[ctx + " " + n], return_tensors="pt")
                ids = inputs["input_ids"][0]
                logp = torch.log_softmax(model(**inputs).logits[0].float(), dim=-1)
                L = len(ids)
                lp = logp[torch.arange(L - k - 1, L - 1), ids[L - k:]]
                out[r, c] = lp.mean().item() if vlm.norm == "mean" else lp.sum().item()
    return out


def likelihood(tmp: Path, n_images: int = 50, n_names: int = 100) -> dict:
    from core.demo.tiny_vlm import write_tiny_vlm
    from core.models.vlm import LocalVLM

    folder = write_tiny_vlm(tmp / "tiny-vlm")
    ds = _dataset(tmp / "lik", n_images)
    idx, names = list(range(n_images)), _names(n_names)
    vlm = LocalVLM(str(folder), mode="likelihood").load()
    vlm.score_matrix(ds, idx[:1], names[:4])  # warm-up (lazy imports, first-call allocations)
    t0 = time.perf_counter()
    ours = vlm.score_matrix(ds, idx, names)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop = straightforward_scores(vlm, ds, idx, names)
    t_loop = time.perf_counter() - t0
    cache = tmp / "lik-cache"
    vlm.score_matrix(ds, idx, names, cache=cache)
    t0 = time.perf_counter()
    again = LocalVLM(str(folder), mode="likelihood").score_matrix(ds, idx, names, cache=cache)
    t_cached = time.perf_counter() - t0
    return {"model": "tiny random LLaVA (150k parameters)", "n_images": n_images, "n_names": n_names,
            "t_kv_reuse": t_ours, "t_loop": t_loop, "ratio": t_ours / t_loop,
            "max_abs_diff": float(np.abs(ours - loop).max()), "t_cached_rerun": t_cached,
            "cached_identical": bool(np.array_equal(again, ours)), "ratio_cached": t_cached / t_ours}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def endpoint(tmp: Path, n_images: int = 32, max_new_tokens: int = 16) -> dict:
    from core.demo.tiny_vlm import write_tiny_vlm
    from core.models.openai_chat import OpenAIChat

    folder = write_tiny_vlm(tmp / "tiny-vlm")
    ds = _dataset(tmp / "ep", n_images)
    port = _free_port()
    exe = Path(sys.executable).with_name("transformers")
    proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                             str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        t_start = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t_start > 300:
                    raise RuntimeError("transformers serve did not start") from None
                time.sleep(0.5)
        t_ready = time.perf_counter() - t_start
        idx = list(range(n_images))
        out = {"server": "transformers serve --device cpu (tiny random LLaVA)", "n_images": n_images,
               "max_new_tokens": max_new_tokens, "t_server_ready": t_ready}
        warm = OpenAIChat(f"{folder}@{url}", max_new_tokens=max_new_tokens)
        warm.check()
        warm.answer_texts(ds, idx[:2], ["warm-up"] * 2)
        answers = {}
        for conc in (1, 4):
            ep = OpenAIChat(f"{folder}@{url}", max_new_tokens=max_new_tokens, max_concurrency=conc)
            ep.check()
            t0 = time.perf_counter()
            answers[conc] = ep.answer_texts(ds, idx, [ep.prompt] * n_images, cache=tmp / f"ep-cache-{conc}")
            out[f"t_conc{conc}"] = time.perf_counter() - t0
            out[f"requests_per_s_conc{conc}"] = n_images / out[f"t_conc{conc}"]
        out["ratio_conc4_vs_1"] = out["t_conc4"] / out["t_conc1"]
        out["same_answers"] = answers[1] == answers[4]
        ep = OpenAIChat(f"{folder}@{url}", max_new_tokens=max_new_tokens, max_concurrency=4)
        ep.check()
        t0 = time.perf_counter()
        cached = ep.answer_texts(ds, idx, [ep.prompt] * n_images, cache=tmp / "ep-cache-4")
        out["t_cached_rerun"] = time.perf_counter() - t0
        out["cached_requests"] = ep.requests
        out["cached_identical"] = cached == answers[4]
        out["ratio_cached"] = out["t_cached_rerun"] / out["t_conc4"]
        return out
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def markdown(r: dict) -> list[str]:
    out: list[str] = []
    lk = r.get("likelihood")
    if lk:
        out += ["", "## VLM likelihood scoring", f"{lk['model']}, {lk['n_images']} images x {lk['n_names']} names, "
                "mean token log-prob, CPU.", "",
                "| measurement | seconds | ratio | target |", "|---|---|---|---|",
                f"| one full forward per (image, name) (the published analysis loop) | {lk['t_loop']:.1f} | 1 | |",
                f"| image + prompt once per image, key-value cache reused for batched names | {lk['t_kv_reuse']:.1f} "
                f"| **{lk['ratio']:.3f}** | ≤ 0.2 |",
                f"| cached re-run | {lk['t_cached_rerun']:.2f} | {lk['ratio_cached']:.3f} vs first | |",
                "", f"Largest difference between the two ways' scores: {lk['max_abs_diff']:.1e} "
                f"(cached re-run identical: {lk['cached_identical']})."]
    ep = r.get("endpoint")
    if ep:
        out += ["", "## VLM through an OpenAI-compatible server", f"{ep['server']}, open mode, {ep['n_images']} "
                f"images, {ep['max_new_tokens']} new tokens; server ready after {ep['t_server_ready']:.1f} s.", "",
                "| measurement | seconds | requests/s | ratio |", "|---|---|---|---|",
                f"| max-concurrency 1 | {ep['t_conc1']:.1f} | {ep['requests_per_s_conc1']:.2f} | 1 |",
                f"| max-concurrency 4 | {ep['t_conc4']:.1f} | {ep['requests_per_s_conc4']:.2f} | "
                f"**{ep['ratio_conc4_vs_1']:.2f}** |",
                f"| cached re-run ({ep['cached_requests']} requests) | {ep['t_cached_rerun']:.2f} | | "
                f"{ep['ratio_cached']:.3f} vs first |",
                "", f"Same answers at both concurrencies: {ep['same_answers']}; cached re-run identical: "
                f"{ep['cached_identical']}."]
    return out


def main() -> None:
    import argparse
    import tempfile

    from .common import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 images x 20 names, 8 requests")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads here and in the server (default 1: steady timings on a shared machine)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        r = {"likelihood": likelihood(tmp, *((10, 20) if args.quick else (50, 100)))}
        print(json.dumps(r["likelihood"], indent=1), flush=True)
        r["endpoint"] = endpoint(tmp, 8 if args.quick else 32)
        print(json.dumps(r["endpoint"], indent=1), flush=True)
    m = machine()
    lines = ["# VLM benchmark results", "", "| machine | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in m.items()]
    (HERE / "results_vlm.md").write_text("\n".join(lines + markdown(r)) + "\n", encoding="utf-8")
    (HERE / "results_vlm.json").write_text(json.dumps({"machine": m, **r}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
