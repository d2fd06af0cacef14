"""The Run panel's JPEG decoding choice reaches the engine, is remembered, and restores from run.json."""

from __future__ import annotations

import json

import pandas as pd

from tests.conftest import CLASSES, make_image


def _jpeg_folder(root):
    for cls in CLASSES:
        (root / cls).mkdir(parents=True)
        for i in range(2):  # 256 px: draft decoding may take libjpeg's 1/4 scale for a 32 px model
            make_image(cls, i, size=256).save(root / cls / f"{i}.jpg", quality=90)
    return root


def test_decode_choice_runs_is_recorded_and_restored(qtbot, gui_env, tiny_spec, labels_csv, tmp_path):
    from core.pipeline.runner import run_sweep
    from semscale_gui.run_panel import RunPanel

    images = _jpeg_folder(tmp_path / "jpegs")
    w = RunPanel()
    qtbot.addWidget(w)
    assert w.decode.currentData() == "draft"  # the engine's default
    assert [w.decode.itemData(i) for i in range(w.decode.count())] == ["draft", "exact", "gpu"]
    w.backbones.set_checked([tiny_spec])
    scores = {}
    for mode in ("exact", "draft"):
        w.set_decode(mode)
        cfg = w.build_config(str(images), str(labels_csv), ["a photo of a {}."], tmp_path / f"run-{mode}", use_cache=False)
        assert [b.decode for b in cfg.backbones] == [mode]
        cfg.levels = [1]
        result = run_sweep(cfg)
        assert result.status == "completed"
        spec = json.loads((tmp_path / f"run-{mode}" / "run.json").read_text())["backbones"]
        assert [b["spec"]["decode"] for b in spec] == [mode]
        scores[mode] = pd.read_csv(tmp_path / f"run-{mode}" / "predictions.csv").sort_values("image")["score"].to_numpy()
    # reduced-scale decoding gives other pixels, hence other similarities (what the cache identity records)
    assert len(scores["draft"]) == 8 and (abs(scores["draft"] - scores["exact"]) > 1e-6).any()

    w.remember()
    again = RunPanel()
    qtbot.addWidget(again)
    assert again.decode.currentData() == "draft"  # the last choice is remembered
    again.apply_config({"backbones": [{**tiny_spec, "device": "cpu", "precision": "fp32"}]})
    assert again.decode.currentData() == "exact"  # a run from before the option decoded at full size
    again.apply_config({"backbones": [{**tiny_spec, "device": "cpu", "precision": "fp32", "decode": "gpu"}]})
    assert again.decode.currentData() == "gpu"
    again.set_running(True)
    assert not again.decode.isEnabled()
    again.set_running(False)
    assert again.decode.isEnabled()
