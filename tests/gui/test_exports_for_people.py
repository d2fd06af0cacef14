"""Exports the app offers for people neutralise values a spreadsheet would run as formulas;
the run files themselves stay exact."""

from __future__ import annotations

import pandas as pd
from PySide6.QtGui import QGuiApplication

from tests.gui.conftest import shown

LABELS = ('class,synonym\nred square,=HYPERLINK("http://x.example")\ngreen circle,+cmd\nblue triangle,@SUM(1)\n'
          "yellow bar,-dash\n")


def test_export_csvs_gallery_and_clipboard_neutralise_formulas(qtbot, gui_env, tiny_model, image_folder, tmp_path):
    from core.models.openclip import BackboneSpec
    from core.results.runs import load_run
    from core.pipeline.runner import SweepConfig, run_sweep
    from semscale_gui.gallery import GalleryPanel
    from core.results.views import ResultsData
    from semscale_gui.results_panel import ResultsPanel

    cfg, ck = tiny_model
    labels = tmp_path / "labels.csv"
    labels.write_text(LABELS, encoding="utf-8")
    run_dir = tmp_path / "run"
    run_sweep(SweepConfig(dataset=str(image_folder), out=str(run_dir), labels=str(labels), templates="plain",
                          levels=[1], backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu")], num_workers=0,
                          bootstrap=20, ensemble_shots=[]))
    exact = pd.read_csv(run_dir / "predictions.csv", keep_default_na=False)
    assert set(exact["predicted_label"]) <= {'=HYPERLINK("http://x.example")', "+cmd", "@SUM(1)", "-dash"}

    p = shown(qtbot, ResultsPanel(), 900, 600)
    p.results = ResultsData.from_run(load_run(run_dir))
    files = {f.name: f for f in p.export_csvs(tmp_path / "exported")}
    people = pd.read_csv(files["predictions.csv"], keep_default_na=False)
    assert list(people["predicted_label"]) == ["'" + v for v in exact["predicted_label"]]
    assert list(people["image"]) == list(exact["image"]) and list(people["score"]) == list(exact["score"])
    assert (files["run.json"].read_bytes() == (run_dir / "run.json").read_bytes())  # not a table: as it is
    assert (run_dir / "predictions.csv").read_text().count("'=HYPERLINK") == 0  # the run file is untouched

    g = shown(qtbot, GalleryPanel(), 900, 600)
    rows = exact.assign(group="all").head(3)
    rows.loc[0, "image"] = "=cmd.png"  # a relative image id that starts like a formula
    g.model.set_rows(rows, {})
    got = pd.read_csv(g.export_csv(tmp_path / "gallery.csv"), keep_default_na=False)
    assert list(got["predicted_label"]) == ["'" + v for v in rows["predicted_label"]]
    assert got["image"][0] == "'=cmd.png" and list(got["image"][1:]) == list(rows["image"][1:])
    g.copy_paths()
    assert QGuiApplication.clipboard().text().splitlines()[0] == "'=cmd.png"
