"""Class names, synonyms, prompt templates and the level schedule.

A labels file gives, per class, an ordered list of names; the first is the canonical
name and the order is the rank used to build levels (level k = first k names).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional, Sequence

from core.util.config import TEMPLATE_PRESETS
from core.util.errors import InputError
from core.util.names import display_name
from core.util.tables import formula_warnings, parse_user_json, read_user_text, strict_csv_rows
from core.labels.base import LabelSet, shared_name_warnings, shared_names  # noqa: F401  (re-exported)



def _finish(names: dict[str, list[str]], sources, warnings, path) -> LabelSet:
    if not names:
        raise InputError("no classes found (the file is empty)", file=path)
    for c in names:
        if not names[c]:  # a class listed with no names is described by its own (display) name
            names[c] = [display_name(c)]
            sources[c] = ["class"]
    warnings.extend(shared_name_warnings(names))
    warnings.extend(formula_warnings(names))
    return LabelSet(names=names, sources=sources, warnings=warnings, path=str(path))


def _add(names, sources, warnings, path, line, cls, name, source=""):
    cls, name = cls.strip(), name.strip()
    if not cls:
        raise InputError("empty class name", file=path, line=line, field="class")
    lst = names.setdefault(cls, [])
    src = sources.setdefault(cls, [])
    if not name:
        return  # a class listed with no synonym: allowed, its class name is used below
    if name in lst:
        warnings.append(f"{path}:{line}: duplicate name '{name}' under class '{cls}' ignored")
        return
    lst.append(name)
    src.append(source.strip())


def load_labels_csv(path: Path) -> LabelSet:
    text = read_user_text(path)
    names: dict[str, list[str]] = {}
    sources: dict[str, list[str]] = {}
    warnings: list[str] = []
    first = True
    width: Optional[int] = None  # the header's column count, when there is a header
    for line, row in strict_csv_rows(text, path):
        if not row or all(not c.strip() for c in row):
            continue
        if row[0].lstrip().startswith("#"):
            continue
        if first:
            first = False
            header = [c.strip().lower() for c in row]
            if header[:2] == ["class", "synonym"] or header[:2] == ["class", "name"]:
                width = len(row)
                continue
        if len(row) < 2:
            raise InputError(
                f"expected 'class,synonym' but found {len(row)} column", file=path, line=line, field="synonym"
            )
        if len(row) > 3 or width is not None and len(row) > width:
            raise InputError(
                f"expected {width or 3} columns ('class,synonym{',source' if (width or 3) > 2 else ''}') but found "
                f"{len(row)}: extra fields (quote names that contain commas)",
                file=path,
                line=line,
            )
        _add(names, sources, warnings, path, line, row[0], row[1], row[2] if len(row) > 2 else "")
    return _finish(names, sources, warnings, path)


def _json_line(text: str, key: str) -> Optional[int]:
    needle = json.dumps(key, ensure_ascii=False)
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    return None


def load_labels_json(path: Path) -> LabelSet:
    text = read_user_text(path)
    data = parse_user_json(text, path)
    if not isinstance(data, dict):
        raise InputError('expected an object {"class": ["name", ...]}', file=path, line=1)
    names: dict[str, list[str]] = {}
    sources: dict[str, list[str]] = {}
    warnings: list[str] = []
    for cls, value in data.items():
        line = _json_line(text, cls)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError("expected a list of names (strings)", file=path, line=line, field=cls)
        names.setdefault(cls.strip(), [])
        for v in value:
            _add(names, sources, warnings, path, line, cls, v, "")
    return _finish(names, sources, warnings, path)


def load_labels(path: str | Path, dataset_classes: Optional[Sequence[str]] = None,
                data_root: Optional[str] = None) -> LabelSet:
    """Read a labels file (CSV or JSON, chosen by suffix, else sniffed), or a
    ``clip_benchmark:NAME`` preset (matched to ``dataset_classes`` when given)."""
    from core.labels.presets import is_preset, preset_labels

    if is_preset(str(path)) and not Path(path).exists():
        return preset_labels(str(path), dataset_classes, data_root)
    path = Path(path)
    if not path.exists():
        raise InputError("labels file not found", file=path)
    if path.suffix.lower() == ".json":
        return load_labels_json(path)
    if path.suffix.lower() in (".csv", ".txt", ".tsv"):
        return load_labels_csv(path)
    head = read_user_text(path).lstrip()[:1]
    return load_labels_json(path) if head in "{" and head else load_labels_csv(path)


def labels_from_classes(classes: Iterable[str]) -> LabelSet:
    """One name per class: its display name (``lawn_mower`` -> ``lawn mower``)."""
    names = {c: [display_name(c)] for c in classes}
    return LabelSet(names=names, sources={c: ["class"] for c in names}, warnings=formula_warnings(names))


# ---------------------------------------------------------------- templates


def preset_templates(name: str) -> list[str]:
    """Template strings of a preset, taken from open_clip where it defines them."""
    if name == "plain":
        return ["a photo of a {}."]
    from core.models import open_clip_files  # open_clip's own lists, read without importing open_clip

    if name == "openai":
        fns = open_clip_files.templates("OPENAI_IMAGENET_TEMPLATES")
    elif name == "simple":
        fns = open_clip_files.templates("SIMPLE_IMAGENET_TEMPLATES")
    else:
        raise InputError(f"unknown template preset '{name}' (choose from {', '.join(TEMPLATE_PRESETS)})")
    return [f("{}") if callable(f) else str(f) for f in fns]


def validate_templates(templates: Sequence[str], path: Optional[str] = None, first_line: int = 1,
                       lines: Optional[Sequence[int]] = None) -> list[str]:
    """The templates, checked; ``lines`` gives each one's line in ``path`` (comments and blanks skipped)."""
    out = []
    for i, t in enumerate(templates):
        line = lines[i] if lines is not None else first_line + i
        if "{}" not in t:
            raise InputError("template has no '{}' placeholder for the name", file=path, line=line, field="template")
        try:
            t.format("x")
        except (IndexError, KeyError, ValueError) as e:
            raise InputError(
                f"template cannot be formatted ({e}); write literal braces as '{{{{' and '}}}}'",
                file=path,
                line=line,
                field="template",
            ) from None
        out.append(t)
    if not out:
        raise InputError("no templates given", file=path)
    return out


