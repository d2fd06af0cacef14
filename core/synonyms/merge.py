"""The hygiene rules that turn candidate names into a labels file: dedupe, collisions, user names first."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

from core.util.errors import InputError
from core.labels.labelset import LabelSet
from core.util.names import display_name as clean_name, name_key as normalise_name
from core.synonyms.suggestion import Suggestion


@dataclass(frozen=True)
class DroppedName:
    """A suggestion left out: it is another class's name, or it was suggested for two classes."""

    cls: str
    name: str
    source: str
    why: str  # "already a name of 'x'" or "also suggested for 'x'"

    @property
    def message(self) -> str:
        return f"class '{self.cls}': dropped '{self.name}' ({self.source}): {self.why}"


def dropped_counts(dropped: Sequence[DroppedName]) -> dict[str, int]:
    """How many suggestions were dropped per class."""
    return dict(Counter(d.cls for d in dropped))


def _class_keys(labels: LabelSet) -> dict[str, set[str]]:
    """Normalised names that belong to each class (its key and every name)."""
    return {c: {normalise_name(c)} | {normalise_name(n) for n in ns} for c, ns in labels.names.items()}


def merge_suggestions(labels: LabelSet, suggestions: Mapping[str, Sequence[Suggestion]], per_class: int,
                      keep_collisions: bool = False) -> LabelSet:
    """A new label set: each class's existing names, then suggestions up to ``per_class`` names.

    Rules: existing names keep their order and sources (an empty source becomes
    ``user``) and are never dropped, even beyond ``per_class``. A suggestion is skipped
    when it duplicates a name already chosen for the class (see :func:`normalise_name`).
    A suggestion that is another class's name, or that would be chosen for two classes,
    is a collision: dropped from every class involved and listed in ``warnings`` (or
    kept, with ``;collision:<class>`` appended to its source, when ``keep_collisions``).
    Classes missing from ``suggestions`` are copied unchanged.
    """
    return _merge(labels, suggestions, per_class, keep_collisions)[0]


def _merge(labels: LabelSet, suggestions: Mapping[str, Sequence[Suggestion]], per_class: int,
           keep_collisions: bool) -> tuple[LabelSet, list[DroppedName]]:
    """:func:`merge_suggestions` plus the suggestions it dropped as collisions."""
    if per_class < 1:
        raise InputError(f"names per class must be at least 1, got {per_class}", field="per-class")
    owners: dict[str, set[str]] = {}
    for c, keys in _class_keys(labels).items():
        for k in keys:
            owners.setdefault(k, set()).add(c)

    Picked = list[tuple[Suggestion, str]]  # (suggestion with its clean name, key)

    def select(banned: Mapping[str, set[str]]) -> tuple[dict[str, Picked], dict[str, list[tuple[Suggestion, str]]]]:
        chosen: dict[str, Picked] = {}
        clashes: dict[str, list[tuple[Suggestion, str]]] = {}
        for c, existing in labels.names.items():
            have = {normalise_name(n) for n in existing}
            picked: Picked = []
            room = per_class - len(existing)
            for s in suggestions.get(c, ()):
                if len(picked) >= room:
                    break
                name = clean_name(s.name)
                k = normalise_name(name)
                if not k or k in have:
                    continue
                have.add(k)
                s = Suggestion(name, s.source, s.score, s.note)
                others = owners.get(k, set()) - {c}
                if not keep_collisions and others:
                    why = "already a name of " + ", ".join(f"'{o}'" for o in sorted(others))
                    clashes.setdefault(c, []).append((s, why))
                elif not keep_collisions and k in banned:
                    why = "also suggested for " + ", ".join(f"'{o}'" for o in sorted(banned[k] - {c}))
                    clashes.setdefault(c, []).append((s, why))
                else:
                    picked.append((s, k))
            chosen[c] = picked
        return chosen, clashes

    # A name chosen for two classes is banned from both and the selection redone (so
    # the outcome does not depend on class order); repeat until nothing is shared.
    banned: dict[str, set[str]] = {}
    while True:
        chosen, clashes = select(banned)
        picked_by: dict[str, set[str]] = {}
        for c, picked in chosen.items():
            for _, k in picked:
                picked_by.setdefault(k, set()).add(c)
        shared = {k: cs for k, cs in picked_by.items() if len(cs) > 1}
        if keep_collisions or not shared:
            break
        for k, cs in shared.items():
            banned.setdefault(k, set()).update(cs)

    names: dict[str, list[str]] = {}
    sources: dict[str, list[str]] = {}
    warns = list(labels.warnings)
    dropped: list[DroppedName] = []
    for c, existing in labels.names.items():
        src = list(labels.sources.get(c, []))
        names[c] = list(existing)
        sources[c] = [(src[i] if i < len(src) and src[i] else "user") for i in range(len(existing))]
        for s, k in chosen[c]:
            source = s.source
            others = (owners.get(k, set()) | picked_by.get(k, set())) - {c}
            if others:  # only reachable with keep_collisions
                source += ";collision:" + "/".join(sorted(others))
                warns.append(f"class '{c}': kept '{s.name}' ({s.source}), which is also a name of "
                             + ", ".join(f"'{o}'" for o in sorted(others)))
            names[c].append(s.name)
            sources[c].append(source)
        for s, why in clashes.get(c, []):
            dropped.append(DroppedName(c, s.name, s.source, why))
            warns.append(dropped[-1].message)
    return LabelSet(names=names, sources=sources, warnings=warns, path=None), dropped
