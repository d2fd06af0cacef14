"""Studies: many datasets × backbones under one protocol, from one TOML file.

A study file holds the shared protocol as top-level keys, then ``[[backbones]]`` and
``[[datasets]]`` tables. Every entry is checked before anything runs (a bad entry is an
:class:`~core.util.errors.InputError` naming the study file, the line of the entry and its
field). Each dataset then becomes an ordinary run directory ``OUT/runs/<name>/`` written
by :func:`core.pipeline.runner.run_sweep` with all backbones in one run, so ensembles work per
dataset. Running a study again skips every dataset whose run completed under the same
protocol (read back from its ``run.json``), re-runs unfinished ones and refuses a changed
protocol unless told to overwrite. After every dataset the cross-dataset summaries
(:mod:`core.study.summary`) and ``study.json`` are rewritten, so a partial study is
readable.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional, Sequence

from core.models.openclip import PRECISIONS, BackboneSpec
from core.util.errors import InputError
from core.util.events import CancelToken, Cancelled, EventCallback, Log, ignore_events
from core.study.summary import RUNS_FOLDER, run_path
from core.util.config import numeric_problem

STUDY_ENGINES = ("local", "ray")
PROTOCOL_KEYS = (
    "levels", "mode", "templates", "orderings", "seed", "device", "precision", "batch_size", "controls",
    "ensemble_shots", "ensemble_splits", "ensemble_methods", "class_frequency", "bootstrap", "vocabulary", "alpha",
    "perturb",
    "extend_names", "extend_to", "similarity_k",
    "probe_shots", "probe_solver",
)
BACKBONE_KEYS = ("model", "pretrained", "checkpoint", "label", "options")  # options: the model kind's own table
DATASET_KEYS = ("name", "path", "labels", "templates", "class_frequency", "external_predictions", "embeddings",
                "split", "image_column", "label_column", "data_root")
READER_KEYS = ("split", "image_column", "label_column", "data_root")  # how a dataset's source is read
# SweepConfig fields that decide a run's numbers; the rest (output folder, cache, workers) do not
RUN_PROTOCOL_FIELDS = (
    "dataset", "labels", "templates", "levels", "mode", "orderings", "seed", "bootstrap", "top_k",
    "ensemble_shots", "ensemble_splits", "ensemble_methods", "class_frequency", "external_predictions", "embeddings",
    "controls", "vocabulary", "alpha", "split", "image_column", "label_column", "templates_resolved", "levels_resolved", "labels_resolved",
    "perturb",
    "extend_names", "extend_to",
    "probe_shots", "probe_solver",
)
BACKBONE_PROTOCOL_FIELDS = ("model", "pretrained", "checkpoint", "label", "precision", "options")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
BAD_NAME = "'{name}' cannot be a folder name: use letters, digits, '.', '_' and '-'"
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]+:(?![\\/])")  # tv:CIFAR10, hf:org/name, clip_benchmark:x


# ---------------------------------------------------------------- the study file


def valid_dataset_name(name: str) -> bool:
    """A dataset's name is its results folder: letters, digits, '.', '_' and '-', not '.' or '..'."""
    return bool(name) and bool(NAME_RE.match(name)) and name not in (".", "..")


@dataclass
class StudyDataset:
    """One ``[[datasets]]`` entry; paths are absolute once parsed."""

    name: str
    path: str
    labels: Optional[str] = None
    templates: Any = None  # None: the study's templates
    class_frequency: Optional[str] = None  # None: the study's class_frequency
    external_predictions: list[str] = field(default_factory=list)
    embeddings: list[str] = field(default_factory=list)
    split: Optional[str] = None  # Hugging Face / torchvision split (default: test, validation, the only one)
    image_column: Optional[str] = None
    label_column: Optional[str] = None
    data_root: Optional[str] = None  # where tv:/hf: sources are (or get downloaded)

    def reader_options(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in READER_KEYS if getattr(self, k) is not None}


