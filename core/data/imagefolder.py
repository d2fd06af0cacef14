"""ImageFolder trees: ``root/<class>/**/<image>`` (the fallback for any folder)."""

from __future__ import annotations

import os
from pathlib import Path

from core.util.errors import InputError
from core.data.images import is_image_name
from core.data.base import Dataset, DatasetOptions, ImageRecord, printable
from core.data.registry import Reader, register


def load_image_folder(root: Path) -> Dataset:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise InputError("no class sub-folders found (expected <root>/<class>/<image files>)", file=root)
    records: list[ImageRecord] = []
    problems: list[tuple[str, str]] = []
    empty: list[str] = []
    warnings: list[str] = []
    real_root = root.resolve()
    outside = 0  # image files that are links to somewhere outside the dataset folder
    for cls in classes:
        n_before = len(records)
        target = (root / cls).resolve()
        if target != real_root and real_root not in target.parents:
            warnings.append(f"class folder '{cls}' is a symbolic link to {target}, outside the dataset folder")
        for dirpath, dirnames, filenames in os.walk(root / cls, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fn in sorted(filenames):
                if fn.startswith(".") or not is_image_name(fn):
                    continue
                p = Path(dirpath) / fn
                rel = printable(p.relative_to(root).as_posix())
                if p.is_symlink() and not p.exists():
                    problems.append((rel, "broken symbolic link"))
                    continue
                if p.is_symlink() and real_root not in p.resolve().parents:
                    outside += 1
                records.append(ImageRecord(id=rel, label=cls, path=p))
        if len(records) == n_before:
            empty.append(cls)
    if outside:
        warnings.append(f"{outside} image file(s) are symbolic links to files outside the dataset folder")
    return Dataset(root=root, kind="imagefolder", records=records, classes=classes, problems=problems,
                   empty_classes=empty, warnings=warnings)


def _detect(source) -> bool:
    return isinstance(source, (str, Path)) and Path(source).expanduser().is_dir()


register(Reader("imagefolder", _detect, lambda s, o: load_image_folder(Path(s).expanduser().resolve()), priority=100,
                describe="a folder with one sub-folder of images per class"))
