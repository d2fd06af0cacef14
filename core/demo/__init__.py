"""Offline demo: a generated dataset and two tiny CLIP backbones trained on its renderer.

``core.demo.data`` is cheap to import (numpy + PIL only); ``core.demo.train`` needs torch
and open_clip and is only imported to train or evaluate the demo backbones.
"""

from core.demo.data import DEMO_CLASSES, demo_labels, write_demo_dataset

__all__ = ["DEMO_CLASSES", "demo_labels", "write_demo_dataset"]