@dataclass
class Study:
    """A parsed study file: the shared protocol, the backbones and the datasets."""

    protocol: dict[str, Any] = field(default_factory=dict)
    backbones: list[BackboneSpec] = field(default_factory=list)
    datasets: list[StudyDataset] = field(default_factory=list)
    file: Optional[str] = None
    lines: dict[str, int] = field(default_factory=dict)  # "datasets.2.labels" -> line in the file

    @property
    def base(self) -> Path:
        return Path(self.file).parent if self.file else Path.cwd()

    def dataset(self, name: str) -> StudyDataset:
        for d in self.datasets:
            if d.name == name:
                return d
        raise KeyError(name)

    def add_dataset(self, ds: StudyDataset) -> None:
        """Append a dataset entry, held to the study file's rules (an InputError names the field)."""
        if not valid_dataset_name(ds.name):
            raise InputError(BAD_NAME.format(name=ds.name), field="name")
        if any(d.name.lower() == ds.name.lower() for d in self.datasets):
            raise InputError(f"the study already has a dataset called '{ds.name}'", field="name")
        if not ds.path:
            raise InputError("give the dataset's folder, file or tv:/hf: id", field="path")
        self.datasets.append(ds)

    def add_backbone(self, spec: BackboneSpec) -> None:
        """Append a backbone; two backbones may not share a display name (InputError)."""
        if not spec.model:
            raise InputError("give the backbone's model", field="model")
        if any(b.display == spec.display for b in self.backbones):
            raise InputError(f"'{spec.display}' is already in the study; give it a label", field="label")
        self.backbones.append(spec)

    def error(self, message: str, where: str = "", key: Optional[str] = None) -> InputError:
        """An InputError at the study file's line for ``where`` (e.g. ``datasets.1``) and ``key``."""
        line = self.lines.get(f"{where}.{key}" if where and key else (where or key or ""))
        if line is None and where:
            line = self.lines.get(where)
        fld = f"{where.replace('.', '[', 1)}].{key}" if where and key else (key or None)
        if where and not key:
            fld = f"{where.replace('.', '[', 1)}]"
        return InputError(message, file=self.file, line=line, field=fld)


def _key_lines(text: str) -> dict[str, int]:
    """Line numbers of keys and table headers in a plain TOML file (for error messages)."""
    out: dict[str, int] = {}
    section, counts = "", {"backbones": -1, "datasets": -1}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        m = re.match(r"^\[\[\s*(backbones|datasets)\s*\]\]", line)
        if m:
            counts[m.group(1)] += 1
            section = f"{m.group(1)}.{counts[m.group(1)]}"
            out[section] = n
            continue
        if line.startswith("["):
            section = line.strip("[] ")
            continue
        m = re.match(r"^([A-Za-z0-9_-]+)\s*=", line)
        if m:
            out.setdefault(f"{section}.{m.group(1)}" if section else m.group(1), n)
    return out


def _resolve(value: str, base: Path) -> str:
    """A path from the study file, relative to the file's folder; URIs (tv:, hf:) stay as written."""
    if not isinstance(value, str) or not value or _URI_RE.match(value):
        return value
    if "::" in value:
        return "::".join(_resolve(v, base) for v in value.split("::"))
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p))


def _resolve_templates(value: Any, base: Path) -> Any:
    """Templates: a preset name stays a name, a file is resolved, a list is kept."""
    if not isinstance(value, str) or _URI_RE.match(value):
        return value
    from core.labels.labelset import TEMPLATE_PRESETS

    if value in TEMPLATE_PRESETS:
        return value
    return _resolve(value, base)


def _resolve_external(spec: str, base: Path) -> str:
    if "=" in spec:
        name, _, file = spec.partition("=")
        return f"{name}={_resolve(file, base)}"
    return f"{Path(spec).stem}={_resolve(spec, base)}"


def _check_type(study: Study, where: str, key: str, value: Any, kind: str) -> None:
    ok = {
        "str": isinstance(value, str) and value != "",
        "int": isinstance(value, int) and not isinstance(value, bool),
        "num": isinstance(value, (int, float)) and not isinstance(value, bool),
        "ints": isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
        "strs": isinstance(value, list) and all(isinstance(v, str) and v for v in value),
        "shots": isinstance(value, list) and all(v == "all" or isinstance(v, int) and not isinstance(v, bool) for v in value),
    }[kind]
    if not ok:
        what = {"str": "a non-empty string", "int": "an integer", "num": "a number", "ints": "a list of integers",
                "strs": "a list of strings",
                "shots": "a list of whole numbers and 'all'"}[kind]
        raise study.error(f"expected {what}, got {value!r}", where, key)


PROTOCOL_TYPES = {
    "mode": ("str",), "orderings": ("int",), "seed": ("int",), "device": ("str",), "precision": ("str",),
    "batch_size": ("int",), "ensemble_splits": ("int",), "bootstrap": ("int",), "class_frequency": ("str",),
    "levels": ("ints", "str"), "templates": ("str", "strs"), "controls": ("strs", "str"),
    "ensemble_shots": ("ints",), "ensemble_methods": ("strs",), "vocabulary": ("str",), "alpha": ("num",),
    "perturb": ("strs", "str"),
    "extend_names": ("str",), "extend_to": ("int",), "similarity_k": ("int",),
    "probe_shots": ("ints", "str", "shots"), "probe_solver": ("str",),
}


