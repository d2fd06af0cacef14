"""What each command imports: start-up is paid on every CLI call, so heavy libraries load only when used.

Each check runs in a fresh interpreter and reads ``sys.modules`` there (behaviour, not timing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "open_clip", "torchvision", "timm", "pandas", "scipy", "datasets", "pyarrow", "ray", "webdataset")


def _modules_after(code: str, env: dict | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; which heavy top-level packages were imported, plus its stdout."""
    probe = code + "\nimport sys, json\nprint('\\n' + json.dumps({m: m in sys.modules for m in %r}))" % (HEAVY,)
    p = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_import_cli_imports_no_heavy_library():
    loaded = _modules_after("import core.cli")
    assert not any(loaded.values()), {m for m, v in loaded.items() if v}


def test_help_imports_no_heavy_library():
    code = ("import core.cli\ntry:\n    core.cli.main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "try:\n    core.cli.main(['sweep', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0")
    loaded = _modules_after(code)
    assert not any(loaded.values()), {m for m, v in loaded.items() if v}


def test_semscale_help_subprocess():
    p = subprocess.run([sys.executable, "-m", "core.cli", "--help"], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0 and "sweep" in p.stdout


def test_validate_needs_neither_torch_nor_open_clip(image_folder, labels_csv):
    code = ("import core.cli\nrc = core.cli.main(['validate', '--dataset', %r, '--labels', %r, '--quick'])\n"
            "assert rc == 0, rc" % (str(image_folder), str(labels_csv)))
    loaded = _modules_after(code)
    assert not loaded["torch"] and not loaded["open_clip"]


def test_backbone_resolution_and_identity_without_open_clip(tmp_path):
    """A lazy backbone (demo model, bundled architecture + checkpoint) resolves from files alone, with the
    same identity as when open_clip is imported first."""
    ck = tmp_path / "w.pt"
    ck.write_bytes(b"not read: only hashed")
    code = ("from core.models.openclip import BackboneSpec, load_backbone\n"
            "ids = [load_backbone(BackboneSpec('demo-vit', device='cpu'), lazy=True).identity,\n"
            "       load_backbone(BackboneSpec('ViT-S-32-alt', checkpoint=%r, device='cpu'), lazy=True).identity]\n"
            "print(ids)" % str(ck))
    lazy = _modules_after(code)
    assert not lazy["open_clip"] and not lazy["torchvision"]

    def identities(prefix: str) -> list:
        p = subprocess.run([sys.executable, "-c", prefix + code], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert p.returncode == 0, p.stderr[-2000:]
        return p.stdout.strip().splitlines()[-1]

    assert identities("") == identities("import open_clip\n")


def test_cached_sweep_does_not_import_open_clip(tmp_path, image_folder, labels_csv):
    """Second run of the same sweep: every image and prompt is cached, so open_clip is never imported,
    and the levels match the first run's."""
    cache = tmp_path / "cache"

    def sweep(out: str) -> dict:
        code = ("import core.cli\nrc = core.cli.main(['sweep', '--dataset', %r, '--labels', %r, '--model', 'demo-vit', "
                "'--templates', 'simple', '--device', 'cpu', '--workers', '0', '--bootstrap', '20', '--cache-dir', %r, "
                "'--out', %r, '-q'])\nassert rc == 0, rc" % (str(image_folder), str(labels_csv), str(cache), out))
        return _modules_after(code)

    first = sweep(str(tmp_path / "run1"))
    assert first["open_clip"]  # the cold run builds the model
    second = sweep(str(tmp_path / "run2"))
    assert not second["open_clip"] and not second["torchvision"]
    import pandas as pd

    a = pd.read_csv(tmp_path / "run1" / "levels.csv")
    b = pd.read_csv(tmp_path / "run2" / "levels.csv")
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
    run = json.loads((tmp_path / "run2" / "run.json").read_text())
    assert run["versions"]["open_clip"] == _open_clip_version()


def _open_clip_version() -> str:
    import open_clip

    return open_clip.__version__


@pytest.mark.parametrize("preset", ["simple", "openai"])
def test_template_presets_match_open_clip(preset):
    import open_clip

    from core.labels.labelset import preset_templates

    src = open_clip.SIMPLE_IMAGENET_TEMPLATES if preset == "simple" else open_clip.OPENAI_IMAGENET_TEMPLATES
    assert preset_templates(preset) == [f("{}") for f in src]


def test_config_file_backbone_builds_its_own_config(tmp_path):
    """A config file is registered with open_clip only when the network is built, and again if another
    file of the same name was registered in between: each backbone gets the architecture of its file."""
    from core.models.openclip import BackboneSpec, load_backbone
    from core.demo.tiny import write_tiny_model

    cfg_a, ck_a = write_tiny_model(tmp_path / "a", embed_dim=16)
    cfg_b, ck_b = write_tiny_model(tmp_path / "b", embed_dim=24)  # same name "tiny-clip", registered last
    a = load_backbone(BackboneSpec(str(cfg_a), checkpoint=str(ck_a), device="cpu"), lazy=True)
    b = load_backbone(BackboneSpec(str(cfg_b), checkpoint=str(ck_b), device="cpu"), lazy=True)
    assert (a.embed_dim, b.embed_dim) == (16, 24)
    assert a.encode_texts(["a red square"]).shape == (1, 16)
    assert b.encode_texts(["a red square"]).shape == (1, 24)
    assert a.encode_texts(["a red square"]).shape == (1, 16)  # a's model is built: the registry no longer matters
