"""The ``semscale`` command line, run as a real subprocess where exit codes matter."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from core.cli import main
from core.results.runs import load_run

ROOT = Path(__file__).resolve().parents[2]


def semscale(*args, env_extra=None, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "core.cli", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def sweep_args(tiny_model, image_folder, labels, out, *extra):
    cfg, ck = tiny_model
    args = ["sweep", "--dataset", image_folder, "--labels", labels, "--model", cfg, "--checkpoint", ck,
            "--templates", "plain", "--device", "cpu", "--workers", "0", "--out", out, *extra]
    return [str(a) for a in args]


def test_sweep_end_to_end(tiny_model, image_folder, labels_csv, tmp_path, capsys):
    rc = main(sweep_args(tiny_model, image_folder, labels_csv, tmp_path / "run", "--levels", "1,2,4",
                         "--cache-dir", tmp_path / "cache"))
    assert rc == 0
    out = capsys.readouterr()
    assert out.out.strip() == str(tmp_path / "run")
    assert "level   4" in out.err and "peak top-1" in out.err
    run = load_run(tmp_path / "run")
    assert run.status == "completed"
    assert list(run.levels["level"]) == [1, 2, 4]
    assert {"level", "n_categories", "n_images", "top1", "top5", "ci_low", "ci_high"} <= set(run.levels.columns)
    assert {"image", "true_class", "level", "predicted_label", "predicted_class", "correct"} <= set(run.predictions.columns)
    assert run.levels["top1"].between(0, 1).all()
    # top1 in levels.csv is the mean of predictions.correct
    for lvl, grp in run.predictions.groupby("level"):
        assert run.levels.set_index("level").loc[lvl, "top1"] == pytest.approx(grp["correct"].mean())


@pytest.mark.parametrize("content,line", [("cat,cat\ndog\n", 2), ("class,synonym\na,b\n,c\n", 3)])
def test_malformed_labels_exit_2_with_line(tiny_model, image_folder, tmp_path, content, line):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    p = semscale(*sweep_args(tiny_model, image_folder, bad, tmp_path / "run"))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1, err
    assert f"{bad}:{line}:" in lines[0]
    assert not (tmp_path / "run").exists()  # bad input writes nothing


def test_missing_weights_message_is_helpful(image_folder, tmp_path, capsys):
    rc = main(["sweep", "--dataset", str(image_folder), "--model", "ViT-B-32", "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "--pretrained" in capsys.readouterr().err


def test_offline_pretrained_tag_explains_checkpoint(image_folder, tmp_path):
    # a subprocess, so the hub library reads HF_HUB_OFFLINE at import as it would for a user
    p = semscale("sweep", "--dataset", image_folder, "--model", "RN50", "--pretrained", "openai",
                 "--device", "cpu", "--out", tmp_path / "r", env_extra={"HF_HUB_OFFLINE": "1"})
    out, err = p.communicate(timeout=300)
    assert p.returncode == 2
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1, err
    assert "--checkpoint" in lines[0] and "demo-vit" in lines[0]
    assert not (tmp_path / "r").exists()  # found out before the run directory is written


def test_validate_and_models(image_folder, labels_csv, capsys):
    assert main(["validate", "--dataset", str(image_folder), "--labels", str(labels_csv)]) == 0
    out = capsys.readouterr().out
    assert "16 images" in out and "red square" in out
    assert main(["models", "ViT-B-32"]) == 0
    out = capsys.readouterr().out
    assert "ViT-B-32" in out and "openai" in out


def _wait_for_rows(path: Path, n: int, proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if path.exists() and len(path.read_text().splitlines()) > n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"finished before it could be interrupted: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("no levels written in time")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_interrupt_mid_sweep_keeps_finished_levels(tiny_model, image_folder, labels_csv, tmp_path, sig):
    out = tmp_path / "run"
    # many orderings make the scoring phase long enough to interrupt in the middle
    p = semscale(*sweep_args(tiny_model, image_folder, labels_csv, out, "--orderings", "3000", "--no-cache"))
    _wait_for_rows(out / "levels.csv", 3, p)
    p.send_signal(sig)
    p.communicate(timeout=120)
    run = load_run(out)
    if sig == signal.SIGINT:
        assert p.returncode == 130
        assert run.status == "cancelled"
    elif sig in (signal.SIGTERM, signal.SIGHUP):
        # what a scheduler, `timeout` or a logout sends: the process itself records the stop
        assert p.returncode == 128 + sig
        written = json.loads((out / "run.json").read_text())
        assert written["status"] == run.status == "interrupted"
        assert written["error"] == f"stopped by {signal.Signals(sig).name}"
    else:
        assert run.status == "interrupted"  # left as 'running' by a process that no longer exists
    levels = pd.read_csv(out / "levels.csv")
    assert 3 <= len(levels) < 3000 * 3
    # every finished level has all its predictions; nothing half-written is counted
    preds = pd.read_csv(out / "predictions.csv")
    done = set(zip(levels["ordering"], levels["level"]))
    counts = preds.groupby(["ordering", "level"]).size()
    for key in done:
        assert counts[key] == 16