def _check_any(study: Study, where: str, key: str, value: Any, kinds: Sequence[str]) -> None:
    errors = []
    for k in kinds:
        try:
            _check_type(study, where, key, value, k)
            return
        except InputError as e:
            errors.append(e)
    raise errors[0]


def parse_study(text: str, file: Optional[str | Path] = None) -> Study:
    """Parse and structurally check a study file (types, unknown keys, names); no file is opened."""
    study = Study(file=str(file) if file is not None else None, lines=_key_lines(text))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise InputError(f"not a valid TOML file: {msg}" + (f" (column {m.group(2)})" if m else ""),
                         file=study.file, line=int(m.group(1)) if m else None) from None
    base = study.base
    for key, value in data.items():
        if key in ("backbones", "datasets"):
            continue
        if key not in PROTOCOL_KEYS:
            raise study.error(f"unknown key '{key}' (protocol keys: {', '.join(PROTOCOL_KEYS)})", key=key)
        _check_any(study, "", key, value, PROTOCOL_TYPES[key])
        study.protocol[key] = value
    p = study.protocol
    if p.get("mode", "flat") not in ("flat", "pooled"):
        raise study.error(f"unknown mode '{p['mode']}' (choose flat or pooled)", key="mode")
    if p.get("precision", "fp32") not in PRECISIONS:
        raise study.error(f"unknown precision '{p['precision']}' (choose {', '.join(PRECISIONS)})", key="precision")
    for key, value in p.items():  # the same ranges as the command line and the API (core.util.config)
        why = numeric_problem(key, value)
        if why:
            raise study.error(why, key=key)
    if isinstance(p.get("controls"), str):
        p["controls"] = [c.strip() for c in p["controls"].split(",") if c.strip()]
    if "perturb" in p:  # robustness perturbations: "NAME:SEVERITIES" strings, checked here
        from core.data.perturb_specs import parse_perturbations

        p["perturb"] = [p["perturb"]] if isinstance(p["perturb"], str) else list(p["perturb"])
        try:
            parse_perturbations(p["perturb"])
        except InputError as e:
            raise study.error(e.message, key="perturb") from None
    if "templates" in p:
        p["templates"] = _resolve_templates(p["templates"], base)
    for key in ("class_frequency", "vocabulary"):
        if key in p:
            p[key] = _resolve(p[key], base)

    for section, keys in (("backbones", BACKBONE_KEYS), ("datasets", DATASET_KEYS)):
        items = data.get(section, [])
        if not isinstance(items, list) or not all(isinstance(it, dict) for it in items):
            raise study.error(f"'{section}' must be [[{section}]] tables", key=section)
        for i, item in enumerate(items):
            where = f"{section}.{i}"
            for key in item:
                if key not in keys:
                    raise study.error(f"unknown key '{key}' in [[{section}]] (allowed: {', '.join(keys)})", where, key)
            if section == "backbones":
                study.backbones.append(_parse_backbone(study, where, item))
            else:
                study.datasets.append(_parse_dataset(study, where, item))
    if not study.backbones:
        raise study.error("the study has no [[backbones]] table (add one with model = ...)", key="backbones")
    if not study.datasets:
        raise study.error("the study has no [[datasets]] table (add one with name, path and labels)", key="datasets")
    seen: dict[str, int] = {}
    for i, d in enumerate(study.datasets):
        if d.name.lower() in seen:
            raise study.error(f"dataset name '{d.name}' is used twice (entries {seen[d.name.lower()] + 1} and {i + 1})",
                              f"datasets.{i}", "name")
        seen[d.name.lower()] = i
    names = [b.display for b in study.backbones]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise study.error(f"two backbones are both called '{n}'; give them a label", f"backbones.{i}", "label")
    return study


