"""Every script a user may run answers ``--help`` with its usage and writes nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _scripts() -> list[str]:
    """Each benchmark / build script that can be run on its own (has a ``__main__`` block)."""
    out = []
    for folder in ("benchmarks", "build_scripts"):
        for p in sorted((ROOT / folder).glob("*.py")):
            if p.name == "__init__.py" or not re.search(r'^if __name__ == "__main__":', p.read_text(), re.M):
                continue
            out.append(f"{folder}/{p.name}")
    return out


@pytest.mark.parametrize("script", _scripts())
def test_script_answers_help(script, tmp_path):
    module = script[:-3].replace("/", ".").replace(".__main__", "")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    argv = [sys.executable, "-m", module, "--help"] if script.startswith("benchmarks/") else \
        [sys.executable, str(ROOT / script), "--help"]
    r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout.lower()
    assert list(tmp_path.iterdir()) == []  # "--help" is never taken for an output folder


def test_the_list_covers_the_scripts_of_the_issue():
    assert {"benchmarks/synthetic_run.py", "benchmarks/__main__.py", "build_scripts/launcher.py"} <= set(_scripts())
