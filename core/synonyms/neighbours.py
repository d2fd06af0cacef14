"""Embedding neighbours: a vocabulary ranked by similarity under the backbone's own text encoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterable, Optional, Sequence, Union

import numpy as np

from core.util.events import CancelToken, EventCallback, ignore_events
from core.util.names import display_name as clean_name, name_key as normalise_name
from core.synonyms.suggestion import Suggestion


@dataclass
class NeighbourIndex:
    """Category embeddings of a vocabulary under one backbone and template set.

    Build it once (:func:`build_neighbour_index`) and query it for every class.
    """

    names: list[str]
    keys: list[str]
    matrix: np.ndarray  # (len(names), dim), rows L2-normalised
    backbone: str  # the backbone's cache identity
    templates: list[str]

    def query(self, embedding: np.ndarray, *, top: int = 16, min_similarity: Optional[float] = None,
              exclude_keys: Collection[str] = (), uncounted_keys: Collection[str] = ()) -> list[Suggestion]:
        """Nearest names to an (L2-normalised) embedding, most similar first.

        ``exclude_keys`` are never returned (the class's own name). Names whose key is
        in ``uncounted_keys`` (e.g. other classes' names) are returned, so the merge can
        report the collision, but do not count toward ``top``.
        """
        if not self.names:
            return []
        sims = self.matrix @ np.asarray(embedding, dtype=np.float32).reshape(-1)
        order = np.argsort(-sims, kind="stable")
        out: list[Suggestion] = []
        counted = 0
        for j in order:
            s = float(sims[j])
            if min_similarity is not None and s < min_similarity:
                break
            k = self.keys[j]
            if k in exclude_keys:
                continue
            out.append(Suggestion(self.names[j], f"neighbours:{s:.2f}", s, "cosine to the canonical name"))
            if k not in uncounted_keys:
                counted += 1
                if counted >= top:
                    break
        return out


def _prepare_vocabulary(vocabulary: Iterable[str]) -> tuple[list[str], list[str]]:
    names, keys, seen = [], [], set()
    for v in vocabulary:
        n = clean_name(v)
        k = normalise_name(n)
        if k and k not in seen:
            seen.add(k)
            names.append(n)
            keys.append(k)
    return names, keys


def build_neighbour_index(backbone, vocabulary: Iterable[str], templates: Sequence[str], *, cache=None,
                          emit: EventCallback = ignore_events, cancel: Optional[CancelToken] = None,
                          batch_size: int = 256) -> NeighbourIndex:
    """Embed a vocabulary (deduplicated) through :func:`core.embedding.embed.embed_names` and its cache."""
    from core.embedding.embed import embed_names

    names, keys = _prepare_vocabulary(vocabulary)
    templates = list(templates)
    matrix = (embed_names(backbone, names, templates, cache=cache, emit=emit, cancel=cancel, batch_size=batch_size)
              if names else np.zeros((0, backbone.embed_dim), np.float32))
    return NeighbourIndex(names, keys, matrix, backbone.identity, templates)


def neighbour_suggestions(backbone, class_name: str, vocabulary: Union[NeighbourIndex, Iterable[str]],
                          templates: Sequence[str], cache=None, top: int = 16, *,
                          min_similarity: Optional[float] = None, uncounted_keys: Collection[str] = (),
                          emit: EventCallback = ignore_events,
                          cancel: Optional[CancelToken] = None) -> list[Suggestion]:
    """Vocabulary names nearest to ``class_name`` in the backbone's text-embedding space.

    The class's category embedding and the vocabulary's use the same templates and the
    same convention as a sweep (normalised mean over templates), so the similarity is
    the one the classifier will see. The name itself (and its plural, case variants) is
    left out; each suggestion's source records its similarity (``neighbours:0.83``).
    """
    from core.embedding.embed import embed_names

    index = vocabulary if isinstance(vocabulary, NeighbourIndex) else build_neighbour_index(
        backbone, vocabulary, templates, cache=cache, emit=emit, cancel=cancel)
    q = embed_names(backbone, [clean_name(class_name)], list(templates), cache=cache, emit=emit, cancel=cancel)[0]
    return index.query(q, top=top, min_similarity=min_similarity, exclude_keys={normalise_name(class_name)},
                       uncounted_keys=uncounted_keys)
