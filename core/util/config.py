"""What a run is asked to do: backbone and sweep specifications, and their defaults.

Nothing here imports torch, open_clip or pandas, so the app can build a configuration on
its GUI thread and a script can describe a run before any model exists. Every default is
defined once, here, and read by the Python API, the command line, the app and
``run.json``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence, Union

from core.util.errors import InputError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "fp16", "bf16")
# How images become pixels: "draft" decodes JPEGs at the smallest 1/2-1/8 scale still ≥ the model
# input, then resizes exactly; "exact" decodes at full size; "gpu" decodes JPEGs in batches on the
# GPU (nvJPEG via torchvision) and resizes there. Part of the backbone's cache identity.
DECODERS = ("draft", "exact", "gpu")
MODES = ("flat", "pooled")
TEMPLATE_PRESETS = ("openai", "simple", "plain")

Templates = Union[str, list[str]]
"""A preset name (``openai``, ``simple``, ``plain``), a template file, or the template strings."""

Levels = Union[str, list[int], None]
"""Names per class at each level: ``"1,2,4"``, ``[1, 2, 4]``, or None/``"auto"`` for 1, 2, 4, … to the longest list."""

DEFAULT_DEVICE = "auto"
DEFAULT_PRECISION = "fp32"
DEFAULT_DECODE = "draft"
DEFAULT_TEMPLATES = "simple"
DEFAULT_LEVELS: Levels = None
DEFAULT_MODE = "flat"
DEFAULT_ORDERINGS = 1
DEFAULT_SEED = 0
DEFAULT_BATCH_SIZE = 64
DEFAULT_BOOTSTRAP = 1000
DEFAULT_TOP_K = 5
DEFAULT_ALPHA = 0.05  # significance level of the paired tests (core.stats.significance)
DEFAULT_ENSEMBLE_SHOTS = (1, 2, 4)
DEFAULT_ENSEMBLE_SPLITS = 5
DEFAULT_ENSEMBLE_METHODS = ("global", "nlc")
# logits/ (float16 class scores per backbone and level) is skipped by default above this many MB
DEFAULT_LOGITS_LIMIT_MB = 256.0


@dataclass
class BackboneSpec:
    """What the user asked for; serialised into run.json."""

    model: str
    pretrained: Optional[str] = None
    checkpoint: Optional[str] = None
    device: str = DEFAULT_DEVICE
    precision: str = DEFAULT_PRECISION
    label: Optional[str] = None  # display name; defaults to model[/tag]
    decode: str = DEFAULT_DECODE  # one of DECODERS
    options: dict = field(default_factory=dict)  # the model kind's own options (core.models.registry)

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        model = Path(self.model).stem if self.model.endswith(".json") else self.model
        if self.pretrained:
            return f"{model}/{self.pretrained}"
        if self.checkpoint and not self.model.startswith("demo-"):
            stem = Path(self.checkpoint).stem
            return model if stem == model else f"{model}/{stem}"
        return model

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "BackboneSpec":
        """A spec from run.json or a store manifest; keys this version does not know are ignored.

        A spec written before ``decode`` existed decoded at full size, so it reads as ``"exact"``
        (a repeated run or a resumed store keeps its pixels).
        """
        known = set(cls.__dataclass_fields__)
        return cls(**{"decode": "exact", **{k: v for k, v in d.items() if k in known}})


@dataclass
class SweepConfig:
    """Everything a sweep needs; stored in run.json so a run can be repeated exactly."""

    dataset: str
    out: str
    backbones: list[BackboneSpec]
    labels: Optional[str] = None
    templates: Templates = DEFAULT_TEMPLATES
    levels: Levels = DEFAULT_LEVELS
    mode: str = DEFAULT_MODE
    orderings: int = DEFAULT_ORDERINGS
    seed: int = DEFAULT_SEED
    batch_size: int = DEFAULT_BATCH_SIZE
    num_workers: Optional[int] = None
    cache_dir: Optional[str] = None
    use_cache: bool = True
    bootstrap: int = DEFAULT_BOOTSTRAP
    top_k: int = DEFAULT_TOP_K
    allow_absolute_paths: bool = False
    # how to read the dataset (core.data.DatasetOptions): Hugging Face / torchvision sources
    split: Optional[str] = None
    image_column: Optional[str] = None
    label_column: Optional[str] = None
    data_root: Optional[str] = None
    save_predictions: bool = True
    # logits/: None = when the dump takes at most logits_limit_mb, True = always, False = never
    save_logits: Optional[bool] = None
    logits_limit_mb: Optional[float] = DEFAULT_LOGITS_LIMIT_MB
    ensemble_shots: list[int] = field(default_factory=lambda: list(DEFAULT_ENSEMBLE_SHOTS))
    ensemble_splits: int = DEFAULT_ENSEMBLE_SPLITS
    ensemble_methods: list[str] = field(default_factory=lambda: list(DEFAULT_ENSEMBLE_METHODS))
    class_frequency: Optional[str] = None
    external_predictions: list[str] = field(default_factory=list)
    # embedding stores (`semscale embed`), one per backbone in order: image embeddings come from them and no
    # image is opened; with no backbones given, the stores' own backbones are used (for the text side only)
    embeddings: list[str] = field(default_factory=list)
    overwrite: bool = False  # replace a run already in ``out`` (else such a folder is refused)
    # control curves (core.labels.controls): the same name counts with random words / random letter strings
    controls: list[str] = field(default_factory=list)
    vocabulary: Optional[str] = None  # word list for random-words (default: the bundled noun lexicon)
    alpha: float = DEFAULT_ALPHA  # significance level of the paired tests behind the threshold verdict
    # answering kinds (VLMs): how an answer matches a name ("word": whole words through the name
    # normaliser; "substring": the published ``label.lower() in answer.lower()``)
    vlm_match: str = "word"
    # names.csv (core.stats.names): per-name wins and leave-one-out credit; off skips its cost
    save_names: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["backbones"] = [b.to_dict() for b in self.backbones]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SweepConfig":
        d = dict(d)
        d["backbones"] = [BackboneSpec.from_dict(b) for b in d.get("backbones", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


# ---------------------------------------------------------------- numeric options

# (lowest, highest, lowest excluded, highest excluded, integer) per numeric option, by config field name;
# one table for the command line, the Python API, the app and study files
NUMERIC_OPTIONS: dict[str, tuple[Optional[float], Optional[float], bool, bool, bool]] = {
    "alpha": (0, 1, True, True, False),
    "batch_size": (1, None, False, False, True),
    "num_workers": (0, None, False, False, True),
    "workers": (0, None, False, False, True),
    "bootstrap": (1, None, False, False, True),
    "orderings": (1, None, False, False, True),
    "top_k": (1, None, False, False, True),
    "ensemble_splits": (0, None, False, False, True),
    "ensemble_shots": (1, None, False, False, True),
    "levels": (1, None, False, False, True),
    "logits_limit_mb": (0, None, False, False, False),
    "tolerance": (0, 1, False, False, False),
    "seed": (None, None, False, False, True),
    "shard_size": (1, None, False, False, True),
    "concurrency": (1, None, False, False, True),
    "num_cpus": (1, None, False, False, True),
    "num_gpus_per_worker": (0, None, False, False, False),
    "decode_batch_size": (1, None, False, False, True),
}


def numeric_problem(key: str, value) -> Optional[str]:
    """Why ``value`` is out of range for option ``key`` (a list: each item), or None when it is fine."""
    rule = NUMERIC_OPTIONS.get(key)
    if rule is None or value is None or isinstance(value, str):
        return None  # not a numeric option, unset, or text parsed elsewhere (levels "1,2,4", "auto")
    lo, hi, lo_open, hi_open, integer = rule
    for v in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
            return f"expected a number, got {v!r}"
        if integer and int(v) != v:
            return f"must be a whole number, got {v}"
        if lo is not None and (v <= lo if lo_open else v < lo) or hi is not None and (v >= hi if hi_open else v > hi):
            if lo is not None and hi is not None:
                return f"must be between {lo:g} and {hi:g}{' (exclusive)' if lo_open else ''}, got {v:g}"
            return f"must be {'above' if lo_open else 'at least'} {lo:g}, got {v:g}"
    return None


def check_numbers(values: dict) -> None:
    """Refuse the first out-of-range numeric option (``--alpha 2``, ``--batch-size 0``...) with an
    :class:`InputError` naming it as the command line spells it; called before any folder exists."""
    for key, value in values.items():
        why = numeric_problem(key, value)
        if why:
            raise InputError(why, field={"num_workers": "workers"}.get(key, key).replace("_", "-"))


def int_list(text: Union[str, Sequence[int], None], field: str) -> list[int]:
    """``"1,2,4"`` (or a list) as integers; the error names the option."""
    if text is None or isinstance(text, str) and not text.strip():
        return []
    if not isinstance(text, str):
        return [int(x) for x in text]
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"expected comma-separated integers, got '{text}'", field=field) from None


# ---------------------------------------------------------------- file hashing


def file_sha256_uncached(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 4 MiB chunks (no memo: for verifying files)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


@lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256_uncached(path)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, remembered while its size and modification time stay the same."""
    st = os.stat(path)
    return _file_sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
