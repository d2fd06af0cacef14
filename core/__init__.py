"""semscale engine: semantic-category scaling experiments with CLIP-style models.

Pure Python + torch + open_clip + pandas. Never imports Qt: the desktop app drives this
package through a worker thread, the CLI drives it directly.
"""

__version__ = "0.1.0"

# The public API (core/api.py), imported on first use so that ``import core`` stays cheap:
# the GUI and the CLI import this package long before they need torch.
_API = {"sweep", "load_run", "score_embeddings", "RunResult"}
_CONFIG = {"BackboneSpec", "SweepConfig"}
__all__ = sorted(_API | _CONFIG | {"InputError", "__version__"})


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _CONFIG:
        from . import config

        return getattr(config, name)
    if name == "InputError":
        from .errors import InputError

        return InputError
    raise AttributeError(f"module 'core' has no attribute {name!r}")
