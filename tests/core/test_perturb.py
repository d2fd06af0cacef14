"""Perturbations (core.data.perturb) checked against independent computations, and a real tiny
robustness sweep whose robustness.csv is recomputed from its per-image rows."""

from __future__ import annotations

import colorsys
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy import stats

from core.data.perturb import (FRAME, NAMES, PARAMETERS, Perturbation, PerturbedDataset, disk_kernel, frame,
                               image_seed, motion_kernel_weights, parse_perturbations, perturb_pil, perturb_tensor,
                               pixelate_size)
from core.util.errors import InputError
from tests.conftest import CLASSES, write_image_folder


def _image(seed=0, h=FRAME, w=FRAME, lo=40, hi=216) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(lo, hi, (3, h, w), dtype=np.uint8))


def _flat(value=128) -> torch.Tensor:
    return torch.full((3, FRAME, FRAME), value, dtype=torch.uint8)


# ---------------------------------------------------------------- parsing


def test_parse_names_severities_and_errors():
    got = parse_perturbations(["gaussian_noise:1,3,5", "jpeg:5", "jpeg:5", "Motion-Blur:2"])
    assert [str(p) for p in got] == ["gaussian_noise:1", "gaussian_noise:3", "gaussian_noise:5", "jpeg:5", "motion_blur:2"]
    assert [p.severity for p in parse_perturbations("contrast")] == [1, 2, 3, 4, 5]
    with pytest.raises(InputError) as e:
        parse_perturbations(["snow:3"])
    assert "unknown perturbation 'snow'" in str(e.value) and all(n in str(e.value) for n in NAMES)
    assert e.value.field == "perturb"
    for bad, why in (("jpeg:6", "out of range"), ("jpeg:0", "out of range"), ("jpeg:x", "not a whole number")):
        with pytest.raises(InputError, match=why):
            parse_perturbations([bad])


def test_parameter_table_is_imagenet_c():
    """The ImageNet-C values (Hendrycks & Dietterich 2019, make_imagenet_c.py)."""
    assert PARAMETERS["gaussian_noise"] == (0.08, 0.12, 0.18, 0.26, 0.38)
    assert PARAMETERS["shot_noise"] == (60, 25, 12, 5, 3)
    assert PARAMETERS["impulse_noise"] == (0.03, 0.06, 0.09, 0.17, 0.27)
    assert PARAMETERS["jpeg"] == (25, 18, 15, 10, 7)
    assert PARAMETERS["contrast"] == (0.4, 0.3, 0.2, 0.1, 0.05)
    assert PARAMETERS["brightness"] == (0.1, 0.2, 0.3, 0.4, 0.5)
    assert PARAMETERS["pixelate"] == (0.6, 0.5, 0.4, 0.3, 0.25)
    assert PARAMETERS["defocus_blur"][0] == (3, 0.1) and PARAMETERS["defocus_blur"][4] == (10, 0.5)
    assert PARAMETERS["gaussian_blur"] == (1, 2, 3, 4, 6)


# ---------------------------------------------------------------- each operation


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_gaussian_noise_std(severity):
    """Mid-grey (no clipping): the added noise has ImageNet-C's std, in 8-bit units, and mean 0."""
    out = perturb_tensor(_flat(128), Perturbation("gaussian_noise", severity), seed=11).float()
    noise = (out - 128) / 255
    c = PARAMETERS["gaussian_noise"][severity - 1]
    clipped = (out == 0) | (out == 255)
    if severity == 1:
        assert not clipped.any()
        assert noise.std().item() == pytest.approx(c, rel=0.02)
        assert abs(noise.mean().item()) < 0.01
        assert stats.normaltest(noise.flatten().numpy()[:20000]).pvalue > 1e-4
    else:  # clipping shrinks the spread; the unclipped share matches a normal's
        share = (~clipped).float().mean().item()
        assert share == pytest.approx(stats.norm.cdf(127.5 / 255 / c) - stats.norm.cdf(-128.5 / 255 / c), abs=0.01)


