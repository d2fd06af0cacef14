"""The app never reuses a run folder, and its confusion matrix follows the tie policy."""

import numpy as np
import pandas as pd

from core.results.views import confusion


def test_confusion_splits_tied_predictions():
    classes = ["car", "truck", "bus"]
    pred = pd.DataFrame({
        "image": ["a", "b", "c", "d"], "level": 2, "backbone": "x", "ordering": 0,
        "true_class": ["car", "car", "truck", "bus"],
        "predicted_class": ["car", "car", "car", "bus"],  # the first owner by name, for display only
        "predicted_classes": ["car", "car|truck", "car|truck", "bus"],
        "n_owners": [1, 2, 2, 1],
    })
    expected = np.array([[1.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 1]])
    np.testing.assert_array_equal(confusion(pred, classes, 2, "x"), expected)
    # the diagonal share is the credit-based recall
    m = confusion(pred, classes, 2, "x")
    assert np.diag(m).sum() / m.sum() == (1 + 0.5 + 0.5 + 1) / 4
    untied = pred.assign(predicted_classes=pred["predicted_class"], n_owners=1)
    assert confusion(untied, classes, 2, "x").dtype == np.int64


def test_each_run_gets_a_new_folder(qtbot, main_window, tmp_path):
    panel = main_window.run_panel
    panel.out_dir.setText(str(tmp_path / "runs"))
    first = panel.new_run_dir("demo")
    first.mkdir(parents=True)
    (first / "run.json").write_text("{}")
    second = panel.new_run_dir("demo")
    assert second != first and not second.exists() and second.parent == first.parent
    cfg = panel.build_config(str(tmp_path), str(tmp_path / "labels.csv"), ["a {}."], second)
    assert cfg.overwrite is False  # the engine refuses a folder that holds a run; the app never asks it to replace one


def test_the_app_reads_the_tie_columns(tmp_path):
    from semscale_gui.results_panel import read_predictions

    p = tmp_path / "predictions.csv"
    p.write_text("image,true_class,level,predicted_label,predicted_class,correct,ordering,backbone,score,credit,"
                 "n_owners,predicted_classes\na,car,2,motor vehicle,car,0,0,x,0.3,0.5,2,car|truck\n")
    df = read_predictions(p)
    assert df.loc[0, "predicted_classes"] == "car|truck" and df.loc[0, "n_owners"] == 2
    np.testing.assert_array_equal(confusion(df, ["car", "truck"], 2, "x"), [[0.5, 0.5], [0, 0]])
