"""``python -m semscale_gui`` starts the app, like ``semscale-gui``."""

from semscale_gui.app import main

raise SystemExit(main())