def test_shot_noise_is_poisson():
    """Poisson(x c) / c: mean x, variance x / c (in [0, 1] units)."""
    x = 0.5
    c = PARAMETERS["shot_noise"][0]
    out = perturb_tensor(_flat(round(x * 255)), Perturbation("shot_noise", 1), seed=3).float() / 255
    xv = round(x * 255) / 255
    assert out.mean().item() == pytest.approx(xv, abs=0.005)
    assert out.var().item() == pytest.approx(xv / c, rel=0.05)


def test_impulse_noise_share():
    out = perturb_tensor(_flat(128), Perturbation("impulse_noise", 4), seed=5)
    changed = (out != 128)
    assert changed.float().mean().item() == pytest.approx(PARAMETERS["impulse_noise"][3], abs=0.005)
    assert set(out[changed].unique().tolist()) == {0, 255}
    assert (out[changed] == 255).float().mean().item() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("severity", [1, 5])
def test_contrast_formula(severity):
    x = _image(1)
    c = PARAMETERS["contrast"][severity - 1]
    f = x.numpy().astype(np.float64) / 255
    means = f.mean(axis=(1, 2), keepdims=True)
    want = np.clip(np.round(np.clip((f - means) * c + means, 0, 1) * 255), 0, 255)
    got = perturb_tensor(x, Perturbation("contrast", severity), seed=0).numpy()
    assert np.abs(got - want).max() <= 1


@pytest.mark.parametrize("severity", [1, 4])
def test_brightness_is_hsv_value_plus_c(severity):
    """Against colorsys' HSV round trip, pixel by pixel (black included)."""
    x = _image(2, 16, 16, 0, 256)
    x[:, 0, 0] = 0
    c = PARAMETERS["brightness"][severity - 1]
    got = perturb_tensor(x, Perturbation("brightness", severity), seed=0, side=16).numpy()
    for i in range(16):
        for j in range(16):
            h, s, v = colorsys.rgb_to_hsv(*(x[:, i, j].numpy() / 255.0))
            want = np.round(np.array(colorsys.hsv_to_rgb(h, s, min(v + c, 1.0))) * 255)
            assert np.abs(got[:, i, j] - want).max() <= 1


@pytest.mark.parametrize("severity", [1, 5])
def test_pixelate_sizes_and_blocks(severity):
    c = PARAMETERS["pixelate"][severity - 1]
    assert pixelate_size(FRAME, FRAME, c) == (int(FRAME * c), int(FRAME * c))
    x = _image(3)
    got = perturb_tensor(x, Perturbation("pixelate", severity), seed=0)
    small = int(FRAME * c)
    # nearest up-sampling: as many distinct columns (and rows) as the down-sampled image has
    assert len(torch.unique(got[0], dim=1).T) == small
    assert len(torch.unique(got[0], dim=0)) == small
    # each block is the mean of its area (box down-sampling): the image mean is kept
    assert got.float().mean().item() == pytest.approx(x.float().mean().item(), abs=1.0)


@pytest.mark.parametrize("severity", [1, 5])
def test_jpeg_quality_matches_pillow(severity):
    x = _image(4)
    q = PARAMETERS["jpeg"][severity - 1]
    buf = io.BytesIO()
    Image.fromarray(x.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=q)
    want = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).transpose(2, 0, 1)
    got = perturb_tensor(x, Perturbation("jpeg", severity), seed=0).numpy()
    assert np.array_equal(got, want)


def test_defocus_kernel_is_imagenet_c_disk():
    k = disk_kernel(3, 0.1).numpy()
    assert k.shape == (17, 17) and k.sum() == pytest.approx(1.0, abs=1e-5)
    L = np.arange(-8, 9)
    X, Y = np.meshgrid(L, L)
    disk = (X ** 2 + Y ** 2 <= 9).astype(float)
    assert np.allclose(k, disk / disk.sum(), atol=1e-4)  # a 0.1-pixel Gaussian hardly changes it
    assert disk_kernel(10, 0.5).shape == (21, 21)


