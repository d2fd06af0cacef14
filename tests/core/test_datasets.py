import pickle

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.data import load_dataset, validate
from core.util.errors import InputError
from core.labels.labelset import load_labels
from tests.conftest import CLASSES


def test_image_folder(image_folder, labels_csv):
    ds = load_dataset(image_folder)
    assert ds.kind == "imagefolder"
    assert sorted(ds.classes) == sorted(CLASSES)
    assert len(ds) == 16
    assert set(ds.class_counts().values()) == {4}
    assert ds.open(0).mode == "RGB"
    report = validate(ds, load_labels(labels_csv))
    assert report.ok and report.unreadable == [] and report.missing_from_labels == []


def test_validation_report_finds_problems(image_folder, tmp_path):
    (image_folder / "empty class").mkdir()
    (image_folder / "red square" / "broken.jpg").write_bytes(b"not an image")
    labels = tmp_path / "l.csv"
    labels.write_text("red square,red\ngreen circle,green\nunicorn,unicorn\n")
    report = validate(load_dataset(image_folder), load_labels(labels))
    assert report.empty_classes == ["empty class"]
    assert [u[0] for u in report.unreadable] == ["red square/broken.jpg"]
    assert set(report.missing_from_labels) == {"blue triangle", "yellow bar", "empty class"}
    assert report.missing_from_data == ["unicorn"]
    text = report.to_text()
    assert "broken.jpg" in text and "unicorn" in text


def test_csv_and_parquet_manifest(image_folder):
    rows = [{"path": f"images/{p.parent.name}/{p.name}", "label": p.parent.name} for p in sorted(image_folder.rglob("*.png"))]
    csv = image_folder.parent / "manifest.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    pq = image_folder.parent / "manifest.parquet"
    pd.DataFrame(rows).to_parquet(pq)
    for path in (csv, pq):
        ds = load_dataset(path)
        assert ds.kind == "manifest" and len(ds) == 16
        assert ds.records[0].id.startswith("images/")
        assert ds.open(3).size == (40, 40)


def test_manifest_errors_name_line_and_field(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("file,label\na.png,x\n")
    with pytest.raises(InputError) as e:
        load_dataset(m)
    assert e.value.field == "path" and e.value.line == 1
    m.write_text("path,label\na.png,x\n../outside.png,y\n")
    with pytest.raises(InputError) as e:
        load_dataset(m)
    assert e.value.line == 3 and "outside" in str(e.value)
    m.write_text("path,label\n/etc/passwd,x\n")
    with pytest.raises(InputError) as e:
        load_dataset(m)
    assert e.value.line == 2 and "absolute" in str(e.value)


def _write_cifar(folder, n=12):
    folder.mkdir()
    rng = np.random.default_rng(0)
    data = rng.integers(0, 255, (n, 3072), dtype=np.uint8)
    labels = [i % 3 for i in range(n)]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane", b"automobile", b"bird"]}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": data, b"labels": labels, b"filenames": [f"img{i}.png".encode() for i in range(n)]}, f)
    return data, labels


def test_cifar_pickles(tmp_path):
    data, labels = _write_cifar(tmp_path / "cifar")
    ds = load_dataset(tmp_path / "cifar")
    assert ds.kind == "cifar" and ds.classes == ["airplane", "automobile", "bird"]
    assert len(ds) == 12 and ds.records[4].label == "automobile"
    im = np.asarray(ds.open(5))
    expected = data[5].reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(im, expected)


def test_cifar_refuses_arbitrary_pickles(tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"a"]}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Boom()}, f)
    with pytest.raises(InputError) as e:
        load_dataset(folder)
    assert "not allowed" in str(e.value)


def test_class_list_orders_names_then_numbers_then_text():
    from core.data.base import class_list

    # ClassLabel names keep their order and report the ones no image has; an unknown label goes last
    assert class_list(["b", "a", "b", "zz"], names=["b", "c", "a"]) == (["b", "c", "a", "zz"], ["c"])
    # integer labels sort as numbers, not as text ("10" after "9")
    assert class_list(["10", "9", "-1", "9"]) == (["-1", "9", "10"], [])
    assert class_list(["dog", "10", "cat"]) == (["10", "cat", "dog"], [])
    assert class_list([]) == ([], [])


def test_choose_name_prefers_given_then_listed_then_fallback():
    from core.data.base import choose_name, choose_split

    kw = dict(noun="column", listed_as="found", where="f.parquet", field="image-column",
              missing=lambda found: f"no image column (found: {found})")
    assert choose_name(["Img", "label"], None, ("image", "img"), **kw) == "Img"  # any case
    assert choose_name(["pic", "label"], None, ("image",), fallback=lambda a: a[0], **kw) == "pic"
    with pytest.raises(InputError) as e:
        choose_name(["pic", "label"], "photo", ("image",), **kw)
    assert str(e.value) == "f.parquet: field 'image-column': no column 'photo' (found: pic, label)"
    with pytest.raises(InputError) as e:
        choose_name([], None, ("image",), **kw)
    assert e.value.message == "no image column (found: none)"
    assert choose_split(["train", "validation"], None, "d") == "validation"
    assert choose_split(["train"], None, "d") == "train"
    with pytest.raises(InputError, match=r"no test or validation split; choose one with --split \(a, b\)"):
        choose_split(["a", "b"], None, "d")