def load_templates(spec: str | Path | Sequence[str]) -> list[str]:
    """A preset name (``openai``, ``simple``, ``plain``, ``clip_benchmark:NAME``), a file with one
    template per line, or a list of strings."""
    if isinstance(spec, (list, tuple)):
        return validate_templates(list(spec))
    spec_s = str(spec)
    if spec_s in TEMPLATE_PRESETS:
        return preset_templates(spec_s)
    from core.labels.presets import benchmark_templates, is_preset

    if is_preset(spec_s) and not Path(spec_s).exists():
        return validate_templates(benchmark_templates(spec_s), spec_s)
    path = Path(spec_s)
    if not path.exists():
        raise InputError(
            f"not a template preset ({', '.join(TEMPLATE_PRESETS)}) and no such file", file=spec_s
        )
    templates, lines = [], []
    for i, line in enumerate(read_user_text(path).splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        templates.append(s)
        lines.append(i)
    return validate_templates(templates, str(path), lines=lines)


# ---------------------------------------------------------------- levels


def default_levels(max_names: int) -> list[int]:
    """1, 2, 4, 8, … up to the longest name list (which is always included)."""
    levels, k = [], 1
    while k < max_names:
        levels.append(k)
        k *= 2
    if max_names >= 1:
        levels.append(max_names)
    return levels


UNTIL_SETTLED = "until-settled"  # levels 1, 2, 4, … scored until the curve settles (core.pipeline.settle)


def parse_levels(text: str | Sequence[int] | None, max_names: int) -> list[int]:
    if text is None or text == "" or text == "auto":
        return default_levels(max_names)
    if isinstance(text, str) and text.strip().lower() == UNTIL_SETTLED:
        return default_levels(max_names)  # the candidates; the sweep stops early once the curve settles
    if isinstance(text, str):
        try:
            values = [int(x) for x in text.replace(" ", "").split(",") if x]
        except ValueError:
            raise InputError(f"levels must be comma-separated integers, got '{text}'", field="levels") from None
    else:
        values = [int(x) for x in text]
    if not values or any(v < 1 for v in values):
        raise InputError(f"levels must be positive integers, got '{text}'", field="levels")
    return sorted(set(values))
