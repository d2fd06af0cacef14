"""torchvision datasets by name: each layout built here (tiny) exactly as torchvision's download
leaves it, opened by torchvision's own class through ``tv:NAME``.

Layouts tested: Food101, OxfordIIITPet, DTD, EuroSAT, GTSRB, FGVCAircraft, Country211, SUN397,
RenderedSST2, Imagenette (file records) and MNIST (array records). CIFAR10/100, STL10, SVHN and Flowers102 verify the
MD5 of their downloaded archives' files on load, which no locally built file can pass.
"""

from __future__ import annotations

import csv
import json
import struct

import numpy as np
import pytest
from PIL import Image

tvd = pytest.importorskip("torchvision.datasets")

from core.cli import main  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.util.errors import InputError  # noqa: E402


def jpg(path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(path, quality=95)


def food101(root):
    base = root / "food-101"
    meta = {"apple_pie": ["apple_pie/11", "apple_pie/12"], "baby_back_ribs": ["baby_back_ribs/21"]}
    (base / "meta").mkdir(parents=True)
    (base / "meta" / "test.json").write_text(json.dumps(meta))
    (base / "meta" / "train.json").write_text(json.dumps({"apple_pie": ["apple_pie/13"], "baby_back_ribs": []}))
    for i, rel in enumerate(sum(meta.values(), []) + ["apple_pie/13"]):
        jpg(base / "images" / f"{rel}.jpg", i)
    return ["apple_pie", "baby_back_ribs"], 3


def pets(root):
    base = root / "oxford-iiit-pet"
    (base / "annotations").mkdir(parents=True)
    rows = [("Abyssinian_1", 1, 1), ("american_bulldog_2", 2, 2), ("Abyssinian_3", 1, 1)]
    (base / "annotations" / "test.txt").write_text("".join(f"{a} {b} {c} 1\n" for a, b, c in rows))
    for i, (a, _, _) in enumerate(rows):
        jpg(base / "images" / f"{a}.jpg", i)
    return ["Abyssinian", "American Bulldog"], 3


def dtd(root):
    data = root / "dtd" / "dtd"
    (data / "labels").mkdir(parents=True)
    items = ["banded/banded_0001.jpg", "zigzagged/zigzagged_0002.jpg", "banded/banded_0003.jpg"]
    (data / "labels" / "test1.txt").write_text("\n".join(items) + "\n")
    for i, it in enumerate(items):
        jpg(data / "images" / it, i)
    return ["banded", "zigzagged"], 3


def eurosat(root):
    for i, (cls, fn) in enumerate([("AnnualCrop", "AnnualCrop_1.jpg"), ("Forest", "Forest_1.jpg"),
                                   ("Forest", "Forest_2.jpg")]):
        jpg(root / "eurosat" / "2750" / cls / fn, i)
    return ["AnnualCrop", "Forest"], 3


def gtsrb(root):
    base = root / "gtsrb"
    images = base / "GTSRB" / "Final_Test" / "Images"
    rows = [("00000.ppm", 16), ("00001.ppm", 1), ("00002.ppm", 38)]
    for i, (fn, _) in enumerate(rows):
        images.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((10, 10, 3), 20 * i, np.uint8)).save(images / fn)
    with open(base / "GT-final_test.csv", "w", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"])
        for fn, c in rows:
            w.writerow([fn, 10, 10, 0, 0, 9, 9, c])
    return [str(k) for k in range(39)], 3  # no names in torchvision: numbers up to the largest id


def aircraft(root):
    data = root / "fgvc-aircraft-2013b" / "data"
    data.mkdir(parents=True)
    (data / "variants.txt").write_text("707-320\n727-200\nA300B4\n")
    (data / "images_variant_test.txt").write_text("1025794 707-320\n1340192 A300B4\n")
    for i, n in enumerate(("1025794", "1340192")):
        jpg(data / "images" / f"{n}.jpg", i)
    return ["707-320", "727-200", "A300B4"], 2


def country211(root):
    for i, (cls, fn) in enumerate([("AD", "1.jpg"), ("AE", "2.jpg")]):
        jpg(root / "country211" / "test" / cls / fn, i)
    jpg(root / "country211" / "train" / "AD" / "3.jpg", 9)
    return ["AD", "AE"], 2


def sun397(root):
    data = root / "SUN397"
    data.mkdir(parents=True)
    (data / "ClassName.txt").write_text("/a/abbey\n/a/apartment_building/outdoor\n")
    jpg(data / "a" / "abbey" / "sun_aaa.jpg", 0)
    jpg(data / "a" / "apartment_building" / "outdoor" / "sun_bbb.jpg", 1)
    return ["abbey", "apartment_building/outdoor"], 2


def mnist(root):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 2), ("t10k", 3)):
        imgs = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + imgs.tobytes())
        labels = np.arange(n, dtype=np.uint8) * 3
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    return ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
            "8 - eight", "9 - nine"], 3