def test_gaussian_blur_of_a_point_is_a_gaussian():
    """sigma 2: a 17 x 17 kernel (4 sigma each side), the normalised 2-D Gaussian."""
    x = torch.zeros((3, FRAME, FRAME), dtype=torch.uint8)
    x[:, 112, 112] = 255
    out = perturb_tensor(x, Perturbation("gaussian_blur", 2), seed=0).float()[0].numpy()
    g = np.exp(-(np.arange(-8, 9) ** 2) / (2 * 2.0 ** 2))
    want = 255 * np.outer(g, g) / g.sum() ** 2
    assert np.abs(out[104:121, 104:121] - want).max() <= 0.5 + 1e-6
    assert out.sum() == np.round(want).sum()  # nothing outside the kernel


def test_motion_blur_kernel_and_mass():
    w = motion_kernel_weights(10, 3)
    assert len(w) == 21 and w.sum() == pytest.approx(1.0)
    assert np.allclose(w / w[0], np.exp(-np.arange(21) ** 2 / 18))
    flat = perturb_tensor(_flat(100), Perturbation("motion_blur", 3), seed=9)
    assert (flat == 100).all()  # a weighted average of shifted copies keeps a flat image


def test_geometric_perturbations_keep_size_and_change_pixels():
    x = _image(5)
    for name in ("rotation", "crop_shift", "elastic"):
        out = perturb_tensor(x, Perturbation(name, 5), seed=1)
        assert out.shape == (3, FRAME, FRAME)
        assert (out.float() - x.float()).abs().mean() > 1


def test_same_seed_same_pixels_different_images_different_noise():
    x = _image(6)
    for name in NAMES:
        p = Perturbation(name, 3)
        assert torch.equal(perturb_tensor(x, p, 1), perturb_tensor(x, p, 1)), name
    p = Perturbation("gaussian_noise", 2)
    a = perturb_tensor(_flat(), p, image_seed("content-a", p)).float() - 128
    b = perturb_tensor(_flat(), p, image_seed("content-b", p)).float() - 128
    assert abs(np.corrcoef(a.flatten(), b.flatten())[0, 1]) < 0.05
    assert image_seed("k", Perturbation("jpeg", 1)) != image_seed("k", Perturbation("jpeg", 2))


def test_frame_is_resize_and_centre_crop():
    x = _image(7, 300, 400)
    f = frame(x)
    assert f.shape == (3, FRAME, FRAME)
    assert torch.equal(frame(_image(8)), _image(8))  # already the frame: untouched


@pytest.mark.parametrize("name", NAMES)
def test_pil_path_equals_tensor_path(name):
    """The decode workers' PIL path and the GPU path's tensor ops give the same pixels (here on the CPU)."""
    x = _image(9, 240, 260)
    im = Image.fromarray(x.permute(1, 2, 0).numpy())
    p = Perturbation(name, 4)
    a = np.asarray(perturb_pil(im, p, 42)).transpose(2, 0, 1)
    b = perturb_tensor(x.clone(), p, 42).numpy()
    assert np.array_equal(a, b)


def test_gpu_decode_path_perturbs_like_the_workers(tmp_path):
    """decode_batch (the --decode gpu path, run on the CPU here) with a perturbation gives the
    workers' pixels for the same decoded JPEG."""
    from core.data.gpu_decode import decode_batch, read_jpeg

    x = _image(10, 256, 300)
    path = tmp_path / "a.jpg"
    Image.fromarray(x.permute(1, 2, 0).numpy()).save(path, quality=95)
    p = Perturbation("gaussian_noise", 3)
    out = decode_batch([read_jpeg(path, 10 ** 9)], "cpu", lambda t: t, [lambda t: perturb_tensor(t, p, 7)])[0]
    decoded = torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1)
    want = perturb_tensor(decoded, p, 7)
    # libjpeg in Pillow and torchvision may round the IDCT differently: allow a level or two
    assert (out.float() - want.float()).abs().max() <= 3


