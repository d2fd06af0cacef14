"""semscale as a clip-as-service client vs the plain client loop a user would write.

Workload: JPEG photos (320x240) in an ImageFolder, a real clip-as-service 0.8.3 server on
127.0.0.1 (HTTP gateway, one CPU executor, random-initialised ViT-B-32 weights; started from
its own environment, ``make clip-server-env``), the same batch sizes on both sides.

* *plain loop*: read each batch's files, base64 them into data URIs, ``POST /post``, wait,
  parse the embeddings, next batch (one request at a time) — the loop clip-as-service's
  documentation shows, written with requests.
* *semscale*: the clip-server kind's ``embed_records`` (files checked and encoded into requests
  on worker threads while up to ``max_concurrency`` requests are in flight; embeddings
  normalised), the stage a sweep spends its image time in.
* *round-trip share*: the share of the wall time during which at least one request was
  waiting on the server (for the plain loop, the time inside ``POST``).
* *sweep, first vs cached re-run* (when the sweep knows the kind): ``semscale sweep --model
  clip-server:http://…`` twice with one cache; the second run sends no encode request.

Runs alternate (plain, semscale) and each figure is the median of the repetitions. The server
shares this machine's CPU with the client, so absolute figures are the server's CPU speed; the
ratios say what the client adds or saves.
"""

from __future__ import annotations

import base64
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .common import ROOT, write_images, write_labels

BATCH_SIZES = (8, 32)
GOAL = 1.0  # semscale / plain loop


def plain_loop(url: str, files: list[Path], batch_size: int) -> tuple[float, float, np.ndarray]:
    """(wall seconds, seconds inside POST, embeddings) of the sequential client loop."""
    import requests

    session = requests.Session()
    out, in_post = [], 0.0
    t0 = time.perf_counter()
    for i in range(0, len(files), batch_size):
        docs = [{"uri": "data:image/jpeg;base64," + base64.b64encode(f.read_bytes()).decode()}
                for f in files[i:i + batch_size]]
        t1 = time.perf_counter()
        r = session.post(url + "/post", json={"data": docs, "execEndpoint": "/"}, timeout=600)
        in_post += time.perf_counter() - t1
        r.raise_for_status()
        out.extend(d["embedding"] for d in r.json()["data"])
    return time.perf_counter() - t0, in_post, np.asarray(out, dtype=np.float32)