def _parse_backbone(study: Study, where: str, item: dict) -> BackboneSpec:
    if "model" not in item:
        raise study.error("missing 'model'", where, "model")
    for key in BACKBONE_KEYS:
        if key in item and key != "options":
            _check_type(study, where, key, item[key], "str")
    options = item.get("options", {})
    if not isinstance(options, dict):
        raise study.error(f"expected a table of the model kind's options, got {options!r}", where, "options")
    if item.get("pretrained") and item.get("checkpoint"):
        raise study.error("give either 'pretrained' or 'checkpoint', not both", where, "checkpoint")
    model = item["model"]
    if model.endswith(".json"):
        model = _resolve(model, study.base)
    ck = _resolve(item["checkpoint"], study.base) if item.get("checkpoint") else None
    p = study.protocol
    return BackboneSpec(model=model, pretrained=item.get("pretrained"), checkpoint=ck, label=item.get("label"),
                        device=p.get("device", "auto"), precision=p.get("precision", "fp32"), options=dict(options))


def _parse_dataset(study: Study, where: str, item: dict) -> StudyDataset:
    for key in ("name", "path"):
        if key not in item:
            raise study.error(f"missing '{key}'", where, key)
    for key in ("name", "path", "labels", "class_frequency") + READER_KEYS:
        if key in item:
            _check_type(study, where, key, item[key], "str")
    for key in ("external_predictions", "embeddings"):
        if key in item:
            if isinstance(item[key], str):
                item[key] = [item[key]]
            _check_type(study, where, key, item[key], "strs")
    if "templates" in item:
        _check_any(study, where, "templates", item["templates"], ("str", "strs"))
    if not valid_dataset_name(item["name"]):
        raise study.error(BAD_NAME.format(name=item["name"]), where, "name")
    base = study.base
    return StudyDataset(
        name=item["name"], path=_resolve(item["path"], base),
        labels=_resolve(item["labels"], base) if item.get("labels") else None,
        templates=_resolve_templates(item["templates"], base) if "templates" in item else None,
        class_frequency=_resolve(item["class_frequency"], base) if item.get("class_frequency") else None,
        external_predictions=[_resolve_external(s, base) for s in item.get("external_predictions", [])],
        embeddings=[_resolve(s, base) for s in item.get("embeddings", [])],
        split=item.get("split"), image_column=item.get("image_column"), label_column=item.get("label_column"),
        data_root=_resolve(item["data_root"], base) if item.get("data_root") else None,
    )


def load_study(path: str | Path) -> Study:
    """Read a study file (see :func:`parse_study`)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("study file not found", file=p)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the study file ({e})", file=p) from None
    return parse_study(text, p.resolve())


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _relative(path: Optional[str], base: Path) -> Optional[str]:
    """Paths inside the study file's folder are written relative to it, so a study folder can move."""
    if not path or _URI_RE.match(path):
        return path
    if "::" in path:
        return "::".join(_relative(p, base) or p for p in path.split("::"))
    try:
        return Path(path).resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path


def study_to_toml(study: Study, base: Optional[Path] = None) -> str:
    """The study as TOML (paths relative to ``base``, the folder the file is written to)."""
    from core.labels.labelset import TEMPLATE_PRESETS

    base = base or study.base
    lines = []
    for key in PROTOCOL_KEYS:
        if key in study.protocol:
            v = study.protocol[key]
            if key in ("class_frequency", "vocabulary") or (key == "templates" and isinstance(v, str) and v not in TEMPLATE_PRESETS):
                v = _relative(v, base)
            lines.append(f"{key} = {_toml_value(v)}")
    for b in study.backbones:
        lines += ["", "[[backbones]]", f"model = {_toml_value(_relative(b.model, base) if b.model.endswith('.json') else b.model)}"]
        if b.pretrained:
            lines.append(f"pretrained = {_toml_value(b.pretrained)}")
        if b.checkpoint:
            lines.append(f"checkpoint = {_toml_value(_relative(b.checkpoint, base))}")
        if b.label:
            lines.append(f"label = {_toml_value(b.label)}")
    for d in study.datasets:
        lines += ["", "[[datasets]]", f"name = {_toml_value(d.name)}", f"path = {_toml_value(_relative(d.path, base))}"]
        if d.labels:
            lines.append(f"labels = {_toml_value(_relative(d.labels, base))}")
        if d.templates is not None:
            t = d.templates
            lines.append(f"templates = {_toml_value(_relative(t, base) if isinstance(t, str) and t not in TEMPLATE_PRESETS else t)}")
        if d.class_frequency:
            lines.append(f"class_frequency = {_toml_value(_relative(d.class_frequency, base))}")
        if d.external_predictions:
            ext = [f"{n}={_relative(f, base)}" for n, _, f in (s.partition("=") for s in d.external_predictions)]
            lines.append(f"external_predictions = {_toml_value(ext)}")
        if d.embeddings:
            lines.append(f"embeddings = {_toml_value([_relative(e, base) for e in d.embeddings])}")
        for key in READER_KEYS:
            v = getattr(d, key)
            if v:
                lines.append(f"{key} = {_toml_value(_relative(v, base) if key == 'data_root' else v)}")
    return "\n".join(lines) + "\n"


