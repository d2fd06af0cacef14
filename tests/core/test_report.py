"""The HTML report (`semscale report`, `core.report`): its numbers are the run files' numbers,
its figures are inline SVG, it fetches nothing, and a study's report has every dataset.

Tables are read back from the HTML (stdlib parser) and compared with the CSV files and with
independent pandas/numpy recomputations of the derived tables.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.cli import build_parser, main
from tests.conftest import CLASSES, write_image_folder
from tests.report_html import frame, parse_report


@pytest.fixture(scope="module")
def report_run(tiny_model, tmp_path_factory) -> Path:
    """Two tiny backbones, a random-words control, class frequencies, one adaptive ensemble split."""
    import open_clip
    import torch

    from core.models.openclip import BackboneSpec
    from core.pipeline.runner import SweepConfig, run_sweep

    cfg, ck = tiny_model
    root = tmp_path_factory.mktemp("report-run")
    images = write_image_folder(root / "images", per_class=5)
    labels = root / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in CLASSES.items() for n in ns))
    freq = root / "freq.csv"
    freq.write_text("class,frequency\nred square,1000\ngreen circle,10\nblue triangle,300\nyellow bar,5\n")
    open_clip.add_model_config(cfg)
    torch.manual_seed(2)
    second = root / "seed2.pt"
    torch.save(open_clip.create_model("tiny-clip").state_dict(), second)
    config = SweepConfig(
        dataset=str(images), out=str(root / "run"), labels=str(labels), templates="plain", levels=[1, 2, 4],
        backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu"),
                   BackboneSpec(cfg, checkpoint=str(second), device="cpu")],
        num_workers=0, bootstrap=50, ensemble_shots=[1], ensemble_splits=2, cache_dir=str(root / "cache"),
        class_frequency=str(freq), controls=["random-words"], probe_shots=[1],
    )
    assert run_sweep(config).status == "completed"
    return root / "run"


@pytest.fixture(scope="module")
def report(report_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(report_run), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    return text, parse_report(text)


def _csv(run: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run / name, keep_default_na=False, na_values=[""])


def assert_same(shown: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Every shown column equals the file's, exactly (numbers by their data-value)."""
    assert len(shown) == len(expected), (len(shown), len(expected))
    for col in shown.columns:
        a = shown[col].reset_index(drop=True)
        b = expected[col].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            np.testing.assert_array_equal(a.astype(float).to_numpy(), b.astype(float).to_numpy(), err_msg=col)
        else:
            assert list(a.astype(str)) == list(b.astype(str)), col


def test_tables_equal_the_run_files(report, report_run):
    _, page = report
    t = page.tables
    for table_id, file in (("table-levels", "levels.csv"), ("table-significance", "levels.csv"),
                           ("table-threshold", "threshold.csv"), ("table-controls", "controls.csv"),
                           ("table-backbones", "backbones.csv"), ("table-pairs", "pairs.csv"),
                           ("table-frequency-summary", "frequency_summary.csv"),
                           ("table-frequency", "frequency.csv")):
        assert t[table_id]["source"] == file
        shown = frame(t[table_id])
        assert len(shown.columns) >= 4, table_id
        assert_same(shown, _csv(report_run, file))
    ens = _csv(report_run, "ensembles.csv")
    assert_same(frame(t["table-ensembles"]), ens[ens["k"] == 0])
    # the threshold verdict column reads as the file says, with its test
    th = frame(t["table-threshold"])
    assert set(th["trend"]) <= {"declining", "plateau", "rising"} and th["test"].str.len().min() > 0
    # the control curves are in the levels table next to the synonyms
    assert set(frame(t["table-levels"])["names"]) == {"synonyms", "random-words"}


def test_similarity_and_probe_tables_equal_their_files(report, report_run):
    _, page = report
    t = page.tables
    sim = _csv(report_run, "similarity.csv")
    assert t["table-similarity"]["source"].startswith("similarity.csv")
    assert_same(frame(t["table-similarity"]), sim[sim["scope"] == "overall"])
    probes = _csv(report_run, "probes.csv")
    assert_same(frame(t["table-probes"]), probes[probes["split"].astype(str) == "mean"])
    assert "table-robustness" not in t  # the run scored no perturbations


