"""The clip-server kind against a REAL clip-as-service 0.8.3 server on 127.0.0.1.

One server (random-initialised ViT-B-32 weights saved locally, HTTP gateway) is started for the
whole module: its first answer is slow. Skipped, with the reason, when the server's own
environment is not built (``make clip-server-env``).
"""

from __future__ import annotations

import io
import json
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.data.imagefolder import load_image_folder
from core.models.openclip import load_backbone
from core.util.config import BackboneSpec
from core.models.clip_server import ClipServerModel, image_data_uri
from tests.clip_server_support import ENV_DIR, ClipServer, ServerUnavailable, random_weights, server_python

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(server_python() is None,
                       reason=f"clip-as-service's environment is not built ({ENV_DIR}): run `make clip-server-env`"),
]

PROMPTS = ["a photo of a cat.", "a photo of a dog.", "a blurry photo of a red double-decker bus.", "itap of a kite."]


@pytest.fixture(scope="module")
def weights() -> Path:
    return random_weights()


@pytest.fixture(scope="module")
def server(weights, tmp_path_factory):
    srv = ClipServer(weights, tmp_path_factory.mktemp("clip-server"), protocol="http", grpc=True)
    try:
        srv.start(timeout=600)
    except ServerUnavailable as e:
        pytest.fail(f"the real clip-as-service server did not start: {e}")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def local(weights):
    """semscale's own in-process open_clip model with the same weights."""
    return load_backbone(BackboneSpec(model="ViT-B-32", checkpoint=str(weights), device="cpu", precision="fp32"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """JPEG and PNG photos of sizes other than the model's 224 (the server resizes them itself), an RGBA
    PNG and an EXIF-rotated JPEG (both sent as PNGs of semscale's decode)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    for cls, sizes in {"cat": [(320, 240), (200, 300)], "dog": [(257, 257), (640, 180)]}.items():
        (root / cls).mkdir()
        for j, (w, h) in enumerate(sizes):
            y, x = np.mgrid[0:h, 0:w]
            arr = np.stack([x * 255 // w, y * 255 // h, (x * y) % 256], -1) + rng.integers(0, 40, (h, w, 3))
            img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
            img.save(root / cls / f"{j}.{'jpg' if j == 0 else 'png'}", **({"quality": 92} if j == 0 else {}))
    rgba = np.dstack([rng.integers(0, 255, (150, 190, 3)), np.full((150, 190), 140)]).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(root / "cat" / "alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown
    Image.fromarray(rng.integers(0, 255, (120, 260, 3), dtype=np.uint8), "RGB").save(
        root / "dog" / "rotated.jpg", exif=exif, quality=95)
    return root


def test_server_embeddings_equal_local_open_clip(server, local, photos):
    """(a) text and image embeddings, normalised client-side, equal the in-process model's (≤ 1e-5)."""
    model = ClipServerModel(server.spec, {"max_concurrency": 2})
    model.check()
    assert model.embed_dim == local.embed_dim == 512

    got_text = model.encode_texts(PROMPTS)
    want_text = local.encode_texts(PROMPTS).numpy()
    text_diff = float(np.abs(got_text - want_text).max())

    ds = load_image_folder(photos)
    idx = list(range(len(ds)))
    batches = list(model.encode_records(ds, idx, batch_size=4, num_workers=2))
    assert [i for b in batches for i in b.indices] == idx and not any(b.skipped for b in batches)
    got_img = np.concatenate([b.vectors for b in batches])
    want_img = local.encode_images(torch.stack([local.preprocess(ds.open(i)) for i in idx])).numpy()
    img_diff = float(np.abs(got_img - want_img).max())

    print(f"\nparity max |diff|: text {text_diff:.2e}, image {img_diff:.2e}")
    assert text_diff <= 1e-5 and img_diff <= 1e-5
    # rows are unit vectors, as the local path's
    assert np.allclose(np.linalg.norm(got_img, axis=1), 1.0, atol=1e-6)
    # one request per batch of documents (the connect probe is counted apart)
    assert model.probe_requests == 1 and model.requests == math.ceil(len(PROMPTS) / model.options["text_batch_size"]) + math.ceil(len(idx) / 4)
    # the rotated JPEG and the RGBA PNG travel as PNGs of semscale's decode, the others as their own bytes
    for i, rec in enumerate(ds.records):
        uri = image_data_uri(ds, i)
        own = rec.id.endswith(("0.jpg", "1.png"))
        assert uri.startswith("data:image/jpeg" if rec.id.endswith("0.jpg") else "data:image/png")
        if not own:
            import base64
            sent = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
            assert np.array_equal(np.asarray(sent), np.asarray(ds.open(i)))


def test_fingerprint_is_stable_across_connections_and_urls(server):
    a = ClipServerModel(server.spec)
    b = ClipServerModel(server.spec.replace("127.0.0.1", "localhost"))
    a.check()
    b.check()
    assert a.fingerprint == b.fingerprint and a.identity == b.identity
    assert a.describe()["url"] != b.describe()["url"]
    d = a.describe()
    assert (d["protocol"], d["embed_dim"]) == ("http", 512) and len(d["fingerprint"]) == 64


GRPC_CLIENT = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from core.models.clip_server import ClipServerModel
m = ClipServerModel(sys.argv[2], {"max_concurrency": 2, "text_batch_size": 3})
m.check()
np.save(sys.argv[3], m.encode_texts(json.loads(sys.argv[4])))
print(json.dumps({"fingerprint": m.fingerprint, "requests": m.requests, "describe": m.describe()}))
"""


def test_grpc_gives_the_same_embeddings_and_fingerprint(server, local, tmp_path):
    """clip-server:grpc://… through clip-as-service's client. semscale's own environment normally lacks
    that optional extra, so the same client code runs in the server's environment (which has it)."""
    http = ClipServerModel(server.spec)
    http.check()
    try:
        import clip_client  # noqa: F401
        in_process = True
    except Exception:
        in_process = False
    out = tmp_path / "grpc.npy"
    if in_process:
        m = ClipServerModel(server.grpc_spec, {"max_concurrency": 2, "text_batch_size": 3})
        m.check()
        np.save(out, m.encode_texts(PROMPTS))
        info = {"fingerprint": m.fingerprint, "requests": m.requests, "describe": m.describe()}
    else:
        root = str(Path(__file__).resolve().parents[2])
        p = subprocess.run([str(server.python), "-W", "ignore", "-c", GRPC_CLIENT, root, server.grpc_spec, str(out),
                            json.dumps(PROMPTS)], capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
        info = json.loads(p.stdout.strip().splitlines()[-1])
    got = np.load(out)
    assert info["fingerprint"] == http.fingerprint  # the probe's image went through gRPC too
    assert info["describe"]["protocol"] == "grpc" and info["requests"] == 2
    assert float(np.abs(got - local.encode_texts(PROMPTS).numpy()).max()) <= 1e-5


# ------------------------------------------------------------------ the sweep through the server

CLASSES = {"red": ["red", "crimson", "scarlet"], "green": ["green", "lime"], "blue": ["blue", "navy", "azure"],
           "yellow": ["yellow", "golden"]}


@pytest.fixture(scope="module")
def sweep_data(tmp_path_factory):
    """4 classes x 5 PNG images (160x120, class-coloured noise) and a labels file with 2-3 names a class."""
    root = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(11)
    colours = {"red": (210, 40, 30), "green": (40, 190, 50), "blue": (30, 50, 210), "yellow": (220, 210, 40)}
    for cls, rgb in colours.items():
        (root / "images" / cls).mkdir(parents=True)
        for i in range(5):
            arr = np.clip(np.array(rgb) + rng.normal(0, 30, (120, 160, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr, "RGB").save(root / "images" / cls / f"{i}.png")
    labels = root / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in CLASSES.items() for n in ns))
    return root / "images", labels


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os
    import sys

    return subprocess.run([sys.executable, "-m", "core.cli", "sweep", *args], capture_output=True, text=True,
                          timeout=900, cwd=Path(__file__).resolve().parents[2],
                          env={**os.environ, **(env or {})})


def _predictions(run: Path):
    import pandas as pd

    df = pd.read_csv(run / "predictions.csv")
    return df.sort_values(["level", "image"])[["image", "level", "predicted_label", "predicted_class", "correct"]]


def test_sweep_through_the_server_equals_the_local_checkpoint_and_reruns_from_the_cache(server, weights, sweep_data,
                                                                                       tmp_path):
    """(b) a 2-level sweep through clip-server:http://… predicts what --model ViT-B-32 --checkpoint W predicts;
    (c) a second run with the same cache sends the server no encode request (counted in its access log)."""
    images, labels = sweep_data
    common = ["--dataset", str(images), "--labels", str(labels), "--levels", "1,2", "--templates", "plain",
              "--bootstrap", "50", "--quiet"]
    local = _cli(*common, "--model", "ViT-B-32", "--checkpoint", str(weights), "--device", "cpu",
                 "--out", str(tmp_path / "local"), "--cache-dir", str(tmp_path / "cache-local"))
    assert local.returncode == 0, local.stderr[-2000:]
    before = server.post_count()
    first = _cli(*common, "--model", server.spec, "--batch-size", "4", "--max-concurrency", "3",
                 "--out", str(tmp_path / "remote"), "--cache-dir", str(tmp_path / "cache"))
    assert first.returncode == 0, first.stderr[-2000:]
    n_first = server.post_count() - before
    pl, pr = _predictions(tmp_path / "local"), _predictions(tmp_path / "remote")
    assert len(pl) == 2 * 20 and pl.reset_index(drop=True).equals(pr.reset_index(drop=True))
    # 1 probe + 5 image requests (20 images, 4 per request) + the prompts' requests
    assert n_first >= 1 + 5

    run = json.loads((tmp_path / "remote" / "run.json").read_text())
    b = run["backbones"][0]
    assert (b["kind"], b["url"], b["protocol"], b["embed_dim"]) == ("clip-server", server.url, "http", 512)
    assert len(b["fingerprint"]) == 64 and "does not apply" in b["decode"]
    assert b["options"]["max_concurrency"] == 3

    before = server.post_count()
    again = _cli(*common, "--model", server.spec, "--out", str(tmp_path / "again"), "--cache-dir", str(tmp_path / "cache"))
    assert again.returncode == 0, again.stderr[-2000:]
    assert server.post_count() - before == 1  # the connect-time fingerprint probe only
    assert _predictions(tmp_path / "again").reset_index(drop=True).equals(pr.reset_index(drop=True))


def test_server_killed_mid_sweep_fails_clearly_keeps_finished_work_and_resumes(server, weights, sweep_data, tmp_path):
    """(d) the server dies after the first image request: a clear error naming the server, the local backbone's
    finished levels kept, the cached embeddings kept; after a restart the same call completes, sending only what
    was missing."""
    import pandas as pd

    from core import api
    from core.util.config import BackboneSpec
    from core.util.events import Log, Progress, Stage

    images, labels = sweep_data
    local = BackboneSpec(model="ViT-B-32", checkpoint=str(weights), device="cpu", decode="exact")
    remote = BackboneSpec(model=server.spec, options={"retries": 1, "backoff": 0.1, "max_concurrency": 2})
    out, cache = tmp_path / "run", tmp_path / "cache"

    def kill_after_first_batch(ev):
        if isinstance(ev, Progress) and ev.stage == Stage.ENCODE_IMAGES and ev.backbone == remote_name and ev.done:
            server.kill()

    remote_name = server.spec  # the display name of a server backbone is its spec
    kwargs = dict(levels=[1, 2], templates="plain", out=out, cache_dir=cache, bootstrap=50, batch_size=4)
    with pytest.raises(Exception) as e:
        api.sweep(images, labels, backbones=[local, remote], emit=kill_after_first_batch, **kwargs)
    assert server.url in str(e.value) and "run the same command again" in str(e.value)
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and server.url in run["error"]
    kept = pd.read_csv(out / "levels.csv")
    assert sorted(kept["level"]) == [1, 2] and set(kept["backbone"]) == {local.display}

    server.restart()
    before = server.post_count()
    logs: list[str] = []
    api.sweep(images, labels, backbones=[local, remote], overwrite=True,
              emit=lambda ev: logs.append(ev.message) if isinstance(ev, Log) else None, **kwargs)
    sent = server.post_count() - before
    assert json.loads((out / "run.json").read_text())["status"] == "completed"
    found = [m for m in logs if m.startswith(remote_name) and "found in the cache" in m]
    n_cached = int(re.search(r"(\d+) of 20 images found in the cache", found[0]).group(1))
    assert 4 <= n_cached < 20  # the batches finished before the kill were kept
    # the probe, the images that were missing (4 a request), the 8 prompts in one request: nothing paid twice
    assert sent == 1 + math.ceil((20 - n_cached) / 4) + 1
    levels = pd.read_csv(out / "levels.csv")
    assert set(levels["backbone"]) == {local.display, remote_name}
    both = levels.pivot_table(index="level", columns="backbone", values="top1")
    assert np.allclose(both[local.display], both[remote_name])
