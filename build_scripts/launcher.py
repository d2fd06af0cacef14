"""Entry point of the frozen app: the desktop window (``semscale-gui [PATH…]`` opens those
datasets, labels files and run directories), or the CLI with ``semscale-gui cli …``."""

import multiprocessing
import sys


def run() -> int:
    multiprocessing.freeze_support()  # DataLoader workers re-enter here on spawn platforms
    if len(sys.argv) > 1 and sys.argv[1] == "cli":
        from core.cli import main as cli_main

        return cli_main(sys.argv[2:])
    from semscale_gui.app import main as gui_main

    return gui_main(sys.argv[1:])  # paths and options pass through unchanged


if __name__ == "__main__":
    sys.exit(run())
