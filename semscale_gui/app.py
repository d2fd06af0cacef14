"""Entry point: ``semscale-gui [PATH…]`` / ``python -m semscale_gui.app``.

Arguments:
  PATH…                    datasets, labels files and run directories to open (see open_paths)
Options:
  --self-test              run a short sweep off-screen through the worker thread; exit 0/1
  --screenshot FILE        save a PNG of the main window after a demo sweep
  --screenshot-panels DIR  save one PNG per panel (with --screenshot or alone); with run
                           directories as PATHs, every Results panel of those runs instead
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from semscale_gui.meta import APP_NAME, ORG_NAME, __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="semscale-gui", description="semscale desktop app")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="dataset (folder, manifest, CIFAR, shards), labels file (CSV/JSON) or run directory to open")
    p.add_argument("--self-test", action="store_true", help="run a short sweep off-screen and report (exit 0/1)")
    p.add_argument("--screenshot", metavar="FILE", help="save a PNG of the main window in a realistic state")
    p.add_argument("--screenshot-panels", metavar="DIR", help="save one PNG per panel into DIR")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds the self-test/screenshot may take")
    p.add_argument("--version", action="version", version=f"semscale {__version__}")
    return p


def make_app(argv: Sequence[str]):
    from PySide6.QtWidgets import QApplication

    from semscale_gui.icons import icon

    app = QApplication.instance() or QApplication(list(argv))
    app.setOrganizationName(ORG_NAME)
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setWindowIcon(icon("app"))
    return app


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    headless = args.self_test or args.screenshot or args.screenshot_panels
    if headless and "QT_QPA_PLATFORM" not in os.environ:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    app = make_app([sys.argv[0]])
    try:
        code = _run(app, args)
    finally:
        from semscale_gui.tasks import drain_background_work

        drain_background_work()  # no pool thread may still run Python past this point
    _exit_now(code)
    return code  # not reached


def _exit_now(code: int) -> None:
    """Leave without tearing Qt down from the interpreter's shutdown.

    Left to it, Qt deletes the plots' graphics scenes while Python is finalizing and calls
    into their half torn-down Python items: the process crashed on exit in about one
    self-test in ten (deleting the windows first crashed the same way). Everything the app
    saves is written by then (runs as they go, settings when the window closes); atexit
    handlers still run; then the process ends with ``code`` -- pyqtgraph's own remedy
    (``pyqtgraph.exit``), keeping the exit status.
    """
    import atexit

    import pyqtgraph

    pyqtgraph.setConfigOptions(exitCleanup=False)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


def _run(app: QApplication, args: argparse.Namespace) -> int:
    if args.self_test:
        from semscale_gui.selftest import self_test

        return self_test(timeout_s=args.timeout)
    if args.paths and (args.screenshot or args.screenshot_panels):
        from semscale_gui.selftest import path_screenshots

        return path_screenshots(args.paths, args.screenshot, args.screenshot_panels, timeout_s=args.timeout)
    if args.screenshot or args.screenshot_panels:
        from semscale_gui.selftest import screenshots

        return screenshots(args.screenshot, args.screenshot_panels, timeout_s=args.timeout)

    from semscale_gui.main_window import MainWindow

    win = MainWindow(load_demo=not args.paths)
    win.show()
    if args.paths:
        from semscale_gui.open_paths import open_paths

        open_paths(win, args.paths)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
