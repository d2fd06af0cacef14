"""Races, full disks, malformed CSVs, out-of-range options, open ports, formulas, ids: each
attack on the released version reproduced, and the promise that now holds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from core.errors import InputError
from core.events import LevelFinished, Log
from core.runs import CLAIM_FILE, load_run
from core.sweep import SweepConfig, run_sweep
from tests.conftest import CLASSES

ROOT = Path(__file__).resolve().parents[2]


def _config(tiny_model, images, labels, out, **kw) -> SweepConfig:
    from core.config import BackboneSpec

    cfg, ck = tiny_model
    return SweepConfig(dataset=str(images), out=str(out), labels=str(labels), templates="plain",
                       backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu")],
                       num_workers=0, bootstrap=20, ensemble_shots=[], **{"levels": [1, 2, 4], **kw})


# ---------------------------------------------------------------- 1. two sweeps, one folder

RACER = r"""
import sys, time
from pathlib import Path
from core import sweep
from core.errors import InputError
from core.events import Log

me, other, cfg, ck, images, labels, out, cache = sys.argv[1:]
first = []

def meet(event):
    # both processes have checked the folder and resolved their inputs: start writing together
    if isinstance(event, Log) and not first:
        first.append(1)
        Path(me).touch()
        deadline = time.time() + 120
        while not Path(other).exists() and time.time() < deadline:
            time.sleep(0.001)

try:
    sweep(images, labels, backbones=[f"{cfg}={ck}"], levels=[1, 2], templates="plain", out=out, device="cpu",
          num_workers=0, bootstrap=20, ensemble_shots=[], cache_dir=cache, emit=meet)
except InputError as e:
    print(f"refused: {e}", file=sys.stderr)
    sys.exit(2)
"""


def test_two_simultaneous_sweeps_into_one_folder_one_is_refused(tiny_model, image_folder, labels_csv, tmp_path):
    """Attack 1: two processes pass the folder check together; exactly one may write the folder."""
    cfg, ck = tiny_model
    out = tmp_path / "run"
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"m{i}"), str(tmp_path / f"m{1 - i}"),
                               cfg, ck, str(image_folder), str(labels_csv), str(out), str(tmp_path / f"cache{i}")],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    refused = next(err for rc, err in results if rc == 2)
    assert "another run is writing into this folder" in refused or "already holds a run" in refused
    run = load_run(out)
    n_images = sum(1 for _ in image_folder.rglob("*.png"))
    assert run.status == "completed"
    assert len(run.predictions) == n_images * 2  # one run's rows, not two
    assert len(run.levels) == 2 and len(run.tables["threshold"]) == 1
    assert not (out / CLAIM_FILE).exists()  # released when the run ended


def test_overwrite_of_a_folder_a_live_run_writes_is_refused(tiny_model, image_folder, labels_csv, tmp_path):
    """A second run (even with overwrite) never removes or mixes into the files of a run still writing."""
    out = tmp_path / "run"
    paused, go = threading.Event(), threading.Event()

    def hold(event):
        if isinstance(event, LevelFinished) and not paused.is_set():
            paused.set()
            go.wait(60)

    result = {}
    t = threading.Thread(target=lambda: result.setdefault("a", run_sweep(
        _config(tiny_model, image_folder, labels_csv, out, cache_dir=str(tmp_path / "c1")), emit=hold)))
    t.start()
    try:
        assert paused.wait(120)
        claim = json.loads((out / CLAIM_FILE).read_text())
        assert claim["pid"] == os.getpid()
        with pytest.raises(InputError, match="another run is writing into this folder"):
            run_sweep(_config(tiny_model, image_folder, labels_csv, out, overwrite=True,
                              cache_dir=str(tmp_path / "c2")))
        # the command line says the same, exit 2, one line
        cfg, ck = tiny_model
        p = subprocess.run([sys.executable, "-m", "core.cli", "sweep", "--dataset", image_folder, "--labels", labels_csv,
                            "--model", cfg, "--checkpoint", ck, "--templates", "plain", "--device", "cpu",
                            "--workers", "0", "--out", out, "--overwrite", "--cache-dir", tmp_path / "c3"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert p.returncode == 2 and "another run is writing into this folder" in p.stderr
        assert p.stderr.strip().splitlines()[-1].startswith("semscale: error: ")
    finally:
        go.set()
        t.join(120)
    assert result["a"].status == "completed"
    run = load_run(out)
    n_images = sum(1 for _ in image_folder.rglob("*.png"))
    assert len(run.predictions) == n_images * 3 and set(run.levels["level"]) == {1, 2, 4}
    assert not (out / CLAIM_FILE).exists()


def test_a_claim_left_by_a_dead_process_is_taken_over(tiny_model, image_folder, labels_csv, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / CLAIM_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "pid_started": 1.0}))
    assert run_sweep(_config(tiny_model, image_folder, labels_csv, out, levels=[1])).status == "completed"
    assert not (out / CLAIM_FILE).exists()