def save_study(study: Study, path: str | Path) -> Path:
    """Write the study file; the study then belongs to that file (its folder is the base)."""
    p = Path(path)
    text = study_to_toml(study, p.resolve().parent)
    parse_study(text, p.resolve())  # never write a file that would not read back
    p.write_text(text, encoding="utf-8")
    study.file = str(p.resolve())
    study.lines = _key_lines(text)
    return p


# ---------------------------------------------------------------- from entries to sweeps


@dataclass
class StudyOptions:
    """How to run a study (none of it changes the numbers)."""

    out: str
    overwrite: bool = False
    rerun: list[str] = field(default_factory=list)
    engine: str = "local"
    address: Optional[str] = None
    cache_dir: Optional[str] = None
    use_cache: bool = True
    num_workers: Optional[int] = None


def sweep_config(study: Study, ds: StudyDataset, out: str | Path, options: Optional[StudyOptions] = None):
    """The :class:`~core.util.config.SweepConfig` of one dataset of the study."""
    from core.pipeline.runner import SweepConfig

    p = study.protocol
    opts = options or StudyOptions(out=str(out))
    extra: dict[str, Any] = {}
    if "controls" in p:
        extra["controls"] = list(p["controls"])
    freq = ds.class_frequency or p.get("class_frequency")
    cfg = dict(
        dataset=ds.path, out=str(run_path(out, ds.name)), backbones=[replace(b) for b in study.backbones],
        labels=ds.labels, templates=ds.templates if ds.templates is not None else p.get("templates", "simple"),
        levels=p.get("levels"), mode=p.get("mode", "flat"), orderings=p.get("orderings", 1), seed=p.get("seed", 0),
        batch_size=p.get("batch_size", 64), num_workers=opts.num_workers, cache_dir=opts.cache_dir,
        use_cache=opts.use_cache, class_frequency=freq, external_predictions=list(ds.external_predictions),
        embeddings=list(ds.embeddings), **ds.reader_options(), **extra,
    )
    for key in ("ensemble_shots", "ensemble_splits", "ensemble_methods", "bootstrap", "vocabulary", "alpha", "perturb",
                "extend_names", "extend_to", "similarity_k",
                "probe_shots", "probe_solver"):
        if key in p:
            cfg[key] = list(p[key]) if isinstance(p[key], list) else p[key]
    if "probe_shots" in cfg:  # "1,2,all" and [1, 2, "all"] are one protocol (run.json keeps the list)
        from core.stats.probe import parse_probe_shots

        cfg["probe_shots"] = parse_probe_shots(cfg["probe_shots"], field="probe_shots")
    known = SweepConfig.__dataclass_fields__
    for key in cfg:
        if key not in known:
            raise study.error(f"this version of semscale has no '{key}' option", key=key)
    return SweepConfig(**cfg)


@dataclass
class Resolved:
    """What a dataset's entry resolves to (compared with a finished run's run.json)."""

    labels: dict[str, list[str]]
    templates: list[str]
    levels: list[int]
    n_images: int


