"""Class names, synonyms, prompt templates and the level schedule.

A labels file gives, per class, an ordered list of names; the first is the canonical
name and the order is the rank used to build levels (level k = first k names).
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from .config import TEMPLATE_PRESETS
from .errors import InputError
from .files import atomic_write_text
from .names import display_name, name_key
from .tables import formula_warnings, parse_user_json, read_user_text, strict_csv_rows



@dataclass
class LabelSet:
    """Ranked names per class. ``sources`` records where each name came from."""

    names: dict[str, list[str]]
    sources: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    path: Optional[str] = None

    @property
    def classes(self) -> list[str]:
        return list(self.names)

    @property
    def max_names(self) -> int:
        return max((len(v) for v in self.names.values()), default=0)

    def all_names(self) -> list[str]:
        """Every distinct name, in first-seen order (what the text encoder must embed)."""
        seen: dict[str, None] = {}
        for names in self.names.values():
            for n in names:
                seen.setdefault(n, None)
        return list(seen)

    def ordered(self, ordering: int = 0, seed: int = 0) -> dict[str, list[str]]:
        """Names per class in the given ordering.

        Ordering 0 is the file's ranking. Orderings 1..N shuffle each class's synonyms
        with a seed derived from (seed, ordering) while keeping the canonical name first,
        so level 1 stays the canonical baseline and higher levels show spread.
        """
        if ordering == 0:
            return {c: list(v) for c, v in self.names.items()}
        out = {}
        for c, v in self.names.items():
            # one generator per class, over the names in sorted order: a shuffle never depends on
            # where the class or its names sit in the file
            rng = random.Random(f"{seed}:{ordering}:{c}")
            rest = sorted(v[1:])
            rng.shuffle(rest)
            out[c] = v[:1] + rest
        return out

    def to_frame(self):
        import pandas as pd

        rows = []
        for c, names in self.names.items():
            srcs = self.sources.get(c, [])
            for i, n in enumerate(names):
                rows.append({"class": c, "synonym": n, "source": srcs[i] if i < len(srcs) else ""})
        return pd.DataFrame(rows, columns=["class", "synonym", "source"])

    def save(self, path: str | Path) -> None:
        """Write CSV (``class,synonym,source``) or JSON depending on the suffix."""
        path = Path(path)
        if path.suffix.lower() == ".json":
            atomic_write_text(path, json.dumps(self.names, indent=2, ensure_ascii=False) + "\n")
        else:
            df = self.to_frame()
            if not any(df["source"].astype(bool)):
                df = df.drop(columns=["source"])
            atomic_write_text(path, df.to_csv(index=False))


def shared_names(names: dict[str, list[str]]) -> dict[str, list[str]]:
    """:func:`~core.names.name_key` -> the classes listing it, for names under more than one class."""
    owners: dict[str, list[str]] = {}
    for c, ns in names.items():
        for n in ns:
            lst = owners.setdefault(name_key(n), [])
            if c not in lst:
                lst.append(c)
    return {k: v for k, v in owners.items() if len(v) > 1}


def shared_name_warnings(names: dict[str, list[str]]) -> list[str]:
    """One warning per name that a later class shares with an earlier one."""
    shared = shared_names(names)
    return [f"name '{n}' appears under classes '{shared[name_key(n)][0]}' and '{c}'"
            for c, ns in names.items() for n in ns if shared.get(name_key(n), [c])[0] != c]


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
    from .benchmark_presets import is_preset, preset_labels

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
    from . import open_clip_files  # open_clip's own lists, read without importing open_clip

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
    from .benchmark_presets import benchmark_templates, is_preset

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


def parse_levels(text: str | Sequence[int] | None, max_names: int) -> list[int]:
    if text is None or text == "" or text == "auto":
        return default_levels(max_names)
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
