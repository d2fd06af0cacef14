"""Where a sweep's image embeddings come from: one protocol, two implementations.

A sweep needs two things of its images: the *listing* (ids, labels, classes, problems
found while listing; :class:`Listing`) and, per backbone, the embedding matrix
(:class:`~core.embedding.embed.ImageEmbeddings`). :class:`EncodedImages` encodes a dataset's images
through the cache (:func:`core.embedding.embed.embed_images`); :class:`StoredImages` reads embedding
stores written by ``semscale embed`` and never opens an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, Sequence, runtime_checkable

from core.data import ImageRecord
from core.embedding.embed import ImageEmbeddings
from core.util.events import CancelToken, EventCallback, ignore_events


@runtime_checkable
class Listing(Protocol):
    """What a sweep reads of a dataset besides the embeddings."""

    kind: str
    records: list[ImageRecord]
    classes: list[str]
    problems: list[tuple[str, str]]
    warnings: list[str]

    def describe(self) -> str: ...


class ImageSource(Protocol):
    """The images of a sweep: their listing, and each backbone's embeddings of them."""

    @property
    def listing(self) -> Listing: ...

    def embeddings(self, backbone, position: int, *, cache=None, emit: EventCallback = ignore_events,
                   cancel: Optional[CancelToken] = None) -> ImageEmbeddings:
        """Embeddings of the usable images for ``backbone`` (the ``position``-th of the run);
        row j belongs to ``listing.records[indices[j]]``."""
        ...


@dataclass
class EncodedImages:
    """Images encoded by each backbone (cached embeddings are reused, see :mod:`core.embedding.embed`)."""

    dataset: object  # core.data.Dataset
    batch_size: int = 64
    num_workers: Optional[int] = None

    @property
    def listing(self) -> Listing:
        return self.dataset

    def embeddings(self, backbone, position: int, *, cache=None, emit: EventCallback = ignore_events,
                   cancel: Optional[CancelToken] = None, perturbation=None) -> ImageEmbeddings:
        """``perturbation`` (:class:`core.data.perturb.Perturbation`): embeddings of the perturbed images."""
        from core.embedding.embed import embed_images

        return embed_images(backbone, self.dataset, cache=cache, batch_size=self.batch_size,
                            num_workers=self.num_workers, emit=emit, cancel=cancel, perturbation=perturbation)


@dataclass
class StoredImages:
    """Image embeddings read from embedding stores, one per backbone in order (:mod:`core.embedding.store`)."""

    stores: object  # core.embedding.store.StoreListing

    @property
    def listing(self) -> Listing:
        return self.stores

    def embeddings(self, backbone, position: int, *, cache=None, emit: EventCallback = ignore_events,
                   cancel: Optional[CancelToken] = None) -> ImageEmbeddings:
        return self.stores.image_embeddings(position, backbone, cache)


def image_source(config) -> ImageSource:
    """The source a :class:`~core.util.config.SweepConfig` asks for: its stores, or its dataset."""
    if config.embeddings:  # image embeddings from stores; the images themselves are never opened
        from core.embedding.store import stores_dataset

        return StoredImages(stores_dataset(config.embeddings))
    from core.data import load_dataset

    dataset = load_dataset(config.dataset, allow_absolute=config.allow_absolute_paths, split=config.split,
                           image_column=config.image_column, label_column=config.label_column,
                           data_root=config.data_root)
    return EncodedImages(dataset, config.batch_size, config.num_workers)


__all__: Sequence[str] = ["EncodedImages", "ImageSource", "Listing", "StoredImages", "image_source"]