def test_perturbed_dataset_opens_perturbed_images(image_folder):
    from core.data import load_dataset

    ds = load_dataset(str(image_folder))
    p = Perturbation("contrast", 5)
    keys = [ds.content_hash(i) for i in range(len(ds))]
    pd_ = PerturbedDataset(ds, p, keys)
    im = pd_.open(0)
    assert im.size == (FRAME, FRAME)
    want = perturb_pil(ds.open(0), p, image_seed(keys[0], p))
    assert np.array_equal(np.asarray(im), np.asarray(want))
    import pickle

    again = pickle.loads(pickle.dumps(pd_))  # decode workers get a pickled copy
    assert np.array_equal(np.asarray(again.open(0)), np.asarray(im))


# ---------------------------------------------------------------- a real tiny sweep


def _config(tiny_model, second_checkpoint, root, out, perturb, **kw):
    from core.models.openclip import BackboneSpec
    from core.pipeline.runner import SweepConfig

    cfg, ck = tiny_model
    labels = root / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in CLASSES.items() for n in ns))
    return SweepConfig(
        dataset=str(root / "images"), out=str(out), labels=str(labels), templates="plain", levels=[1, 2],
        backbones=[BackboneSpec(cfg, checkpoint=ck, device="cpu", label="A"),
                   BackboneSpec(cfg, checkpoint=second_checkpoint, device="cpu", label="B")],
        num_workers=0, bootstrap=50, ensemble_shots=[], cache_dir=str(root / "cache"), perturb=perturb, **kw)


@pytest.fixture(scope="module")
def robustness_run(tiny_model, second_checkpoint, tmp_path_factory):
    from core.pipeline.runner import run_sweep

    root = tmp_path_factory.mktemp("robust")
    write_image_folder(root / "images", per_class=5)
    config = _config(tiny_model, second_checkpoint, root, root / "run", ["gaussian_noise:2,5", "rotation:3"])
    result = run_sweep(config)
    assert result.status == "completed"
    clean = run_sweep(_config(tiny_model, second_checkpoint, root, root / "clean", []))
    return root, result, clean


def _mcnemar(a, b) -> float:
    d = a - b
    x, y = int(np.rint(d[d > 0].sum())), int(np.rint(-d[d < 0].sum()))
    return 1.0 if x + y == 0 else stats.binomtest(min(x, y), x + y, 0.5).pvalue


def test_robustness_rows_recomputed_from_predictions(robustness_run):
    root, result, _ = robustness_run
    run = root / "run"
    rob = pd.read_csv(run / "robustness.csv")
    preds = pd.read_csv(run / "robustness_predictions.csv")
    assert list(rob.columns[:10]) == ["backbone", "perturbation", "severity", "level", "n_images", "top1", "ci_low",
                                      "ci_high", "drop_vs_clean", "p_vs_clean"]
    systems = {"A", "B", "oracle", "mean_logits", "mean_probs", "majority_vote"}
    assert set(rob.backbone) == systems
    pert = rob[rob.perturbation != "none"]
    assert set(zip(pert.perturbation, pert.severity)) == {("gaussian_noise", 2), ("gaussian_noise", 5), ("rotation", 3)}
    assert len(pert) == 6 * 3 * 2
    for r in pert.itertuples():
        g = preds[(preds.backbone == r.backbone) & (preds.perturbation == r.perturbation)
                  & (preds.severity == r.severity) & (preds.level == r.level)]
        assert len(g) == r.n_images == 20
        assert r.top1 == pytest.approx(g.credit.mean(), abs=1e-6)
        assert r.drop_vs_clean == pytest.approx(g.clean_credit.mean() - g.credit.mean(), abs=1e-6)
        assert r.p_vs_clean == pytest.approx(_mcnemar(g.clean_credit.to_numpy(), g.credit.to_numpy()), rel=1e-6)
        assert r.ci_low <= r.top1 + 1e-9 and r.top1 <= r.ci_high + 1e-9
    # the clean credit of each backbone is its predictions.csv credit (the clean sweep's own rows)
    clean_preds = pd.read_csv(run / "predictions.csv")
    for bb in ("A", "B"):
        c = clean_preds[(clean_preds.backbone == bb) & (clean_preds.level == 1)].set_index("image").credit
        g = preds[(preds.backbone == bb) & (preds.level == 1) & (preds.perturbation == "rotation")].set_index("image")
        assert np.allclose(g.clean_credit, c.loc[g.index], atol=1e-6)
    # the oracle's perturbed credit: some backbone right, from the backbones' own perturbed rows
    sel = preds[(preds.perturbation == "gaussian_noise") & (preds.severity == 5) & (preds.level == 2)]
    wide = sel.pivot(index="image", columns="backbone", values="credit")
    assert np.allclose(wide["oracle"], 1 - (1 - wide["A"]) * (1 - wide["B"]), atol=1e-6)
    # severity-0 rows are the clean levels.csv / ensembles.csv values
    levels = pd.read_csv(run / "levels.csv")
    ensembles = pd.read_csv(run / "ensembles.csv")
    zero = rob[rob.perturbation == "none"]
    for r in zero.itertuples():
        if r.backbone in ("A", "B"):
            want = levels[(levels.backbone == r.backbone) & (levels.level == r.level)].top1.iloc[0]
        else:
            want = ensembles[(ensembles.method == r.backbone) & (ensembles.level == r.level) & (ensembles.k == 0)].top1.iloc[0]
        assert r.top1 == pytest.approx(want, abs=1e-9)


