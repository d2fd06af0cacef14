"""Run folders that never mix or vanish, process liveness, and the smaller integrity defects.

Each test here failed on the code before the fix it names.
"""

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.results import runs
from core.models.openclip import BackboneSpec, load_backbone
from core.embedding.cache import CacheUnavailable, EmbeddingCache, is_corrupt
from core.cli import main
from core.util.errors import InputError
from core.stats.external import load_external_predictions
from core.labels.labelset import load_labels, load_templates
from core.pipeline.runner import SweepConfig, run_sweep
from tests.conftest import CLASSES


def _sweep_args(tiny_model, image_folder, labels, out, *extra):
    cfg, ck = tiny_model
    return [str(a) for a in ["sweep", "--dataset", image_folder, "--labels", labels, "--model", cfg, "--checkpoint", ck,
                             "--templates", "plain", "--device", "cpu", "--workers", "0", "--bootstrap", "50",
                             "--out", out, *extra]]


def _three_backbones(tiny_model, image_folder, labels, out, *extra):
    """Three backbones (--model, and the same weights as a and b) and a frequency file: pairs, ensembles, frequency."""
    cfg, ck = tiny_model
    freq = Path(out).parent / "freq.csv"
    freq.write_text("class,frequency\n" + "".join(f"{c},{i + 1}\n" for i, c in enumerate(CLASSES)))
    bb = Path(out).parent / "backbones.csv"
    bb.write_text(f"model,checkpoint,label\n{cfg},{ck},a\n{cfg},{ck},b\n")
    return _sweep_args(tiny_model, image_folder, labels, out, "--backbones", bb, "--class-frequency", freq,
                       "--ensemble-shots", "1", "--ensemble-splits", "1", *extra)


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _comparable(d: Path) -> dict[str, object]:
    """A run folder's files and rows, without what differs between two identical runs (times, paths, pids)."""
    out: dict[str, object] = {}
    for p in sorted(d.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(d))
        if p.suffix == ".csv":
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
            out[rel] = df.drop(columns=[c for c in ("seconds",) if c in df.columns]).values.tolist()
        elif rel == "run.json":
            meta = json.loads(p.read_text())
            out[rel] = (meta["status"], sorted(meta["files"]), sorted(meta["summary"]))
        else:
            out[rel] = p.read_bytes()
    return out


def test_reused_run_folder_is_refused_and_left_untouched(tiny_model, image_folder, labels_csv, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_sweep_args(tiny_model, image_folder, labels_csv, out, "--levels", "1,2", "--no-cache")) == 0
    before = _snapshot(out)
    capsys.readouterr()
    assert main(_sweep_args(tiny_model, image_folder, labels_csv, out, "--levels", "1", "--no-cache")) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--overwrite" in err
    assert _snapshot(out) == before  # every old file byte for byte


def test_overwrite_equals_a_fresh_run(tiny_model, image_folder, labels_csv, tmp_path):
    """The second of two identical runs used to append to pairs.csv (double rows); an old run's
    frequency*.csv and logits/ survived a run without them."""
    cache = ["--cache-dir", tmp_path / "cache"]
    reused, fresh = tmp_path / "reused", tmp_path / "fresh"
    assert main(_three_backbones(tiny_model, image_folder, labels_csv, reused, "--levels", "1,2,3", *cache)) == 0
    (reused / "notes.txt").write_text("mine")  # not a run's file: kept
    assert main(_three_backbones(tiny_model, image_folder, labels_csv, reused, "--levels", "1,2,3", "--overwrite",
                               *cache)) == 0
    assert main(_three_backbones(tiny_model, image_folder, labels_csv, fresh, "--levels", "1,2,3", *cache)) == 0
    assert (reused / "notes.txt").read_text() == "mine"
    (reused / "notes.txt").unlink()
    assert _comparable(reused) == _comparable(fresh)
    assert len(pd.read_csv(reused / "pairs.csv")) == 9  # three pairs, three levels: not twice that

    # a smaller run over a bigger one leaves nothing of the bigger one
    assert main(_sweep_args(tiny_model, image_folder, labels_csv, reused, "--levels", "1", "--no-predictions",
                            "--overwrite", *cache)) == 0
    small = tmp_path / "small"
    assert main(_sweep_args(tiny_model, image_folder, labels_csv, small, "--levels", "1", "--no-predictions",
                            *cache)) == 0
    assert _comparable(reused) == _comparable(small)
    assert not (reused / "frequency.csv").exists() and not (reused / "pairs.csv").exists()


def test_unwritable_out_is_an_input_error_before_any_work(tiny_model, image_folder, labels_csv, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker / "run"
    rc = main(_sweep_args(tiny_model, image_folder, labels_csv, out, "--cache-dir", tmp_path / "cache"))
    assert rc == 2  # was 1: "unexpected error: FileNotFoundError/NotADirectoryError"
    assert str(out) in capsys.readouterr().err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())  # nothing encoded
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert main(_sweep_args(tiny_model, image_folder, labels_csv, ro / "run", "--no-cache")) == 2
        finally:
            ro.chmod(0o700)


