"""``semscale validate``: does every image open, do data classes and label classes match."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.data.images import BadImage
from core.data.base import Dataset, ImageRecord


@dataclass
class ValidationReport:
    dataset: str
    kind: str
    n_images: int
    class_counts: dict[str, int]
    unreadable: list[tuple[str, str]]
    empty_classes: list[str]
    missing_from_labels: list[str]  # classes in the data without names in the labels file
    missing_from_data: list[str]  # classes in the labels file with no images
    label_warnings: list[str]
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (id, "same content as …") across classes
    dataset_warnings: list[str] = field(default_factory=list)  # e.g. class folders linked from outside the dataset

    @property
    def ok(self) -> bool:
        return not (self.unreadable or self.empty_classes or self.missing_from_labels)

    def to_text(self) -> str:
        lines = [f"Dataset: {self.dataset} ({self.kind}), {self.n_images} images, {len(self.class_counts)} classes"]
        width = max((len(c) for c in self.class_counts), default=5)
        lines.append("Images per class:")
        for c, n in self.class_counts.items():
            lines.append(f"  {c:<{width}}  {n}")

        def section(title, items):
            lines.append(f"{title}: {len(items) if items else 'none'}")
            for it in items[:50]:
                lines.append("  " + (f"{it[0]}: {it[1]}" if isinstance(it, tuple) else str(it)))
            if len(items) > 50:
                lines.append(f"  ... and {len(items) - 50} more")

        section("Unreadable files", self.unreadable)
        section("Empty classes", self.empty_classes)
        section("Classes in the data but not in the labels file", self.missing_from_labels)
        section("Classes in the labels file but not in the data", self.missing_from_data)
        section("Labels warnings", self.label_warnings)
        section("Identical images in different classes", self.duplicates)
        section("Dataset warnings", self.dataset_warnings)
        return "\n".join(lines)


def validate(dataset: Dataset, labels=None, check_images: bool = True) -> ValidationReport:
    """Check every image opens and that data classes and label classes match."""
    unreadable = list(dataset.problems)
    duplicates: list[tuple[str, str]] = []
    if check_images:
        first: dict[str, ImageRecord] = {}
        for i, r in enumerate(dataset.records):
            try:
                if r.path is not None or dataset._array is None:  # in-memory arrays always decode
                    dataset.open(i)
                h = dataset.content_hash(i)
            except BadImage as e:
                unreadable.append((r.id, str(e)))
                continue
            except OSError as e:
                unreadable.append((r.id, f"cannot read file ({e.strerror or e})"))
                continue
            other = first.setdefault(h, r)
            if other is not r and other.label != r.label:
                duplicates.append((r.id, f"same content as {other.id} (class '{other.label}')"))
    counts = dataset.class_counts()
    label_classes = set(labels.classes) if labels is not None else set(dataset.classes)
    return ValidationReport(
        dataset=str(dataset.root),
        kind=dataset.kind,
        n_images=len(dataset.records),
        class_counts=counts,
        unreadable=unreadable,
        empty_classes=[c for c in dataset.classes if counts.get(c, 0) == 0],
        missing_from_labels=[c for c in dataset.classes if c not in label_classes],
        missing_from_data=[c for c in (labels.classes if labels is not None else []) if counts.get(c, 0) == 0 and c not in dataset.classes],
        label_warnings=list(labels.warnings) if labels is not None else [],
        duplicates=duplicates,
        dataset_warnings=list(dataset.warnings),
    )