def check_dataset(study: Study, index: int, checked_backbones: Optional[set] = None) -> Resolved:
    """Open everything a dataset entry names; an InputError names the entry and the field."""
    from core.data import load_dataset
    from core.stats.external import load_external_predictions
    from core.stats.frequency import load_class_frequency
    from core.labels.labelset import labels_from_classes, load_labels, load_templates, parse_levels

    ds = study.datasets[index]
    where = f"datasets.{index}"
    p = study.protocol

    def wrap(key: str, fn, *args):
        try:
            return fn(*args)
        except InputError as e:
            line = study.lines.get(f"{where}.{key}") or study.lines.get(where)
            raise InputError(f"dataset '{ds.name}': {e}", file=study.file, line=line,
                             field=f"datasets[{index}].{key}") from None
        except OSError as e:
            line = study.lines.get(f"{where}.{key}") or study.lines.get(where)
            raise InputError(f"dataset '{ds.name}': {e.strerror or e}: {getattr(e, 'filename', '')}",
                             file=study.file, line=line, field=f"datasets[{index}].{key}") from None

    if ds.embeddings:
        from core.embedding.store import stores_dataset

        data = wrap("embeddings", stores_dataset, ds.embeddings)
        if len(ds.embeddings) != len(study.backbones):
            raise study.error(f"dataset '{ds.name}': {len(ds.embeddings)} embedding stores but "
                              f"{len(study.backbones)} backbones; give one store per backbone, in order",
                              where, "embeddings")
    else:
        data = wrap("path", lambda: load_dataset(ds.path, **ds.reader_options()))
    if not data.records:
        raise study.error(f"dataset '{ds.name}': no images found in {ds.path}", where, "path")
    labels = (wrap("labels", load_labels, ds.labels, data.classes, ds.data_root) if ds.labels
              else labels_from_classes(data.classes))
    missing = [c for c in data.classes if c not in labels.names]
    if len(missing) == len(data.classes):
        raise study.error(f"dataset '{ds.name}': no class of the dataset has names in the labels file "
                          f"(dataset classes: {', '.join(data.classes[:5])}…)", where, "labels")
    if ds.templates is not None:
        templates = wrap("templates", load_templates, ds.templates)
    else:
        try:
            templates = load_templates(p.get("templates", "simple"))
        except InputError as e:  # the study's own templates: the top-level key
            raise study.error(str(e), key="templates") from None
    try:
        levels = parse_levels(p.get("levels"), labels.max_names)
    except InputError as e:
        raise study.error(f"{e.message}", key="levels") from None
    freq = ds.class_frequency or p.get("class_frequency")
    if freq:
        wrap("class_frequency", load_class_frequency, freq)
    for spec in ds.external_predictions:
        wrap("external_predictions", load_external_predictions, spec, labels)
    if checked_backbones is not None:
        _check_backbones(study, checked_backbones)
    return Resolved(labels=labels.names, templates=list(templates), levels=list(levels), n_images=len(data.records))


def _check_backbones(study: Study, done: set) -> None:
    from core.models.registry import load_model
    from core.util.errors import WeightsUnavailable

    for i, spec in enumerate(study.backbones):
        if i in done:
            continue
        try:
            load_model(replace(spec), lazy=True).check()
        except (InputError, WeightsUnavailable) as e:
            key = "checkpoint" if spec.checkpoint else ("pretrained" if spec.pretrained else "model")
            raise study.error(f"backbone '{spec.display}': {e}", f"backbones.{i}", key) from None
        done.add(i)


def validate_study(study: Study) -> dict[str, Resolved]:
    """Check every entry (datasets, labels, templates, levels, backbones) before anything runs."""
    checked: set = set()
    _check_backbones(study, checked)
    return {d.name: check_dataset(study, i) for i, d in enumerate(study.datasets)}


def _json_norm(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))


def run_protocol(config: dict, study_out: Optional[Path] = None) -> dict:
    """The part of a run's config that decides its numbers, normalised for comparison.

    Embedding stores the study wrote itself (the ray engine's, under ``OUT/embeddings``)
    are an engine detail and left out.
    """
    from core.pipeline.runner import SweepConfig

    defaults: dict[str, Any] = {}
    for f in fields(SweepConfig):
        if f.default is not MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not MISSING:
            defaults[f.name] = f.default_factory()
    out = {k: config.get(k, defaults.get(k)) for k in RUN_PROTOCOL_FIELDS}
    from core.pipeline.settle import wants_settling

    if wants_settling(out.get("levels")):  # the levels a curve settled at are a result, not a setting
        out["levels_resolved"] = None
    if out.get("extend_names"):  # so are the names the suggestion engine added
        out["labels_resolved"] = None
    own = str((study_out / "embeddings").resolve()) if study_out is not None else None
    out["embeddings"] = [e for e in (out["embeddings"] or []) if not (own and str(Path(e).resolve()).startswith(own))]
    # a run written before specs had options has none
    out["backbones"] = [{k: (b.get(k) or {}) if k == "options" else b.get(k) for k in BACKBONE_PROTOCOL_FIELDS}
                        for b in config.get("backbones", [])]
    return _json_norm(out)


def expected_protocol(config, resolved: Resolved, study_out: Optional[Path] = None) -> dict:
    """What run.json's config would hold for this dataset (see :func:`run_protocol`)."""
    d = config.to_dict()
    d.update(templates_resolved=resolved.templates, levels_resolved=resolved.levels, labels_resolved=resolved.labels)
    return run_protocol(d, study_out)


def protocol_changes(old: dict, new: dict) -> list[str]:
    """The keys whose values differ (for the refusal message)."""
    return [k for k in new if old.get(k) != new.get(k)]