def test_derived_tables_recomputed_independently(report, report_run):
    _, page = report
    # adaptive ensembles: the mean, min and max over the seeded splits
    ens = _csv(report_run, "ensembles.csv")
    ada = frame(page.tables["table-adaptive"])
    for _, row in ada.iterrows():
        rows = ens[(ens["level"] == row["level"]) & (ens["method"] == row["method"]) & (ens["k"] == row["k"])]
        assert row["n_splits"] == rows["split"].nunique() == 2
        assert row["top1"] == pytest.approx(float(np.mean(rows["top1"].to_numpy())), abs=1e-15)
        assert (row["top1_min"], row["top1_max"]) == (rows["top1"].min(), rows["top1"].max())
    assert len(ada) == len(ens[ens["k"] > 0].drop_duplicates(["level", "method", "k"]))
    # per-class change: recall at level 4 minus recall at level 1, synonyms, ordering 0
    pc = _csv(report_run, "per_class.csv")
    pc = pc[(pc["names"] == "synonyms") & (pc["ordering"] == 0)]
    wide = pc.pivot_table(index=["backbone", "class"], columns="level", values="recall")
    shown = frame(page.tables["table-classes"])
    assert list(shown.columns) == ["backbone", "class", "n_images", "recall_level_1", "recall_level_4", "change"]
    assert len(shown) == len(wide) == 2 * len(CLASSES)
    for _, row in shown.iterrows():
        w = wide.loc[(row["backbone"], row["class"])]
        assert (row["recall_level_1"], row["recall_level_4"]) == (w[1], w[4])
        assert row["change"] == w[4] - w[1]
    for _, d in shown.groupby("backbone", sort=False):  # the largest drops first
        assert list(d["change"]) == sorted(d["change"])


def test_reproduce_section_has_versions_hashes_and_a_command_that_parses(report, report_run):
    _, page = report
    meta = json.loads((report_run / "run.json").read_text())
    hashes = frame(page.tables["table-checkpoints"])
    assert list(hashes["weights"]) == [b["weights"] for b in meta["backbones"]]
    assert all(w.startswith("sha256:") for w in hashes["weights"])
    assert list(hashes["identity"]) == [b["identity"] for b in meta["backbones"]]
    versions = frame(page.tables["table-versions"])
    assert dict(zip(versions["package"], versions["version"])) == {k: str(v) for k, v in meta["versions"].items()}

    from core.reporting.report import sweep_command

    line, extra = sweep_command(meta["config"])
    assert extra == ""
    args = build_parser().parse_args(shlex.split(line)[1:])
    c = meta["config"]
    assert (args.command, args.dataset, args.labels, args.templates) == ("sweep", c["dataset"], c["labels"], "plain")
    assert args.model == [f"{b['model']}={b['checkpoint']}" for b in c["backbones"]]
    assert [int(v) for v in args.levels.split(",")] == c["levels"]
    assert (args.controls, args.class_frequency, args.ensemble_shots, args.ensemble_splits, args.bootstrap) == (
        "random-words", c["class_frequency"], "1", 2, 50)
    assert args.out == c["out"]
    assert args.probe_shots == "1" and c["probe_shots"] == [1]
    # perturbations, probes, similarity and name filling come back as the CLI spells them
    line2, _ = sweep_command({**c, "perturb": ["gaussian_noise:1,3", "jpeg:5"], "probe_shots": [1, 4, "all"],
                              "probe_solver": "clip_benchmark", "similarity_k": 0, "extend_names": "wordnet",
                              "extend_to": 16})
    a2 = build_parser().parse_args(shlex.split(line2)[1:])
    assert (a2.perturb, a2.probe_shots, a2.probe_solver, a2.similarity_k, a2.extend_names, a2.extend_to) == (
        ["gaussian_noise:1,3", "jpeg:5"], "1,4,all", "clip_benchmark", 0, "wordnet", 16)
    text, _ = report
    assert line.replace("&", "&amp;") in text or line in text.replace("&#39;", "'")


def test_figures_are_inline_svg_and_nothing_is_fetched(report):
    text, page = report
    # accuracy, per-class, ensembles, frequency, and names when some name changed the credit:
    # each an <svg> inside a <figure>
    n = 4 + any(k.startswith("table-names") for k in page.tables)
    assert text.count("<svg") == text.count("<figure>") == n
    assert re.findall(r"<figure>(<svg)", text) == ["<svg"] * n
    assert {"script", "img", "link", "iframe", "object", "embed"}.isdisjoint(page.tags)
    for tag, attr, value in page.attributes:
        if attr in ("src", "srcset", "action", "poster", "data"):
            raise AssertionError(f"<{tag} {attr}={value!r}> would load something")
        if attr in ("href", "xlink:href"):
            assert value.startswith("#"), (tag, attr, value)  # in-page links and SVG references only
        if "http" in value.lower():
            assert attr.startswith("xmlns"), (tag, attr, value)  # SVG's namespace names are not requests
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", text) and "@import" not in text


