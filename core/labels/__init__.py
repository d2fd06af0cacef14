"""Label sets (per class, ranked names), presets, templates, the level schedule, the bundled WordNet lexicon and control name sets."""

from core.labels.labelset import LabelSet, labels_from_classes, load_labels, load_templates, parse_levels

__all__ = ["LabelSet", "labels_from_classes", "load_labels", "load_templates", "parse_levels"]
