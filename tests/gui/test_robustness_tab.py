"""The Robustness tab: accuracy vs severity from robustness.csv, a click on a point fills the
gallery with the images that perturbation broke, and the run panel's perturbation options."""

from __future__ import annotations

import pandas as pd
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from tests.conftest import CLASSES, write_image_folder
from tests.gui.conftest import shown


@pytest.fixture(scope="module")
def robust_run(tiny_model, second_checkpoint, tmp_path_factory):
    from core.models.openclip import BackboneSpec
    from core.pipeline.runner import SweepConfig, run_sweep

    cfg, ck = tiny_model
    root = tmp_path_factory.mktemp("robust-gui")
    write_image_folder(root / "images", per_class=4)
    labels = root / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in CLASSES.items() for n in ns))
    config = SweepConfig(
        dataset=str(root / "images"), out=str(root / "run"), labels=str(labels), templates="plain", levels=[1, 2],
        backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu", label="A"),
                   BackboneSpec(cfg, checkpoint=second_checkpoint, device="cpu", label="B")],
        num_workers=0, bootstrap=20, ensemble_shots=[], cache_dir=str(root / "cache"),
        perturb=["gaussian_noise:1,5", "pixelate:5", "rotation:5"])
    assert run_sweep(config).status == "completed"
    return root / "run"


@pytest.fixture
def panel(qtbot, gui_env, robust_run):
    from semscale_gui.results_panel import ResultsPanel

    p = shown(qtbot, ResultsPanel(), 1500, 850)
    qtbot.waitExposed(p)
    with qtbot.waitSignal(p.predictions_loaded, timeout=30000):
        p.open_run(robust_run)
    qtbot.waitUntil(lambda: p.gallery.source is not None, timeout=10000)
    return p


def _broken(robust_run, system, pert, sev, level) -> list[str]:
    d = pd.read_csv(robust_run / "robustness_predictions.csv")
    d = d[(d.backbone == system) & (d.perturbation == pert) & (d.severity == sev) & (d.level == level)]
    return sorted(d[(d.clean_credit == 1) & (d.credit == 0)].image)


def test_curves_follow_robustness_csv_and_a_point_click_shows_broken_images(qtbot, panel, robust_run):
    p = panel
    view = p.robustness
    p.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.perturbation.count() == 3, timeout=10000)
    rob = pd.read_csv(robust_run / "robustness.csv")
    # a perturbation and system where something broke (so the gallery has images to show)
    hit = rob[(rob.n_broken > 0) & rob.backbone.isin(["A", "B"])].sort_values("n_broken", ascending=False).iloc[0]
    view.perturbation.setCurrentText(hit.perturbation)
    view.level.setCurrentText(str(hit.level))
    sel = rob[(rob.level == hit.level) & rob.perturbation.isin([hit.perturbation, "none"])]
    assert set(view.points) == set(sel.backbone)
    for name, pts in view.points.items():  # each curve: the clean value, then each severity, in percent
        want = sel[sel.backbone == name].sort_values("severity")
        xs, ys = pts.getData()
        assert list(xs) == list(want.severity.astype(float))
        assert [round(v, 6) for v in ys] == [round(v * 100, 6) for v in want.top1]

    # a real click on the point of that system at that severity (chosen first: curves may overlap there)
    view.system.setCurrentText(hit.backbone)
    view.severity.setCurrentText("1")
    pts = view.points[hit.backbone]
    xs, ys = pts.getData()
    i = list(xs).index(float(hit.severity))
    scene = view.plot.vb.mapViewToScene(QPointF(xs[i], ys[i]))
    pos = view.view.mapFromScene(scene)
    with qtbot.waitSignal(p.gallery.filled, timeout=15000):
        qtbot.mouseClick(view.view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos.x(), pos.y()))
    want = _broken(robust_run, hit.backbone, hit.perturbation, int(hit.severity), int(hit.level))
    assert len(want) == int(hit.n_broken)
    assert f"· {hit.backbone}," in p.gallery.title.text()
    assert sorted(p.gallery.images()) == want
    assert "broke" in p.gallery.title.text() and hit.perturbation in p.gallery.title.text()

    # the button: the oracle under the strongest noise
    view.perturbation.setCurrentText("gaussian_noise")
    view.system.setCurrentText("oracle")
    view.severity.setCurrentText("5")
    with qtbot.waitSignal(p.gallery.filled, timeout=15000):
        qtbot.mouseClick(view.broken_btn, Qt.MouseButton.LeftButton)
    assert sorted(p.gallery.images()) == _broken(robust_run, "oracle", "gaussian_noise", 5, int(view.level.currentText()))


def test_a_run_without_perturbations_says_how_to_get_them(qtbot, gui_env, two_backbone_run):
    from semscale_gui.results_panel import ResultsPanel

    p = shown(qtbot, ResultsPanel(), 1200, 800)
    with qtbot.waitSignal(p.run_opened, timeout=30000):
        p.open_run(two_backbone_run)
    p.tabs.setCurrentWidget(p.robustness)
    qtbot.waitUntil(lambda: "--perturb" in p.robustness.summary.text(), timeout=5000)
    assert not p.robustness.broken_btn.isEnabled()


def test_run_panel_perturbation_options(qtbot, gui_env):
    from semscale_gui.run_panel import RunPanel

    panel = shown(qtbot, RunPanel(), 500, 900)
    opts = panel.perturb_options
    opts.name.setCurrentText("jpeg")
    opts.severities.clear()
    qtbot.keyClicks(opts.severities, "2,5")
    qtbot.mouseClick(opts.add_btn, Qt.MouseButton.LeftButton)
    opts.name.setCurrentText("contrast")
    opts.severities.clear()
    qtbot.keyClicks(opts.severities, "9")  # out of range: refused, nothing added
    qtbot.mouseClick(opts.add_btn, Qt.MouseButton.LeftButton)
    assert opts.specs() == ["jpeg:2,5"]
    assert "1 to 5" in opts.severities.toolTip()
    opts.severities.clear()
    qtbot.keyClicks(opts.severities, "1")
    qtbot.mouseClick(opts.add_btn, Qt.MouseButton.LeftButton)
    assert opts.specs() == ["jpeg:2,5", "contrast:1"]
    cfg = panel.build_config("d", "l.csv", "plain", "out")
    assert cfg.perturb == ["jpeg:2,5", "contrast:1"]
    panel.apply_config({"perturb": ["rotation:3"]})
    assert opts.specs_edit.text() == "rotation:3"