@dataclass
class DatasetPlan:
    """What a study run will do with one dataset: ``run`` or ``skip`` (with why)."""

    name: str
    action: str
    reason: str
    run_dir: str


def plan_study(study: Study, options: StudyOptions, resolved: dict[str, Resolved]) -> list[DatasetPlan]:
    """Decide per dataset: skip (completed, same protocol), run (new/unfinished), or refuse."""
    from core.results.runs import run_status
    from core.util.tables import read_user_json

    out = Path(options.out)
    unknown = [n for n in options.rerun if n not in {d.name for d in study.datasets}]
    if unknown:
        raise InputError(f"no dataset called '{unknown[0]}' in the study "
                         f"(datasets: {', '.join(d.name for d in study.datasets)})", field="rerun")
    plans, refused = [], []
    for ds in study.datasets:
        config = sweep_config(study, ds, out, options)
        run_dir = Path(config.out)
        meta_path = run_dir / "run.json"
        if not meta_path.exists():
            leftovers = run_dir.is_dir() and any(run_dir.iterdir())
            plans.append(DatasetPlan(ds.name, "run", "unfinished (no run.json)" if leftovers else "new", str(run_dir)))
            continue
        try:
            meta = read_user_json(meta_path)
        except InputError:
            plans.append(DatasetPlan(ds.name, "run", "run.json unreadable", str(run_dir)))
            continue
        status = run_status(meta)
        if status == "running":
            raise InputError(f"dataset '{ds.name}' is being run right now by process {meta.get('pid')} on "
                             f"{meta.get('host')}; wait for it or stop it", file=meta_path)
        changed = protocol_changes(run_protocol(meta.get("config", {}), out),
                                   expected_protocol(config, resolved[ds.name], out))
        forced = options.overwrite or ds.name in options.rerun
        if forced:
            plans.append(DatasetPlan(ds.name, "run", "--rerun" if ds.name in options.rerun else "--overwrite",
                                     str(run_dir)))
        elif changed:
            refused.append((ds.name, changed))
            plans.append(DatasetPlan(ds.name, "refuse", "protocol changed: " + ", ".join(changed), str(run_dir)))
        elif status == "completed":
            plans.append(DatasetPlan(ds.name, "skip", "completed with the same protocol", str(run_dir)))
        else:
            plans.append(DatasetPlan(ds.name, "run", f"previous run {status}", str(run_dir)))
    if refused:
        name, changed = refused[0]
        more = f" (and {len(refused) - 1} more datasets)" if len(refused) > 1 else ""
        raise InputError(f"dataset '{name}' already has a run with another protocol ({', '.join(changed)} changed)"
                         f"{more}; use --overwrite to re-run every changed dataset or --rerun {name}",
                         file=run_path(out, name) / "run.json")
    return plans


# ---------------------------------------------------------------- running


@dataclass
class DatasetStarted:
    """A study moved to its ``index``-th dataset (``action`` is run or skip)."""

    name: str
    index: int
    total: int
    action: str
    reason: str = ""


@dataclass
class DatasetFinished:
    """One dataset of a study is done (``status``: completed, skipped, cancelled, failed)."""

    name: str
    index: int
    total: int
    status: str
    run_dir: str
    images_encoded: int = 0
    error: str = ""


@dataclass
class StudyResult:
    out: str
    status: str  # completed | cancelled | failed (some dataset failed)
    datasets: dict[str, dict] = field(default_factory=dict)
    summaries: dict[str, str] = field(default_factory=dict)


def _embed_with_ray(config, study_out: Path, options: StudyOptions, emit, cancel) -> list[str]:
    """Embedding stores of every backbone for one dataset, written on a Ray cluster (resumable)."""
    from core.embedding.distributed import EmbedConfig, run_embed
    from core.pipeline.runner import slug

    stores = []
    name = Path(config.out).name
    for spec in config.backbones:
        store = study_out / "embeddings" / name / slug(spec.display)
        emit(Log(f"{name}: embedding with {spec.display} on Ray → {store}"))
        run_embed(EmbedConfig(dataset=config.dataset, out=str(store), backbone=replace(spec), engine="ray",
                              batch_size=config.batch_size, address=options.address), emit=emit, cancel=cancel)
        stores.append(str(store))
    return stores


def _write_study_json(out: Path, study: Study, options: StudyOptions, status: str, datasets: dict) -> None:
    from core.util.files import atomic_write_json
    from core.util.versions import now, versions

    protocol = {k: study.protocol[k] for k in PROTOCOL_KEYS if k in study.protocol}
    atomic_write_json(out / "study.json", {
        "status": status, "updated": now(), "study_file": study.file, "engine": options.engine,
        "protocol": protocol, "backbones": [b.to_dict() for b in study.backbones],
        "datasets": [{"name": d.name, "path": d.path, "labels": d.labels, **datasets.get(d.name, {})}
                     for d in study.datasets],
        "versions": versions(),
    })