def rendered_sst2(root):
    for i, (cls, fn) in enumerate([("negative", "0001.png"), ("positive", "0002.png"), ("positive", "0003.png")]):
        (root / "rendered-sst2" / "test" / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 50 * i, np.uint8)).save(root / "rendered-sst2" / "test" / cls / fn)
    return ["negative", "positive"], 3


def imagenette(root):
    for i, (wnid, fn) in enumerate([("n01440764", "a.JPEG"), ("n02102040", "b.JPEG")]):
        jpg(root / "imagenette2" / "val" / wnid / fn, i)
    return ["tench", "English springer"], 2  # the first of torchvision's names for each wnid present


LAYOUTS = {"Food101": food101, "OxfordIIITPet": pets, "DTD": dtd, "EuroSAT": eurosat, "GTSRB": gtsrb,
           "FGVCAircraft": aircraft, "Country211": country211, "SUN397": sun397, "MNIST": mnist,
           "RenderedSST2": rendered_sst2, "Imagenette": imagenette}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_loads_by_name_through_torchvision(name, tmp_path):
    classes, n = LAYOUTS[name](tmp_path)
    ds = load_dataset(f"tv:{name}", data_root=str(tmp_path), download=False)
    assert ds.kind == "torchvision" and ds.classes == classes and len(ds) == n
    assert len({r.id for r in ds.records}) == n
    # the same images, in the same order, as torchvision's own __getitem__ returns them
    kw = {"train": False} if name == "MNIST" else ({} if name in ("EuroSAT", "SUN397") else
                                                   {"split": "val" if name == "Imagenette" else "test"})
    own = getattr(tvd, name)(str(tmp_path), **kw)
    for i in range(n):
        img, target = own[i]
        assert ds.records[i].label == classes[target]
        assert np.array_equal(np.asarray(ds.open(i)), np.asarray(img.convert("RGB")))
    if name != "MNIST":  # file records: ids relative to the data root, cache keys on the file bytes
        assert all(r.path is not None and not r.id.startswith("/") for r in ds.records)


def test_split_choice_and_missing_datasets(tmp_path, capsys):
    food101(tmp_path)
    assert len(load_dataset("tv:food101", data_root=str(tmp_path), split="train", download=False)) == 1
    with pytest.raises(InputError) as e:
        load_dataset("tv:Food101", data_root=str(tmp_path), split="validation", download=False)
    assert e.value.field == "split" and "train, test" in str(e.value)
    with pytest.raises(InputError) as e:
        load_dataset("tv:DTD", data_root=str(tmp_path / "empty"), download=False)
    msg = str(e.value)
    assert "\n" not in msg and "download=True" in msg and "--data-root" in msg
    with pytest.raises(InputError, match="unknown torchvision dataset"):
        load_dataset("tv:NoSuchSet", data_root=str(tmp_path))
    # the CLI reports on it like on a folder
    assert main(["validate", "--dataset", "tv:Food101", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "torchvision" in out and "apple_pie" in out and "3 images" in out
