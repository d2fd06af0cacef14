"""One call for the CLI and the app: fill every class up to ``per_class`` names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from core.util.errors import InputError
from core.util.events import CancelToken, EventCallback, Log, ignore_events
from core.labels.labelset import LabelSet
from core.util.names import display_name as clean_name, name_key as normalise_name
from core.synonyms.merge import DroppedName, _class_keys, _merge, dropped_counts
from core.synonyms.neighbours import build_neighbour_index
from core.synonyms.suggestion import SUGGESTION_SOURCES, Suggestion, dedupe_suggestions
from core.labels.wordnet_files import WordNetUnavailable
from core.synonyms.wordnet import DEFAULT_MAX_VOCABULARY, wordnet_suggestions, wordnet_vocabulary


@dataclass
class SuggestReport:
    """What :func:`suggest_for_labels` did, for summaries (counts per class)."""

    labels: LabelSet
    added: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    vocabulary_size: int = 0
    wordnet: Optional[str] = None
    collisions: list[DroppedName] = field(default_factory=list)  # what ``dropped`` counts


def suggest_for_labels(
    labels: LabelSet,
    per_class: int,
    *,
    sources: Sequence[str] = ("wordnet",),
    wordnet_reader=None,
    include_related: bool = False,
    max_senses: Optional[int] = 1,
    backbone=None,
    templates: Optional[Sequence[str]] = None,
    vocabulary: Optional[Sequence[str]] = None,
    max_vocabulary: int = DEFAULT_MAX_VOCABULARY,
    min_similarity: Optional[float] = None,
    cache=None,
    keep_collisions: bool = False,
    emit: EventCallback = ignore_events,
    cancel: Optional[CancelToken] = None,
) -> SuggestReport:
    """Fill every class up to ``per_class`` names from the given sources, in order.

    ``wordnet`` needs ``wordnet_reader`` (:func:`open_wordnet`); ``neighbours`` needs a
    ``backbone`` and ``templates``, and uses ``vocabulary`` or else WordNet noun lemmas
    (limited to ``max_vocabulary``, since CPU text encoding is slow). Each class is
    looked up by its canonical (first) name, falling back to the class key.
    """
    if per_class < 1:
        raise InputError(f"names per class must be at least 1, got {per_class}", field="per-class")
    unknown = [s for s in sources if s not in SUGGESTION_SOURCES]
    if unknown or not sources:
        raise InputError(f"unknown suggestion source '{(unknown or [''])[0]}' (choose from "
                         f"{', '.join(SUGGESTION_SOURCES)})", field="source")
    cancel = cancel or CancelToken()
    queries = {c: (ns[0] if ns else c) for c, ns in labels.names.items()}
    need = {c: max(0, per_class - len(ns)) for c, ns in labels.names.items()}
    found: dict[str, list[Suggestion]] = {c: [] for c in labels.names}
    vocab_size = 0
    for source in dict.fromkeys(sources):
        cancel.raise_if_cancelled()
        if source == "wordnet":
            if wordnet_reader is None:
                raise WordNetUnavailable("the wordnet source needs a WordNet database (see --wordnet)",
                                         field="wordnet")
            for c, q in queries.items():
                if not need[c]:
                    continue
                got = wordnet_suggestions(wordnet_reader, q, include_related, max_senses=max_senses)
                if not got and q != c:
                    got = wordnet_suggestions(wordnet_reader, c, include_related, max_senses=max_senses)
                found[c] += got
        else:
            if backbone is None or not templates:
                raise InputError("the neighbours source needs a model (--model) and templates", field="model")
            if vocabulary is None:
                if wordnet_reader is None:
                    raise WordNetUnavailable("the neighbours source needs a vocabulary: pass --vocabulary FILE (one "
                                             "word per line) or make a WordNet database available (see --wordnet)",
                                             field="vocabulary")
                words = wordnet_vocabulary(wordnet_reader, [q for c, q in queries.items() if need[c]], max_vocabulary)
            else:
                words = list(vocabulary)
                if len(words) > max_vocabulary:
                    emit(Log(f"vocabulary has {len(words)} entries; using the first {max_vocabulary} "
                             "(raise --max-vocabulary to use more)", "warning"))
                    words = words[:max_vocabulary]
            index = build_neighbour_index(backbone, words, templates, cache=cache, emit=emit, cancel=cancel)
            vocab_size = len(index.names)
            todo = [c for c in labels.names if need[c]]
            if todo:
                from core.embedding.embed import embed_names

                q_emb = embed_names(backbone, [clean_name(queries[c]) for c in todo], list(templates), cache=cache,
                                    emit=emit, cancel=cancel)
                all_keys = set().union(*_class_keys(labels).values())
                for c, e in zip(todo, q_emb):
                    found[c] += index.query(e, top=need[c] * 2 + 5, min_similarity=min_similarity,
                                            exclude_keys={normalise_name(queries[c])}, uncounted_keys=all_keys)
    merged, dropped = _merge(labels, {c: dedupe_suggestions(v) for c, v in found.items()}, per_class,
                             keep_collisions)
    added = {c: len(merged.names[c]) - len(labels.names[c]) for c in labels.names}
    loc = getattr(wordnet_reader, "semscale_location", None)
    return SuggestReport(merged, added, dropped_counts(dropped), vocab_size, loc.describe() if loc else None, dropped)


SPARE_CANDIDATES = 5  # extra candidates per class when only some classes are asked for


def suggest_for_classes(labels: LabelSet, classes: Sequence[str], per_class: int, *,
                        keep_collisions: bool = False, **options) -> SuggestReport:
    """:func:`suggest_for_labels` for some of the classes, with every other class's names in view.

    The chosen classes get candidates (a few spare), which are then merged against the whole
    label set, so a suggestion that is already another class's name is dropped as a
    collision. The report's labels hold every class; ``added`` counts the chosen ones.
    """
    chosen = [c for c in dict.fromkeys(classes) if c in labels.names]
    if len(chosen) == len(labels.names):
        return suggest_for_labels(labels, per_class, keep_collisions=keep_collisions, **options)
    if not chosen:
        return SuggestReport(labels)
    subset = LabelSet(names={c: list(labels.names[c]) for c in chosen},
                      sources={c: list(labels.sources.get(c, [])) for c in chosen}, warnings=[], path=None)
    report = suggest_for_labels(subset, per_class + SPARE_CANDIDATES, keep_collisions=keep_collisions, **options)
    candidates = {c: [Suggestion(n, s) for n, s in zip(report.labels.names[c][len(labels.names[c]):],
                                                       report.labels.sources[c][len(labels.names[c]):])]
                  for c in chosen}
    merged, dropped = _merge(labels, candidates, per_class, keep_collisions)
    added = {c: len(merged.names[c]) - len(labels.names[c]) for c in chosen}
    return SuggestReport(merged, added, dropped_counts(dropped), report.vocabulary_size, report.wordnet, dropped)