def busy_time(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of (start, end) intervals."""
    total, end = 0.0, -np.inf
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def semscale_kind(spec: str, dataset, batch_size: int, concurrency: int) -> tuple[float, float, np.ndarray, int]:
    from core.models.clip_server import ClipServerModel

    m = ClipServerModel(spec, {"max_concurrency": concurrency})
    m.check()  # connect + fingerprint: once per run, not part of the image stage
    t0 = time.perf_counter()
    batches = list(m.embed_records(dataset, list(range(len(dataset))), batch_size=batch_size, num_workers=2))
    wall = time.perf_counter() - t0
    m.close()
    return wall, busy_time(m.request_spans), np.concatenate([b.vectors for b in batches]), m.requests


def _sweep(spec: str, data: Path, labels: Path, out: Path, cache: Path, batch_size: int) -> tuple[float, dict]:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "core.cli", "sweep", "--dataset", str(data), "--labels", str(labels),
                        "--model", spec, "--templates", "plain", "--levels", "1,2,4", "--batch-size", str(batch_size),
                        "--cache-dir", str(cache), "--out", str(out), "--quiet"],
                       cwd=ROOT, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-2000:])
    return dt, json.loads((out / "run.json").read_text())


def clip_server(tmp: Path, n_images: int = 128, repeats: int = 2, concurrency: int = 4, sweep: bool = True) -> dict:
    """The benchmark; returns its figures (or {"skipped": reason})."""
    from core.data.imagefolder import load_image_folder
    from tests.clip_server_support import ClipServer, ServerUnavailable, random_weights, server_python

    if server_python() is None:
        return {"skipped": "clip-as-service's environment is not built (make clip-server-env)"}
    data = write_images(tmp / "cs-images", n_images, n_classes=8, size=(320, 240), fmt="jpg", style="photo")
    files = sorted(data.rglob("*.jpg"))
    dataset = load_image_folder(data)
    assert [r.path for r in dataset.records] == files
    try:
        server = ClipServer(random_weights(), tmp / "cs-server").start(timeout=900)
    except ServerUnavailable as e:
        return {"skipped": str(e).splitlines()[0]}
    res: dict = {"n_images": n_images, "image_size": "320x240 JPEG", "concurrency": concurrency,
                 "server": "clip-as-service 0.8.3, HTTP, 1 CPU executor (this machine)", "model": "ViT-B-32 (random)",
                 "server_ready_s": round(server.ready_s, 1), "server_first_request_s": round(server.first_request_s, 2),
                 "by_batch": {}}
    try:
        plain_loop(server.url, files[:8], 8)  # warm both sides
        for bs in BATCH_SIZES:
            plain, ours = [], []
            for _ in range(repeats):
                wall, post, emb_plain = plain_loop(server.url, files, bs)
                plain.append((wall, post))
                wall2, busy, emb_ours, n_req = semscale_kind(server.spec, dataset, bs, concurrency)
                ours.append((wall2, busy))
            # same embeddings either way (semscale's rows are normalised)
            ref = emb_plain / np.linalg.norm(emb_plain, axis=1, keepdims=True)
            diff = float(np.abs(ref - emb_ours).max())
            tp, ts = statistics.median(w for w, _ in plain), statistics.median(w for w, _ in ours)
            res["by_batch"][str(bs)] = {
                "plain_s": round(tp, 2), "semscale_s": round(ts, 2), "ratio": round(ts / tp, 3),
                "plain_images_per_s": round(n_images / tp, 1), "semscale_images_per_s": round(n_images / ts, 1),
                "plain_round_trip_share": round(statistics.median(p / w for w, p in plain), 3),
                "semscale_round_trip_share": round(statistics.median(b / w for w, b in ours), 3),
                "requests": n_req, "max_abs_diff_vs_plain": diff}
            print(json.dumps({bs: res["by_batch"][str(bs)]}), flush=True)
        if sweep:
            try:
                labels = write_labels(tmp / "cs-labels.csv", 8, 4)
                cache = tmp / "cs-cache"
                shutil.rmtree(cache, ignore_errors=True)
                n0 = server.post_count()
                first, run1 = _sweep(server.spec, data, labels, tmp / "cs-run1", cache, 32)
                n1 = server.post_count()
                again, run2 = _sweep(server.spec, data, labels, tmp / "cs-run2", cache, 32)
                n2 = server.post_count()
                res["sweep"] = {"first_s": round(first, 2), "cached_s": round(again, 2),
                                "ratio_cached_vs_first": round(again / first, 3), "levels": "1,2,4", "names": 32,
                                "requests_first": n1 - n0, "requests_cached": n2 - n1,
                                "status": [run1.get("status"), run2.get("status")]}
            except Exception as e:  # the sweep does not know the kind yet, or failed: say so, keep the rest
                res["sweep"] = {"skipped": str(e).strip().splitlines()[-1][:300]}
    finally:
        server.stop()
    return res


def markdown(r: dict) -> list[str]:
    if r.get("skipped"):
        return ["", "## CLIP server client", f"Skipped: {r['skipped']}."]
    out = ["", "## CLIP server client (clip-as-service)",
           f"{r['n_images']} {r['image_size']} images, {r['model']} on {r['server']}; server ready "
           f"{r['server_ready_s']} s after launch. semscale: {r['concurrency']} requests in flight, files read and "
           "encoded into requests on worker threads. Round-trip share: wall time with a request waiting on the "
           "server.", "",
           "| batch | plain loop | semscale | ratio (goal ≤ 1.0) | round-trip share plain / semscale | requests |",
           "|---|---|---|---|---|---|"]
    for bs, b in r["by_batch"].items():
        out.append(f"| {bs} | {b['plain_s']} s ({b['plain_images_per_s']} img/s) | {b['semscale_s']} s "
                   f"({b['semscale_images_per_s']} img/s) | **{b['ratio']:.2f}** | "
                   f"{100 * b['plain_round_trip_share']:.0f}% / {100 * b['semscale_round_trip_share']:.0f}% | "
                   f"{b['requests']} |")
    s = r.get("sweep")
    if s and not s.get("skipped"):
        out += ["", f"Sweep (levels {s['levels']}, {s['names']} names): first run {s['first_s']} s, re-run from "
                f"the cache {s['cached_s']} s (**{s['ratio_cached_vs_first']:.2f}×**; requests the server logged: "
                f"{s['requests_first']}, then {s['requests_cached']} — the connect-time fingerprint probe)."]
    elif s:
        out += ["", f"Sweep through the server: skipped ({s['skipped']})."]
    return out


if __name__ == "__main__":
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=128, help="JPEG images encoded through the server (default 128)")
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="semscale-bench-cs-") as d:
        result = clip_server(Path(d), n_images=ns.images)
    print(json.dumps(result, indent=1))
    print("\n".join(markdown(result)))
