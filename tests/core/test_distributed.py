"""The Ray engine of ``semscale embed`` on a local Ray instance (one per module, 2 CPUs):
same embeddings as the local engine, restart after a worker failure, sweeps from its store."""

import json

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from core.cli import main  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.embedding.distributed import EmbedConfig, RayEncoder, run_embed  # noqa: E402
from core.results.runs import load_run  # noqa: E402
from core.embedding.store import open_store  # noqa: E402
from core.pipeline.runner import run_sweep  # noqa: E402
from tests.conftest import write_image_folder  # noqa: E402
from tests.core.test_store import embed_local, spec_of, sweep_config, with_bad_image, write_shards  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_local():
    """One Ray instance on this machine for the whole module (the engine reuses it)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder_stores(ray_local, tiny_model, tmp_path_factory):
    """An ImageFolder (with one corrupt file) embedded by both engines; the Ray one through the CLI."""
    tmp = tmp_path_factory.mktemp("ray-folder")
    images = with_bad_image(write_image_folder(tmp / "images", per_class=6))
    embed_local(tiny_model, str(images), tmp / "local", tmp, shard_size=7)
    cfg, ck = tiny_model
    rc = main(["embed", "--dataset", str(images), "--model", cfg, "--checkpoint", ck, "--engine", "ray",
               "--shard-size", "7", "--batch-size", "8", "--quiet", "--out", str(tmp / "ray")])
    assert rc == 0
    return tmp


@pytest.fixture(scope="module")
def shard_stores(ray_local, tiny_model, tmp_path_factory):
    """WebDataset shards embedded by the Ray engine with an encoder that fails once on the last
    store shard, then resumed; and by the local engine for reference."""
    tmp = tmp_path_factory.mktemp("ray-wds")
    wds = write_shards(tmp / "wds", n_shards=3, per_shard=8)
    pattern = str(wds / "data-{000..002}.tar")
    embed_local(tiny_model, pattern, tmp / "local", tmp, shard_size=6)
    config = EmbedConfig(dataset=pattern, out=str(tmp / "ray"), backbone=spec_of(tiny_model), engine="ray",
                         shard_size=6, batch_size=3, decode_batch_size=3)
    n_shards = -(-len(load_dataset(pattern).records) // 6)
    marker = tmp / "failed-once"
    last = n_shards - 1

    class FailingOnce(RayEncoder):  # defined here, so Ray ships it to the actors by value
        def __call__(self, batch: dict) -> dict:
            if last in set(int(s) for s in np.atleast_1d(batch["shard"])) and not marker.exists():
                marker.write_text("failed once\n")
                raise RuntimeError(f"injected encoder failure on shard {last}")
            return super().__call__(batch)

    with pytest.raises(Exception, match="injected encoder failure"):
        run_embed(config, encoder=FailingOnce)
    assert marker.exists()
    after_failure = json.loads((tmp / "ray" / "manifest.json").read_text())
    resumed = run_embed(config, encoder=FailingOnce)  # the marker exists now: the encoder no longer fails
    return {"dir": tmp, "after_failure": after_failure, "resumed": resumed, "n_shards": n_shards}


def assert_same_store(a, b):
    sa, sb = open_store(a, verify=True), open_store(b, verify=True)
    assert sa.complete and sb.complete
    assert sa.ids == sb.ids and sa.labels == sb.labels
    assert len(set(sa.ids)) == len(sa.ids)
    np.testing.assert_allclose(np.asarray(sa.embeddings), np.asarray(sb.embeddings), atol=1e-5)
    assert sorted(sa.skipped()) == sorted(sb.skipped())
    assert [s["n_rows"] for s in sa.shards] == [s["n_rows"] for s in sb.shards]
    assert sa.identity == sb.identity and sa.logit_scale == pytest.approx(sb.logit_scale)
    return sa, sb


def test_ray_matches_local_on_image_folder(folder_stores):
    local, rayed = assert_same_store(folder_stores / "local", folder_stores / "ray")
    assert len(rayed.ids) == 24 and rayed.skipped() == [("red square/zz-broken.png", "not an image (format not recognised)")]
    assert {s["engine"] for s in rayed.shards} == {"ray"} and {s["engine"] for s in local.shards} == {"local"}


def test_ray_matches_local_on_webdataset_shards_after_restart(shard_stores):
    tmp, n = shard_stores["dir"], shard_stores["n_shards"]
    failed = shard_stores["after_failure"]
    done_before = [s["index"] for s in failed["shards"]]
    assert not failed["complete"] and n - 1 not in done_before  # the failing shard was never counted
    res = shard_stores["resumed"]
    assert res.complete and res.shards_before == len(done_before) and res.shards_written == n - len(done_before)
    local, rayed = assert_same_store(tmp / "local", tmp / "ray")
    # every image exactly once: the store rows plus the skipped ones are the listing
    listing = [r.id for r in load_dataset(tmp / "wds").records]
    assert sorted(rayed.ids + [p for p, _ in rayed.skipped() if p in set(listing)]) == sorted(listing)
    assert "data-001.tar/broken" in dict(rayed.skipped())


def test_sweep_from_ray_store_matches_sweep_from_images(folder_stores, tiny_model, labels_csv, tmp_path):
    tmp = folder_stores
    a = run_sweep(sweep_config(tiny_model, tmp_path / "images", labels_csv, dataset=str(tmp / "images"),
                               backbones=[spec_of(tiny_model)], use_cache=False))
    b = run_sweep(sweep_config(tiny_model, tmp_path / "store", labels_csv, dataset="", backbones=[],
                               embeddings=[str(tmp / "ray")], use_cache=False))
    assert a.status == b.status == "completed"
    pa_, pb = load_run(tmp_path / "images").predictions, load_run(tmp_path / "store").predictions
    cols = ["image", "true_class", "level", "predicted_label", "predicted_class", "correct", "ordering", "backbone"]
    pd.testing.assert_frame_equal(pa_[cols], pb[cols])
    np.testing.assert_allclose(pa_["score"], pb["score"], atol=2e-5)