def _ranked(names: pd.DataFrame, helpful: bool) -> list[tuple]:
    """Independent ranking (docs/report.md). Harmful: synonyms, ordering 0, names that cost credit or take
    images from other classes, most credit lost, then most taken, then the lowest level; helpful: the
    added names (rank > 1) that gain credit, most gained, then fewest taken. Each name's first row."""
    rows = names[(names["names"] == "synonyms") & (names["ordering"] == 0)]
    if helpful:
        rows = rows[(rows["rank"] > 1) & (rows["credit_change"] > 0)]
        key = lambda r: (-r["credit_change"], r["won_from_other_classes"], r["name"], r["level"])  # noqa: E731
    else:
        rows = rows[(rows["credit_change"] < 0) | (rows["won_from_other_classes"] > 0)]
        key = lambda r: (r["credit_change"], -r["won_from_other_classes"], r["level"])  # noqa: E731
    recs = sorted(rows.to_dict("records"), key=key)  # sorted() is stable: file order breaks the last ties
    seen, out = set(), []
    for r in recs:
        if (r["backbone"], r["class"], r["name"]) not in seen:
            seen.add((r["backbone"], r["class"], r["name"]))
            out.append((r["backbone"], r["class"], r["name"], r["level"], r["credit_change"]))
    return out[:15]


def test_names_section_ranks_names_csv_and_degrades_without_it(report, report_run, tmp_path):
    _, page = report
    names = _csv(report_run, "names.csv")  # written by the sweep
    assert len(names) and {"credit_change", "won_from_other_classes"} <= set(names.columns)
    for key, helpful in (("harmful", False), ("helpful", True)):
        expect = _ranked(names, helpful)
        if not expect:
            assert f"table-names-{key}" not in page.tables
            continue
        shown = frame(page.tables[f"table-names-{key}"])
        assert list(zip(shown["backbone"], shown["class"], shown["name"], shown["level"].astype(int),
                        shown["credit_change"])) == expect
    # from how many other classes a harmful name took its images: recounted from predictions.csv
    pred = _csv(report_run, "predictions.csv")
    pred = pred[(pred["names"] == "synonyms") & (pred["ordering"] == 0)]
    shown = frame(page.tables["table-names-harmful"])
    assert len(shown) > 0
    for _, r in shown.iterrows():
        won = pred[(pred["backbone"] == r["backbone"]) & (pred["level"] == r["level"])
                   & (pred["predicted_label"] == r["name"])]
        owners = won["predicted_classes"].fillna(won["predicted_class"]).astype(str).str.split("|")
        won = won[[r["class"] in o for o in owners]]
        assert r["n_other_classes"] == won.loc[won["true_class"] != r["class"], "true_class"].nunique()

    # hand-made rows with known effects (another curve's rows never rank here)
    run = tmp_path / "run"
    shutil.copytree(report_run, run, ignore=shutil.ignore_patterns("logits"))
    rng = np.random.default_rng(0)
    rows = []
    for bb in ("A", "B"):
        for cls, ns in CLASSES.items():
            for rank, name in enumerate(ns, 1):
                for level in (1, 2, 4):
                    if rank > level:
                        continue
                    won = int(rng.integers(0, 9))
                    other = int(rng.integers(0, won + 1))
                    rows.append({"backbone": bb, "ordering": 0, "names": "synonyms", "level": level, "class": cls,
                                 "name": name, "rank": rank, "n_owners": 1, "images_won": won,
                                 "won_correct": won - other, "won_from_other_classes": other,
                                 "credit_change": float(rng.integers(-6, 7))})
    made = pd.DataFrame(rows)
    pd.concat([made, made.assign(names="random-words", credit_change=-100.0)]).to_csv(run / "names.csv", index=False)
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    t = parse_report(out.read_text()).tables
    for key, helpful in (("harmful", False), ("helpful", True)):
        shown = frame(t[f"table-names-{key}"])
        assert 5 < len(shown) <= 15 and (not helpful or (shown["rank"] > 1).all())
        assert list(zip(shown["backbone"], shown["class"], shown["name"], shown["level"].astype(int),
                        shown["credit_change"])) == _ranked(made, helpful)

    # without names.csv: a note, no table, no figure
    (run / "names.csv").unlink()
    assert main(["report", str(run), "--out", str(out)]) == 0
    text = out.read_text()
    assert "has no names.csv" in text and not any(k.startswith("table-names") for k in parse_report(text).tables)


