"""resources.path() resolves the same way from a checkout and from an installed wheel.

(The frozen app is checked by ``make package-test``, which runs its self-test.)
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import resources

ROOT = Path(__file__).resolve().parents[2]


def test_source_checkout():
    p = resources.path("icons/app.svg")
    assert p.is_file() and p.parent.parent == ROOT / "resources"
    with pytest.raises(FileNotFoundError, match="no/such.file"):
        resources.path("no/such.file")


@pytest.mark.slow
def test_installed_wheel_finds_its_resources(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheels.glob("semscale-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "resources/icons/app.svg" in names
    target = tmp_path / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-2000:]
    code = "import resources, sys; print(resources.__file__); print(resources.path('icons/app.svg'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(target)})
    assert out.returncode == 0, out.stderr
    module_file, icon = out.stdout.split()
    assert module_file.startswith(str(target)) and icon.startswith(str(target))
    assert Path(icon).read_bytes() == (ROOT / "resources" / "icons" / "app.svg").read_bytes()
