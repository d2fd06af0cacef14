"""The results panel on an until-settled run."""

from __future__ import annotations

from tests.gui.conftest import shown


def test_header_says_the_levels_stopped_when_the_curve_settled(qtbot, gui_env, tmp_path, tiny_model, image_folder):
    """A real until-settled run opened in the results panel: the header names the candidate levels."""
    from core.models.openclip import BackboneSpec
    from core.pipeline.runner import SweepConfig, run_sweep
    from semscale_gui.results_panel import ResultsPanel
    from tests.conftest import CLASSES

    cfg, ck = tiny_model
    labels = tmp_path / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{c} {i}\n" for c in CLASSES for i in range(8)))
    out = tmp_path / "run"
    config = SweepConfig(dataset=str(image_folder), out=str(out), labels=str(labels), templates="plain",
                         backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu", label="A")],
                         levels="until-settled", num_workers=0, bootstrap=20, ensemble_shots=[])
    assert run_sweep(config).status == "completed"
    p = shown(qtbot, ResultsPanel(), 1100, 700)
    with qtbot.waitSignal(p.predictions_loaded, timeout=30000):
        p.open_run(out)
    qtbot.waitUntil(lambda: "until settled (of 1, 2, 4, 8)" in p.header.text(), timeout=10000)
    import json

    kept = json.loads((out / "run.json").read_text())["config"]["levels_resolved"]
    assert f"levels {', '.join(map(str, kept))} " in p.header.text()
