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
from typing import TYPE_CHECKING, Optional, Sequence

from semscale_gui.meta import APP_NAME, ORG_NAME, __version__

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication, QWidget


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
        return _run(app, args)
    finally:
        shut_down(app)


def shut_down(app: QApplication, timeout_s: float = 60.0) -> bool:
    """End the app's life while Python and Qt are both whole; True if every job ended in time.

    Order matters: first every background job is cancelled and joined (no pool thread may
    run Python once the interpreter finalizes), with the event loop turning so their last
    results are delivered; then the windows and everything in them -- pyqtgraph's views,
    scenes and items -- are deleted while their Python halves still exist. Left to the
    interpreter's shutdown, Qt deleted the plots' scenes after their Python items were torn
    down and the process crashed on exit in about one self-test in ten. What remains for the
    interpreter to free holds no thread, no window and no scene.
    """
    import gc

    import shiboken6
    from PySide6.QtCore import QCoreApplication, QEvent

    from semscale_gui.tasks import jobs

    runner = jobs()
    ok = runner.close(timeout_s)
    if not ok:
        print(f"semscale: waiting for {runner.running_count()} background job(s) to stop …", file=sys.stderr)
        runner.join()  # a thread still running Python at interpreter shutdown can crash the process
        runner.close(0)
    windows = [w for w in app.topLevelWidgets() if w.parent() is None]
    for w in windows:
        if shiboken6.isValid(w):
            w.hide()
            clear_scenes(w)
    for w in windows:
        if shiboken6.isValid(w):
            w.deleteLater()
    del windows
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()  # Python-side cycles (plot items, closures) go now, not during finalization
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    pg = sys.modules.get("pyqtgraph")
    if pg is not None:
        pg.cleanup()  # what pyqtgraph would do on aboutToQuit (which never comes without exec())
    runner.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return ok


def clear_scenes(widget: QWidget) -> int:
    """Delete the items of every graphics scene shown in ``widget``; how many scenes were cleared.

    A pyqtgraph scene is a child of its view, so deleting a window deletes the scene from
    inside the view's destructor: the items' Python handlers (``itemChange``) then run
    against a half-destroyed view, and the process crashed in ``QGraphicsScene::clear``
    about one time in ten. Cleared first, while every view is whole, the items go the way
    they go when a plot is cleared in normal use.
    """
    import shiboken6
    from PySide6.QtWidgets import QGraphicsView

    scenes = {id(s): s for v in widget.findChildren(QGraphicsView) if (s := v.scene()) is not None}
    for scene in scenes.values():
        if shiboken6.isValid(scene):  # (a scene's items may hold widgets with views of their own)
            scene.clear()
    return len(scenes)


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