def test_api_report_of_a_result_and_of_a_study(report_run, tmp_path):
    import core
    from core.study.summary import write_summaries

    path = core.report(core.load_run(report_run), out=tmp_path / "api.html")
    assert path == tmp_path / "api.html" and "<svg" in path.read_text()

    # a study folder: two datasets' runs, the study's own summaries and study.json
    study = tmp_path / "study"
    runs = {}
    for name in ("shapes-a", "shapes-b"):
        runs[name] = study / "runs" / name
        shutil.copytree(report_run, runs[name], ignore=shutil.ignore_patterns("logits"))
    write_summaries(study, runs)
    (study / "study.json").write_text(json.dumps({
        "status": "completed", "study_file": str(tmp_path / "missing.toml"), "protocol": {"levels": [1, 2, 4]},
        "backbones": [], "versions": {"semscale": core.__version__},
        "datasets": [{"name": n, "path": "x", "labels": None, "status": "completed", "run_dir": f"runs/{n}"}
                     for n in runs]}))
    out = core.report(study)
    assert out == study / "report.html"
    page = parse_report(out.read_text())
    assert page.groups == ["Study summary", "Dataset shapes-a", "Dataset shapes-b"]
    assert_same(frame(page.tables["study-table-by-level"]), _csv(study, "summary_by_level.csv"))
    assert_same(frame(page.tables["study-table-thresholds"]), _csv(study, "thresholds.csv"))
    for name, d in runs.items():
        assert_same(frame(page.tables[f"ds-{name}-table-levels"]), _csv(d, "levels.csv"))
        assert_same(frame(page.tables[f"ds-{name}-table-threshold"]), _csv(d, "threshold.csv"))
    assert list(frame(page.tables["study-table-datasets"])["dataset"]) == ["shapes-a", "shapes-b"]


def test_bad_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no such run or study folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_older_run_without_names_values_and_long_tables(report_run, tmp_path):
    """A run written before control curves (empty ``names``) reads as the synonyms curve; a long
    table shows its first rows and names the file that has all."""
    from core.reporting.report import table

    run = tmp_path / "old"
    shutil.copytree(report_run, run, ignore=shutil.ignore_patterns("logits", "names.csv", "controls.csv"))
    for name in ("levels.csv", "per_class.csv"):
        df = _csv(run, name)
        df = df[df["names"] == "synonyms"].assign(names="")
        df.to_csv(run / name, index=False)
    out = tmp_path / "old.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    page = parse_report(out.read_text())
    lv = frame(page.tables["table-levels"])
    assert set(lv["names"]) == {"synonyms"} and len(lv) == len(_csv(run, "levels.csv"))
    changes = frame(page.tables["table-classes"])
    assert len(changes) == 2 * len(CLASSES)

    pc = _csv(report_run, "per_class.csv")
    t = table(pc, "x", "Per class", "per_class.csv", limit=7)
    assert len(t.rows) == 7 and f"The first 7 of {len(pc)} rows; per_class.csv has all." in t.note


def test_overwriting_a_run_removes_its_old_report(report_run, tmp_path):
    from core.results.runs import RunWriter, holds_run

    run = tmp_path / "run"
    shutil.copytree(report_run, run, ignore=shutil.ignore_patterns("logits"))
    assert main(["report", str(run)]) == 0 and (run / "report.html").exists()
    (run / "notes.txt").write_text("mine")
    RunWriter(run, {"dataset": "x"}, overwrite=True).finish("completed")
    assert not (run / "report.html").exists() and (run / "notes.txt").read_text() == "mine"
    assert holds_run(run)


def test_rebuilt_command_covers_labels_template_lists_and_switches():
    """The command the report rebuilds parses back to the options of the config it came from."""
    from core.reporting.report import sweep_command

    config = {"dataset": "my data/images", "labels": "labels.csv", "mode": "pooled", "orderings": 3, "seed": 7,
              "templates": ["a photo of a {}.", "a sketch of a {}."], "levels": [1, 4], "bootstrap": 200,
              "ensemble_shots": [], "save_predictions": False, "save_names": False, "out": "runs/x",
              "backbones": [{"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "label": "vit", "device": "cuda",
                             "precision": "fp16", "decode": "exact"},
                            {"model": "RN50", "checkpoint": "w.pt", "label": None, "device": "cuda",
                             "precision": "fp16", "decode": "exact"}]}
    line, extra = sweep_command(config)
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert args.dataset == "my data/images" and args.backbones == "backbones.csv" and args.templates == "templates.txt"
    assert (args.mode, args.orderings, args.seed, args.levels, args.bootstrap) == ("pooled", 3, 7, "1,4", 200)
    assert args.ensemble_shots == "" and args.no_predictions and args.no_names_table
    assert (args.device, args.precision, args.decode, args.out) == ("cuda", "fp16", "exact", "runs/x")
    csv_part, templates = extra.split("\ntemplates.txt:\n")
    rows = pd.read_csv(io.StringIO(csv_part), keep_default_na=False)
    assert rows.to_dict("records") == [
        {"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "checkpoint": "", "label": "vit"},
        {"model": "RN50", "pretrained": "", "checkpoint": "w.pt", "label": ""}]
    assert templates.splitlines() == config["templates"]