def test_clean_files_unchanged_by_perturb(robustness_run):
    root, _, _ = robustness_run
    for name in ("levels.csv", "predictions.csv", "per_class.csv", "backbones.csv", "pairs.csv", "ensembles.csv"):
        a = pd.read_csv(root / "run" / name)
        b = pd.read_csv(root / "clean" / name)
        drop = [c for c in ("seconds",) if c in a.columns]
        pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop))
    assert not (root / "clean" / "robustness.csv").exists()
    meta = json.loads((root / "run" / "run.json").read_text())
    assert meta["config"]["perturb"] == ["gaussian_noise:2,5", "rotation:3"]


def test_cache_reuse_and_no_text_work(robustness_run, tiny_model, second_checkpoint):
    """A re-run finds every perturbed embedding in the cache (nothing re-encoded), and the
    perturbations never encoded a prompt of their own."""
    from core.pipeline.runner import run_sweep
    from core.util.events import Progress, Stage

    root, first, _ = robustness_run
    assert first.summary["robustness"]["images_encoded"] == 20 * 2 * 3
    seen = []
    again = run_sweep(_config(tiny_model, second_checkpoint, root, root / "again",
                              ["gaussian_noise:2,5", "rotation:3"]), emit=seen.append)
    assert again.summary["robustness"] == {"perturbations": ["gaussian_noise:2", "gaussian_noise:5", "rotation:3"],
                                           "images_encoded": 0, "images_from_cache": 120}
    assert not [e for e in seen if isinstance(e, Progress) and e.stage in (Stage.ENCODE_TEXT, Stage.LOAD_MODEL)]
    a = pd.read_csv(root / "run" / "robustness.csv")
    b = pd.read_csv(root / "again" / "robustness.csv")
    pd.testing.assert_frame_equal(a, b)


def test_bad_perturb_refused_before_any_folder(tiny_model, second_checkpoint, tmp_path):
    from core.pipeline.runner import run_sweep

    write_image_folder(tmp_path / "images", per_class=1)
    with pytest.raises(InputError, match="unknown perturbation 'fog'.*gaussian_noise"):
        run_sweep(_config(tiny_model, second_checkpoint, tmp_path, tmp_path / "out", ["fog:1"]))
    with pytest.raises(InputError, match="severity 9"):
        run_sweep(_config(tiny_model, second_checkpoint, tmp_path, tmp_path / "out", ["jpeg:9"]))
    assert not (tmp_path / "out").exists()


