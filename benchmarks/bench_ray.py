"""``semscale embed`` throughput: the local engine vs the Ray engine on a Ray instance on this
machine (same images, same tiny model, no embedding cache), e.g.::

    python -m benchmarks.bench_ray [n_images]

On a workstation CPU the Ray engine is *not* expected to win: it pays for starting Ray,
for actor processes that import torch and build the model, and for moving preprocessed
tensors through the object store. It exists to spread decoding over many CPUs and
encoding over many GPUs of a cluster; this benchmark measures its overhead here.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, write_images

def _tiny_model(tmp: Path) -> tuple[str, str]:
    from core.demo.tiny import write_tiny_model

    cfg, ck = write_tiny_model(tmp, "bench-tiny-clip", embed_dim=64)
    return str(cfg), str(ck)


def ray_vs_local(tmp: Path, n_images: int = 512, shard_size: int = 256, batch_size: int = 64) -> dict:
    """Images/s of ``semscale embed`` with the local engine and with Ray on this machine.

    Each engine embeds ``n_images`` and ``2 * n_images`` images; ``*_images_per_s`` is end to
    end (start-up included), ``*_marginal_images_per_s`` = n / (t(2n) - t(n)) estimates the
    rate once running (noisy: on a small machine Ray's fixed start-up cost dwarfs the
    difference). Ray's first run (cold workers) and ``ray.init`` are reported apart.
    """
    import ray

    from core.models.openclip import BackboneSpec
    from core.embedding.distributed import EmbedConfig, run_embed
    from core.embedding.store import open_store

    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    small = write_images(tmp / "bench-ray-images-n", n_images, n_classes=8, size=(96, 96), fmt="jpg")
    large = write_images(tmp / "bench-ray-images-2n", 2 * n_images, n_classes=8, size=(96, 96), fmt="jpg", seed=1)
    cfg, ck = _tiny_model(tmp)
    spec = BackboneSpec(cfg, checkpoint=ck, device="cpu")
    cpus = os.cpu_count() or 1

    def embed(engine: str, data: Path, out: str):
        return run_embed(EmbedConfig(dataset=str(data), out=str(tmp / out), backbone=spec, engine=engine,
                                     shard_size=shard_size, batch_size=batch_size, use_cache=False))

    local_n = embed("local", small, "local-n")
    local_2n = embed("local", large, "local-2n")

    t0 = time.perf_counter()
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="warning")
    t_init = time.perf_counter() - t0
    try:
        cold = embed("ray", small, "ray-cold")
        ray_n = embed("ray", small, "ray-n")  # Ray up, decode workers warm (encoder actors still start per run)
        ray_2n = embed("ray", large, "ray-2n")
    finally:
        if started:
            ray.shutdown()
    a, b = open_store(tmp / "local-n"), open_store(tmp / "ray-n")
    same_ids = a.ids == b.ids
    diff = float(np.abs(np.asarray(a.embeddings) - np.asarray(b.embeddings)).max()) if same_ids else float("nan")

    def marginal(r1, r2):
        dt = r2.seconds - r1.seconds
        return round(n_images / dt, 1) if dt > 0 else None

    return {
        "n_images": n_images, "image_size": "96x96 jpg", "shard_size": shard_size, "batch_size": batch_size,
        "cpus": cpus, "model": "random-init tiny ViT (32 px input, embed_dim 64)", "cache": "off",
        "local_seconds": round(local_n.seconds, 2),
        "local_seconds_2n": round(local_2n.seconds, 2),
        "local_images_per_s": round(local_n.images_per_second, 1),
        "local_marginal_images_per_s": marginal(local_n, local_2n),
        "ray_init_seconds": round(t_init, 2),
        "ray_first_run_seconds": round(cold.seconds, 2),
        "ray_seconds": round(ray_n.seconds, 2),
        "ray_seconds_2n": round(ray_2n.seconds, 2),
        "ray_images_per_s": round(ray_n.images_per_second, 1),
        "ray_marginal_images_per_s": marginal(ray_n, ray_2n),
        "ray_vs_local": round(ray_n.images_per_second / max(local_n.images_per_second, 1e-9), 3),
        "same_rows": same_ids and local_n.n_rows == ray_n.n_rows == n_images,
        "max_abs_diff": diff,
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 512
    with tempfile.TemporaryDirectory() as d:
        out = ray_vs_local(Path(d), n_images=n)
    print(json.dumps({"machine": machine(), "ray_vs_local": out}, indent=2))
