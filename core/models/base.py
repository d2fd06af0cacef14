"""The model-kind protocol: what the pipeline needs of a classifier, whatever runs it.

A kind turns (images, candidate names) into a score per (image, name) — through
embeddings (local open_clip, a CLIP server), directly (a VLM's log-likelihood of each
name) — or, for generative kinds, into an answer text per image. Everything after the
scores (levels, tie policy, top-k, intervals, tests, ensembles, frequency) is shared and
never asks which kind produced them.

Each kind is one module in :mod:`core.models` that subclasses one of the three bases
below and registers itself in :mod:`core.models.registry`; it owns its options (in
``spec.options``), its cache identity and its resources (a loaded network, a connection).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Optional, Sequence

import numpy as np

from core.util.config import BackboneSpec
from core.util.events import CancelToken, EventCallback, ignore_events

EMBEDDINGS, SCORES, ANSWERS = "embeddings", "scores", "answers"


def identity_hash(info: dict) -> str:
    """The cache identity of a kind: sha256 of its identity record (sorted JSON)."""
    return hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class EncodedBatch:
    """One batch of encoded dataset records: row j of ``vectors`` belongs to record ``indices[j]``."""

    indices: list[int]
    vectors: np.ndarray  # [n, d] float32, L2-normalised rows
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (record index, reason)


@dataclass
class ImageScores:
    """Scores of the usable images: row j (of ``matrix``, [n, names]) belongs to record ``indices[j]``."""

    indices: np.ndarray
    matrix: np.ndarray
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (record index, reason)
    n_computed: int = 0  # rows scored now (the rest came from the cache)


@dataclass
class ImageAnswers:
    """Answers of the usable images: ``answers[j]`` belongs to record ``indices[j]``."""

    indices: np.ndarray
    answers: list[str]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    n_computed: int = 0  # answers generated now (the rest came from the cache)


class ModelKind(ABC):
    """One classifier the pipeline can score with: a resolved backbone spec."""

    kind: ClassVar[str]  # registry key, e.g. "open_clip", "clip-server", "vlm", "openai"
    output: ClassVar[str]  # EMBEDDINGS, SCORES or ANSWERS

    spec: BackboneSpec  # what was asked for (run.json)
    name: str  # display name
    identity: str  # cache identity (identity_hash(identity_info))
    identity_info: dict  # what the identity hashes; never credentials
    cache_seen: bool = False  # set by the pipeline: the cache already holds this identity's results

    @property
    def loaded(self) -> bool:
        """Whether the heavy part (network weights, a connection) has been built."""
        return True

    def check(self) -> None:
        """Called before the run folder exists: weights present, server reachable, model known.
        Raises :class:`~core.util.errors.InputError` (or ``WeightsUnavailable``) otherwise."""

    def describe(self) -> dict:
        """The run.json ``backbones`` entry (no credentials)."""
        return {"name": self.name, "kind": self.kind, "spec": self.spec.to_dict(), **self.identity_info,
                "identity": self.identity}

    def close(self) -> None:
        """Release connections and models."""


class EmbeddingModel(ModelKind):
    """A CLIP-style kind: image and text embeddings; a score is the cosine of the two."""

    output: ClassVar[str] = EMBEDDINGS
    device: str = "cpu"

    @property
    @abstractmethod
    def embed_dim(self) -> int: ...

    @property
    @abstractmethod
    def logit_scale(self) -> float: ...

    @abstractmethod
    def embed_texts(self, prompts: list[str]) -> np.ndarray:
        """[n, d] float32 L2-normalised embeddings of the prompts (templates already applied)."""

    @abstractmethod
    def embed_records(self, dataset: Any, indices: Sequence[int], *, batch_size: int = 64,
                      num_workers: Optional[int] = None, emit: EventCallback = ignore_events,
                      cancel: Optional[CancelToken] = None) -> Iterator[EncodedBatch]:
        """Encode these dataset records; decoding is the kind's business (local decode workers,
        or the file's bytes sent to a server). The caller hashes, looks up and fills the cache."""

    def ensure_loaded(self, emit: EventCallback = ignore_events) -> None:
        """Build the heavy part now that something needs encoding."""


class ScoringModel(ModelKind):
    """A kind that scores (image, name) pairs directly, e.g. a VLM's log-likelihood of each name."""

    output: ClassVar[str] = SCORES

    @abstractmethod
    def score_names(self, dataset: Any, indices: Sequence[int], names: Sequence[str], *, cache: Any = None,
                    emit: EventCallback = ignore_events, cancel: Optional[CancelToken] = None) -> ImageScores:
        """Scores of the readable images among ``indices`` for every name (float32, higher is better);
        cached per (identity, image, name) so that an edited label set scores only its new names."""


class AnsweringModel(ModelKind):
    """A generative kind that answers a prompt about each image with free text."""

    output: ClassVar[str] = ANSWERS

    @abstractmethod
    def answer(self, dataset: Any, indices: Sequence[int], prompts: Sequence[str], *, cache: Any = None,
               emit: EventCallback = ignore_events, cancel: Optional[CancelToken] = None) -> ImageAnswers:
        """One raw answer per readable image (``prompts[j]`` is the prompt for ``indices[j]``); cached per
        (identity, image, prompt) so that nothing is asked twice."""


__all__ = ["ANSWERS", "EMBEDDINGS", "SCORES", "AnsweringModel", "EmbeddingModel", "EncodedBatch", "ImageAnswers",
           "ImageScores", "ModelKind", "ScoringModel", "identity_hash"]
