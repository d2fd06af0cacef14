"""``python -m semscale_gui`` starts the app, like ``semscale-gui``."""

from .app import main

raise SystemExit(main())