def test_run_status_checks_liveness_without_signals(tmp_path, monkeypatch):
    """``os.kill(pid, 0)`` is Ctrl-C on Windows; liveness comes from psutil (which asks the OS
    without signals there) and the host and process start time in run.json."""
    import psutil

    asked = []
    real = psutil.pid_exists
    monkeypatch.setattr(psutil, "pid_exists", lambda pid: asked.append(pid) or real(pid))
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(done.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _check_statuses(live.pid, dead_pid, psutil.Process(live.pid).create_time())
    finally:
        live.kill()
        live.wait()
    assert dead_pid in asked and live.pid in asked


def _check_statuses(live_pid: int, dead_pid: int, started: float) -> None:
    host = socket.gethostname()
    assert runs.run_status({"status": "running", "host": host, "pid": dead_pid}) == "interrupted"
    assert runs.run_status({"status": "running", "host": host, "pid": live_pid, "pid_started": started}) == "running"
    # the pid now belongs to another process than the one that wrote the run
    assert runs.run_status({"status": "running", "host": host, "pid": live_pid,
                            "pid_started": started - 3600}) == "interrupted"
    # another machine's run cannot be checked from here: shown as written
    assert runs.run_status({"status": "running", "host": host + "-elsewhere", "pid": dead_pid}) == "running"


def test_run_json_records_pid_start_and_files(tiny_model, image_folder, labels_csv, tmp_path):
    cfg, ck = tiny_model
    res = run_sweep(SweepConfig(dataset=str(image_folder), out=str(tmp_path / "r"), labels=str(labels_csv),
                                backbones=[BackboneSpec(model=cfg, checkpoint=ck, device="cpu")], levels=[1],
                                templates="plain", num_workers=0, bootstrap=20, use_cache=False))
    meta = json.loads((Path(res.run_dir) / "run.json").read_text())
    import psutil

    assert meta["pid_started"] == pytest.approx(psutil.Process().create_time())
    assert set(meta["files"]) == {p.name for p in Path(res.run_dir).iterdir()} - {"run.json"}


def test_caller_config_is_not_changed(tiny_model, image_folder, labels_csv, tmp_path):
    """fp16 on a CPU runs as bf16; the spec (and run.json's config) used to be rewritten to bf16."""
    cfg, ck = tiny_model
    spec = BackboneSpec(model=cfg, checkpoint=ck, device="cpu", precision="fp16")
    bb = load_backbone(spec, lazy=True)
    assert spec.precision == "fp16" and bb.precision == "bf16"
    config = SweepConfig(dataset=str(image_folder), out=str(tmp_path / "r"), labels=str(labels_csv), backbones=[spec],
                         levels=[1], templates="plain", num_workers=0, bootstrap=20, use_cache=False)
    asked = config.to_dict()
    res = run_sweep(config)
    assert res.status == "completed" and config.to_dict() == asked
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["config"]["backbones"][0]["precision"] == "fp16"  # what was asked
    assert meta["backbones"][0]["precision"] == "bf16"  # what ran
    assert meta["config"]["backbones_resolved"][0]["model"] == cfg


def test_duplicates_of_undecodable_content_are_each_skipped(tiny_model, tmp_path):
    root = tmp_path / "images"
    for c in ("red square", "green circle"):
        (root / c).mkdir(parents=True)
    from tests.conftest import make_image

    for i in range(3):
        make_image("red square", i).save(root / "red square" / f"{i}.png")
        make_image("green circle", i).save(root / "green circle" / f"{i}.png")
    broken = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # a PNG header and nothing decodable
    for p in (root / "red square" / "bad.png", root / "green circle" / "bad-copy.png", root / "red square" / "bad2.png"):
        p.write_bytes(broken)
    cfg, ck = tiny_model
    res = run_sweep(SweepConfig(dataset=str(root), out=str(tmp_path / "r"), cache_dir=str(tmp_path / "cache"),
                                backbones=[BackboneSpec(model=cfg, checkpoint=ck, device="cpu")], levels=[1],
                                templates="plain", num_workers=0, bootstrap=20))
    assert res.status == "completed"
    skipped = pd.read_csv(tmp_path / "r" / "skipped.csv")
    assert set(skipped["path"]) == {"red square/bad.png", "green circle/bad-copy.png", "red square/bad2.png"}
    pred = pd.read_csv(tmp_path / "r" / "predictions.csv")
    assert len(pred) == 6 and not pred["image"].str.contains("bad").any()


def test_cache_quarantines_only_real_corruption(tmp_path, monkeypatch):
    import core.embedding.cache as cache_mod

    assert is_corrupt(sqlite3.DatabaseError("file is not a database"))
    assert is_corrupt(sqlite3.DatabaseError("database disk image is malformed"))
    assert not is_corrupt(sqlite3.OperationalError("database is locked"))
    assert not is_corrupt(sqlite3.OperationalError("database or disk is full"))
    assert not is_corrupt(sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(cache_mod, "BUSY_TIMEOUT", 0.05)
    c = EmbeddingCache(tmp_path)
    c.put_texts("a" * 64, [(("t {}", "cat"), np.ones(4, dtype=np.float32))])
    c.close()
    db = tmp_path / f"{'a' * 24}.sqlite"
    holder = sqlite3.connect(db, timeout=0.05)
    holder.execute("PRAGMA journal_mode=DELETE")  # a rollback journal: an exclusive lock blocks every reader
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CacheUnavailable, match="locked"):
            EmbeddingCache(tmp_path).get_texts("a" * 64, [("t {}", "cat")])
        assert not db.with_suffix(".sqlite.corrupt").exists()  # a healthy shared cache is never set aside
    finally:
        holder.rollback()
        holder.close()
    with EmbeddingCache(tmp_path) as again:
        assert ("t {}", "cat") in again.get_texts("a" * 64, [("t {}", "cat")])  # the entry survived


def test_validate_exit_codes(image_folder, labels_csv, tmp_path, capsys):
    assert main(["validate", "--dataset", str(image_folder), "--labels", str(labels_csv)]) == 0
    shared = tmp_path / "shared.csv"  # a name under two classes: a warning only
    shared.write_text(labels_csv.read_text() + "green circle,red square\n")
    assert main(["validate", "--dataset", str(image_folder), "--labels", str(shared)]) == 0
    missing = tmp_path / "missing.csv"  # a class of the data without names: an error
    missing.write_text("class,synonym\nred square,red square\ngreen circle,green circle\n")
    assert main(["validate", "--dataset", str(image_folder), "--labels", str(missing)]) == 2
    (image_folder / "red square" / "broken.png").write_bytes(b"not an image")
    assert main(["validate", "--dataset", str(image_folder), "--labels", str(labels_csv)]) == 2


def test_malformed_backbones_csv_names_file_and_line(tiny_model, image_folder, labels_csv, tmp_path, capsys):
    cfg, ck = tiny_model
    bad = tmp_path / "backbones.csv"
    bad.write_text(f"model,checkpoint\n{cfg},{ck}\n{cfg},{ck},extra,fields\n")
    assert main(_sweep_args(tiny_model, image_folder, labels_csv, tmp_path / "r", "--backbones", bad)) == 2
    assert f"{bad}:3:" in capsys.readouterr().err
    bad.write_text(f"model,checkpoint\n{cfg},{ck}\n,{ck}\n")
    assert main(_sweep_args(tiny_model, image_folder, labels_csv, tmp_path / "r", "--backbones", bad)) == 2
    assert f"{bad}:3: field 'model'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_template_errors_name_the_line_after_comments(tmp_path):
    f = tmp_path / "templates.txt"
    f.write_text("# my templates\n\na photo of a {}.\n# another comment\na {} with {0} braces\n")
    with pytest.raises(InputError) as e:
        load_templates(f)
    assert e.value.line == 5
    f.write_text("# header\n\n\na photo of a {}.\nno placeholder\n")
    with pytest.raises(InputError) as e:
        load_templates(f)
    assert e.value.line == 5
    f.write_text("# header\na photo of a {}.\n\nart of the {}.\n")
    assert load_templates(f) == ["a photo of a {}.", "art of the {}."]


def test_external_paths_lose_the_prefix_not_characters(tmp_path, labels_csv):
    f = tmp_path / "ext.csv"
    f.write_text("image,predicted_class\n./.hidden/a.png,red square\n././b.png,crimson block\n../c.png,lime disc\n")
    ext = load_external_predictions(f"vlm={f}", load_labels(labels_csv))
    assert set(ext.pred) == {".hidden/a.png", "b.png", "../c.png"}  # lstrip("./") gave hidden/a.png and c.png


def test_external_answer_naming_a_shared_name_is_a_tie(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("class,synonym\ntruck,truck\ntruck,motor vehicle\ncar,car\ncar,motor vehicle\n")
    f = tmp_path / "ext.csv"
    f.write_text("image,predicted_class\na.png,motor vehicle\nb.png,car\n")
    for order in (labels.read_text(), "class,synonym\ncar,car\ncar,motor vehicle\ntruck,truck\ntruck,motor vehicle\n"):
        labels.write_text(order)
        lab = load_labels(labels)
        ext = load_external_predictions(str(f), lab)
        ch = ext.choices(["a.png", "b.png", "c.png"], len(lab.classes))
        car, truck = lab.classes.index("car"), lab.classes.index("truck")
        assert ch[0, car] == ch[0, truck] == 0.5 and ch[1, car] == 1.0 and not ch[2].any()


def test_debug_flag_shows_the_traceback(monkeypatch, capsys):
    import core.models.openclip

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(core.models.openclip, "list_models", broken)
    assert main(["models"]) == 1
    assert "unexpected error: RuntimeError: boom" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="boom"):  # was: argparse rejected --debug (exit 2)
        main(["models", "--debug"])
    with pytest.raises(RuntimeError):
        main(["--debug", "models"])
