"""The worker thread: engine events become Qt signals; errors become messages."""

from __future__ import annotations

from pathlib import Path

from core.models.openclip import BackboneSpec
from core.pipeline.runner import SweepConfig


def _config(tmp_path: Path, image_folder: Path, labels_csv: Path, tiny_model, **kw) -> SweepConfig:
    cfg, ck = tiny_model
    return SweepConfig(dataset=str(image_folder), out=str(tmp_path / "run"), labels=str(labels_csv),
                       backbones=[BackboneSpec(cfg, checkpoint=ck)], templates="plain", num_workers=0,
                       cache_dir=str(tmp_path / "cache"), **kw)


def test_controller_runs_a_sweep_on_a_worker_thread(qtbot, tmp_path, image_folder, labels_csv, tiny_model):
    import threading

    from semscale_gui.worker import SweepController

    c = SweepController()
    levels, progress, threads = [], [], set()
    c.level_finished.connect(lambda ev: (levels.append(ev.level), threads.add(threading.get_ident())))
    c.progress.connect(progress.append)
    with qtbot.waitSignal(c.finished, timeout=120000) as blocker:
        c.start(_config(tmp_path, image_folder, labels_csv, tiny_model))
        assert c.running
    status, run_dir, summary = blocker.args
    assert status == "completed"
    assert levels == [1, 2, 4]
    assert threads == {threading.get_ident()}  # slots ran on the GUI thread
    assert {p.stage for p in progress} >= {"load-model", "encode-images", "score"}
    assert (Path(run_dir) / "levels.csv").is_file()
    assert "tiny-clip" in " ".join(summary["backbones"])
    assert not c.running


def test_bad_input_is_reported_as_a_message(qtbot, tmp_path, image_folder, labels_csv, tiny_model):
    from semscale_gui.worker import SweepController

    c = SweepController()
    cfg = _config(tmp_path, image_folder, labels_csv, tiny_model)
    cfg.dataset = str(tmp_path / "no-such-folder")
    with qtbot.waitSignal(c.failed, timeout=60000) as failed, qtbot.waitSignal(c.finished, timeout=60000) as done:
        c.start(cfg)
    message, details = failed.args
    assert "dataset not found" in message and "no-such-folder" in message
    assert details == ""  # an input error needs no traceback
    assert done.args[0] == "failed"
