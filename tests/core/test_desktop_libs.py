"""``build_scripts/desktop_libs.sh`` (what ``make run`` checks before starting the app) on real
ELF files: a plugin built here that links a library this machine lacks, and PySide6's own
xcb plugin. Nothing is installed: the root path runs apt-get in simulation mode."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "build_scripts" / "desktop_libs.sh"
pytestmark = pytest.mark.skipif(sys.platform != "linux" or shutil.which("ldd") is None, reason="Linux only")


def _run(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)


def _missing(path: Path) -> list[str]:
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
    return sorted({ln.split()[0] for ln in out.splitlines() if "=> not found" in ln})


@pytest.fixture
def fake_plugin(tmp_path) -> Path:
    """A shared library that needs libxcb-xinerama.so.0 and libfakeqt6.so.1, neither installed."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    libs = tmp_path / "stubs"
    libs.mkdir()
    (tmp_path / "stub.c").write_text("void semscale_stub(void) {}\n")
    for so in ("libxcb-xinerama.so.0", "libfakeqt6.so.1"):
        subprocess.run([cc, "-shared", "-fPIC", f"-Wl,-soname,{so}", "-o", str(libs / so), str(tmp_path / "stub.c")],
                       check=True)
    plugin = tmp_path / "platforms" / "libqxcb.so"
    plugin.parent.mkdir()
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(plugin), str(tmp_path / "stub.c"), "-Wl,--no-as-needed",
                    f"-L{libs}", "-l:libxcb-xinerama.so.0", "-l:libfakeqt6.so.1"], check=True)
    shutil.rmtree(libs)  # now the loader cannot find them, as on a machine without the packages
    if _missing(plugin) != ["libfakeqt6.so.1", "libxcb-xinerama.so.0"]:
        pytest.skip("this machine has libxcb-xinerama installed")
    return plugin


def test_missing_libraries_print_the_exact_apt_line(fake_plugin):
    r = _run("--check", "--plugin", fake_plugin)
    assert r.returncode == 1
    assert "libfakeqt6.so.1 libxcb-xinerama.so.0" in r.stderr
    # Debian policy names: libfoo.so.N -> libfooN, a name ending in a digit gets a dash
    assert "  sudo apt-get install libfakeqt6-1 libxcb-xinerama0\n" in r.stderr
    assert r.stdout == ""


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the install path runs as root")
def test_as_root_it_installs_with_apt(fake_plugin, tmp_path):
    if shutil.which("apt-get") is None or subprocess.run(["apt-cache", "show", "libxcb-xinerama0"],
                                                         capture_output=True).returncode != 0:
        pytest.skip("no apt lists for libxcb-xinerama0")
    plugin = tmp_path / "only-xinerama" / "libqxcb.so"
    plugin.parent.mkdir()
    cc = shutil.which("cc") or shutil.which("gcc")
    stubs = tmp_path / "stubs2"
    stubs.mkdir()
    subprocess.run([cc, "-shared", "-fPIC", "-Wl,-soname,libxcb-xinerama.so.0", "-o", str(stubs / "libxcb-xinerama.so.0"),
                    str(tmp_path / "stub.c")], check=True)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(plugin), str(tmp_path / "stub.c"), "-Wl,--no-as-needed",
                    f"-L{stubs}", "-l:libxcb-xinerama.so.0"], check=True)
    shutil.rmtree(stubs)
    # apt-get -s: apt resolves and prints what it would install, and changes nothing
    r = _run("--plugin", plugin, env_extra={"APT_GET": "apt-get -s"})
    assert "installing: libxcb-xinerama0" in r.stderr
    assert "Inst libxcb-xinerama0" in r.stdout
    # nothing was really installed, so the re-check after installing reports it
    assert r.returncode == 1 and "still missing after installing libxcb-xinerama0: libxcb-xinerama.so.0" in r.stderr
    assert _missing(plugin) == ["libxcb-xinerama.so.0"]


def test_pyside6_xcb_plugin_as_ldd_sees_it():
    import PySide6

    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    missing = _missing(plugin)
    r = _run("--check", sys.executable)
    if not missing:
        assert r.returncode == 0 and r.stderr == ""
    else:
        assert r.returncode == 1 and all(so in r.stderr for so in missing) and "apt-get install" in r.stderr


def test_make_run_without_a_display_fails_instead_of_falling_back(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("no make")
    venv = Path(sys.executable).parent.parent
    stamp = venv / ".semscale-installed"
    if not stamp.exists():
        pytest.skip("not a make-installed virtual environment")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["DEMO_DIR"] = str(tmp_path / "demo")
    # -o: treat the install stamp as up to date (never reinstall the shared environment)
    r = subprocess.run(["make", "-C", str(ROOT), "run", f"VENV={venv}", "-o", str(stamp), f"DEMO_DIR={tmp_path / 'demo'}"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0
    assert "no display" in r.stderr and "make demo-sweep" in r.stderr
    assert not (tmp_path / "demo").exists()  # no terminal demo ran instead
