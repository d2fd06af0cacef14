"""semscale engine: semantic-category scaling experiments with CLIP-style models, CLIP
servers and vision-language models.

Pure Python + torch + pandas. Never imports Qt: the desktop app drives this package
through a worker thread, the CLI drives it directly. The packages, top to bottom (each
imports only those below it; ``docs/architecture.md``): ``study``, ``pipeline``,
``results``, ``synonyms``, ``stats``, ``embedding``, ``models``, ``labels``, ``data``,
``util``.
"""

import importlib
import importlib.abc
import importlib.util
import sys

from core.util.versions import __version__

# The public API (core/api.py), imported on first use so that ``import core`` stays cheap:
# the GUI and the CLI import this package long before they need torch.
_API = {"sweep", "load_run", "score_embeddings", "report", "RunResult"}
_CONFIG = {"BackboneSpec", "SweepConfig"}
__all__ = sorted(_API | _CONFIG | {"InputError", "__version__"})

# Modules of earlier versions (a flat core/) that scripts may still import: each name is the
# module that now holds the code (the same module object, so attributes and patches are shared).
MOVED = {
    "core.analysis": "core.pipeline.analysis", "core.backbones": "core.models.openclip",
    "core.benchmark_presets": "core.labels.presets", "core.cache": "core.embedding.cache",
    "core.config": "core.util.config", "core.controls": "core.labels.controls",
    "core.datasets": "core.data", "core.distributed": "core.embedding.distributed",
    "core.drilldown": "core.results.drilldown", "core.embed": "core.embedding.embed",
    "core.ensemble": "core.stats.ensemble", "core.errors": "core.util.errors", "core.events": "core.util.events",
    "core.external": "core.stats.external", "core.files": "core.util.files", "core.flips": "core.stats.flips",
    "core.frequency": "core.stats.frequency", "core.gpu_decode": "core.data.gpu_decode",
    "core.image_source": "core.embedding.image_source", "core.images": "core.data.images",
    "core.lexicon": "core.labels.lexicon", "core.memory": "core.util.memory", "core.metrics": "core.stats.metrics",
    "core.names": "core.util.names", "core.open_clip_files": "core.models.open_clip_files",
    "core.runs": "core.results.runs", "core.scoring": "core.pipeline.scoring", "core.shards": "core.embedding.shards",
    "core.significance": "core.stats.significance", "core.store": "core.embedding.store",
    "core.study_summary": "core.study.summary", "core.sweep_context": "core.pipeline.context",
    "core.tables": "core.util.tables",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module path to the module that holds its code now."""

    def find_spec(self, fullname, path=None, target=None):
        base = next((old for old in MOVED if fullname == old or fullname.startswith(old + ".")), None)
        if base is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        base = next(old for old in MOVED if spec.name == old or spec.name.startswith(old + "."))
        return importlib.import_module(MOVED[base] + spec.name[len(base):])

    def exec_module(self, module):
        pass


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name: str):
    if name in _API:
        from core import api

        return getattr(api, name)
    if name in _CONFIG:
        from core.util import config

        return getattr(config, name)
    if name == "InputError":
        from core.util.errors import InputError

        return InputError
    raise AttributeError(f"module 'core' has no attribute {name!r}")
