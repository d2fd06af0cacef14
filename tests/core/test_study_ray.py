"""A study with the Ray engine: images are embedded into stores on Ray, then scored as usual."""

from __future__ import annotations

import json

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from core.study.study import StudyOptions, load_study, run_study  # noqa: E402
from core.study.summary import read_csv  # noqa: E402

pytestmark = pytest.mark.slow


def test_ray_engine_matches_local_and_is_an_engine_detail(tiny_model, image_folder, labels_csv, tmp_path):
    cfg, ck = tiny_model
    study = tmp_path / "study.toml"
    study.write_text(f'levels = [1, 2]\ntemplates = "plain"\nensemble_shots = []\n\n'
                     f'[[backbones]]\nmodel = "{cfg}"\ncheckpoint = "{ck}"\nlabel = "tiny"\n\n'
                     f'[[datasets]]\nname = "shapes"\npath = "{image_folder}"\nlabels = "{labels_csv}"\n')
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        res = run_study(load_study(study), StudyOptions(out=str(tmp_path / "ray"), engine="ray", use_cache=False,
                                                        num_workers=0))
    finally:
        ray.shutdown()
    assert res.status == "completed"
    store = tmp_path / "ray" / "embeddings" / "shapes" / "tiny"
    assert json.loads((store / "manifest.json").read_text())["shards"]
    run = json.loads((tmp_path / "ray" / "runs" / "shapes" / "run.json").read_text())
    assert run["config"]["embeddings"] == [str(store)]
    local = run_study(load_study(study), StudyOptions(out=str(tmp_path / "local"), use_cache=False, num_workers=0))
    assert local.status == "completed"
    a = read_csv(tmp_path / "ray" / "summary.csv")
    b = read_csv(tmp_path / "local" / "summary.csv")
    np.testing.assert_allclose(a["top1"], b["top1"], atol=1e-9)
    assert a["n_images"].tolist() == b["n_images"].tolist()
    # which engine embedded the images does not change the protocol: a local re-run skips the dataset
    again = run_study(load_study(study), StudyOptions(out=str(tmp_path / "ray"), use_cache=False, num_workers=0))
    assert again.datasets["shapes"]["plan"] == "skip"