def test_cli_perturb_flag(tiny_model, tmp_path, capsys):
    from core.cli import main

    cfg, ck = tiny_model
    write_image_folder(tmp_path / "images", per_class=2)
    labels = tmp_path / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in CLASSES.items() for n in ns))
    code = main(["sweep", "--dataset", str(tmp_path / "images"), "--labels", str(labels), "--model", cfg,
                 "--checkpoint", ck, "--device", "cpu", "--levels", "1", "--templates", "plain", "--workers", "0",
                 "--perturb", "jpeg:5", "--perturb", "pixelate:1,2", "--out", str(tmp_path / "run"), "-q"])
    assert code == 0
    rob = pd.read_csv(tmp_path / "run" / "robustness.csv")
    assert sorted(set(zip(rob.perturbation, rob.severity))) == [("jpeg", 5), ("none", 0), ("pixelate", 1), ("pixelate", 2)]
    code = main(["sweep", "--dataset", str(tmp_path / "images"), "--labels", str(labels), "--model", cfg,
                 "--checkpoint", ck, "--perturb", "blur:1", "--out", str(tmp_path / "bad"), "-q"])
    assert code != 0
    assert "unknown perturbation 'blur'" in capsys.readouterr().err


def test_study_protocol_takes_perturb(tmp_path):
    """A study's `perturb` reaches every dataset's SweepConfig; a bad one names the study file's line."""
    from core.study.study import parse_study, sweep_config

    text = ('levels = [1]\nperturb = ["gaussian_noise:1,3", "jpeg:5"]\n[[backbones]]\nmodel = "demo-vit"\n'
            '[[datasets]]\nname = "a"\npath = "/x"\n')
    study = parse_study(text, tmp_path / "s.toml")
    cfg = sweep_config(study, study.datasets[0], tmp_path / "out")
    assert cfg.perturb == ["gaussian_noise:1,3", "jpeg:5"]
    with pytest.raises(InputError) as e:
        parse_study(text.replace("jpeg:5", "jpeg:7"), tmp_path / "s.toml")
    assert e.value.line == 2 and e.value.field == "perturb" and "severity 7" in str(e.value)


def test_stores_cannot_be_perturbed(tmp_path):
    from core.pipeline.robustness import check_perturbations
    from core.util.config import SweepConfig

    with pytest.raises(InputError, match="embedding stores"):
        check_perturbations(SweepConfig(dataset="x", out=str(tmp_path), backbones=[], embeddings=["store"],
                                        perturb=["jpeg:1"]))


def test_clip_server_gets_the_perturbed_pixels(tmp_path):
    """A CLIP server is sent the perturbed image (lossless PNG), never the file's own bytes."""
    import base64

    from core.data import load_dataset
    from core.models.clip_server import image_data_uri

    write_image_folder(tmp_path / "images", per_class=1, fmt="jpg")
    ds = load_dataset(str(tmp_path / "images"))
    assert image_data_uri(ds, 0).startswith("data:image/jpeg")  # clean: the file as it is
    p = Perturbation("impulse_noise", 5)
    pd_ = PerturbedDataset(ds, p, [ds.content_hash(i) for i in range(len(ds))])
    uri = image_data_uri(pd_, 0)
    assert uri.startswith("data:image/png")
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))
    assert np.array_equal(sent, np.asarray(pd_.open(0)))


def test_cancel_during_perturbations_keeps_finished_ones(robustness_run, tiny_model, second_checkpoint):
    """Cancelled while the second perturbation encodes: the run is 'cancelled', its robustness.csv holds
    the clean rows and the whole first perturbation."""
    from core.pipeline.runner import run_sweep
    from core.util.events import CancelToken, Log

    root, _, _ = robustness_run
    cancel = CancelToken()
    seen = []

    def emit(ev) -> None:
        if isinstance(ev, Log) and ev.message.startswith("perturbation "):
            seen.append(ev.message)
            if len(seen) == 2:
                cancel.cancel("test")

    result = run_sweep(_config(tiny_model, second_checkpoint, root, root / "cancelled",
                               ["gaussian_noise:2", "rotation:3"]), emit=emit, cancel=cancel)
    assert result.status == "cancelled"
    rob = pd.read_csv(root / "cancelled" / "robustness.csv")
    assert set(zip(rob.perturbation, rob.severity)) == {("none", 0), ("gaussian_noise", 2)}
    full = pd.read_csv(root / "run" / "robustness.csv")
    want = full[full.perturbation.isin(["none"]) | ((full.perturbation == "gaussian_noise") & (full.severity == 2))]
    pd.testing.assert_frame_equal(rob.reset_index(drop=True), want.reset_index(drop=True))