def run_study(study: Study, options: StudyOptions, emit: EventCallback = ignore_events,
              cancel: Optional[CancelToken] = None) -> StudyResult:
    """Run every dataset of the study that needs it; summaries are rewritten after each dataset that ran.

    Bad entries and refused protocol changes raise :class:`InputError` before any run
    starts. Cancelling keeps finished datasets (and the finished levels of the current
    one); KeyboardInterrupt is re-raised after study.json and the summaries are written.
    """
    from core.results.runs import load_run
    from core.study.summary import write_summaries
    from core.pipeline.runner import run_sweep

    cancel = cancel or CancelToken()
    if options.engine not in STUDY_ENGINES:
        raise InputError(f"unknown engine '{options.engine}' (choose local or ray)", field="engine")
    resolved = validate_study(study)
    plans = plan_study(study, options, resolved)
    out = Path(options.out)
    try:
        (out / RUNS_FOLDER).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the study folder ({e.strerror or e})", file=out, field="out") from None
    datasets: dict[str, dict] = {}
    for plan in plans:
        info = {"run_dir": str(run_path("", plan.name)), "status": "pending", "plan": plan.action,
                "reason": plan.reason}
        if plan.action == "skip":
            info["status"] = "completed"
        datasets[plan.name] = info
    _write_study_json(out, study, options, "running", datasets)
    runs = {d.name: run_path(out, d.name) for d in study.datasets}
    status = "completed"
    total = len(plans)
    try:
        for i, (ds, plan) in enumerate(zip(study.datasets, plans)):
            if cancel.cancelled:
                status = getattr(cancel, "status", "cancelled")  # "interrupted" when a stop signal asked
                break
            emit(DatasetStarted(ds.name, i, total, plan.action, plan.reason))
            info = datasets[ds.name]
            if plan.action == "skip":
                emit(Log(f"{ds.name}: {plan.reason}; skipped"))
                emit(DatasetFinished(ds.name, i, total, "skipped", plan.run_dir))
                continue  # nothing changed: the summaries are rebuilt once at the end
            run_dir = Path(plan.run_dir)
            if run_dir.exists():  # an unfinished or replaced run of this study: start it afresh
                shutil.rmtree(run_dir)
            config = sweep_config(study, ds, out, options)
            info["status"] = "running"
            _write_study_json(out, study, options, "running", datasets)
            emit(Log(f"{ds.name}: {plan.reason}; running {len(config.backbones)} backbone(s) → {run_dir}"))
            try:
                if options.engine == "ray" and not config.embeddings:
                    config.embeddings = _embed_with_ray(config, out, options, emit, cancel)
                result = run_sweep(config, emit=emit, cancel=cancel)
                info["status"] = result.status
            except Cancelled:  # stopped while embedding on Ray: the stores keep their finished shards
                info["status"] = getattr(cancel, "status", "cancelled")
            except KeyboardInterrupt as e:
                info["status"] = getattr(e, "status", "cancelled")
                raise
            except Exception as e:  # one failing dataset does not stop the others
                info["status"] = "failed"
                info["error"] = f"{type(e).__name__}: {e}" if not isinstance(e, InputError) else str(e)
                emit(Log(f"{ds.name}: failed: {info['error']}", "error"))
                status = "failed"
            encoded = 0
            if run_dir.joinpath("run.json").exists():
                summ = load_run(run_dir).meta.get("summary", {})
                encoded = sum(int(b.get("images_encoded", 0)) for b in summ.get("backbones", {}).values())
            info["images_encoded"] = encoded
            write_summaries(out, runs)
            _write_study_json(out, study, options, "running", datasets)
            emit(DatasetFinished(ds.name, i, total, info["status"], str(run_dir), encoded, info.get("error", "")))
            if info["status"] in ("cancelled", "interrupted"):
                status = info["status"]
                break
    except KeyboardInterrupt as e:
        status = getattr(e, "status", "cancelled")
        write_summaries(out, runs)
        _write_study_json(out, study, options, status, datasets)
        raise
    paths = write_summaries(out, runs)
    _write_study_json(out, study, options, status, datasets)
    return StudyResult(str(out), status, datasets, {k: str(v) for k, v in paths.items()})
