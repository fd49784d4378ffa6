"""fashion-mnist: real IDX data written as PNGs; labels and pixels checked against the source."""

from __future__ import annotations

import gzip
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from polymodal.data.builtin import fashion_mnist, make_dataset
from polymodal.errors import DataError

SOURCE = fashion_mnist.SOURCE_DIR
needs_data = pytest.mark.skipif(
    not (SOURCE / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist is not installed",
)


def _raw(part: str, kind: str) -> bytes:
    with gzip.open(SOURCE / f"{part}-{kind}-ubyte.gz", "rb") as fh:
        return fh.read()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    if not (SOURCE / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    out = tmp_path_factory.mktemp("fmnist")
    return out, make_dataset("fashion-mnist", out, n=300, seed=1)


@needs_data
def test_labels_and_pixels_match_the_idx_files(made, rows_of, schema):
    out, manifest = made
    rows = rows_of(manifest)
    schema(rows, out, "image")
    # independent reading of the IDX layout: 8-byte label header, 16-byte image header
    labels = {p: _raw(p, "labels-idx1")[8:] for p in ("train", "t10k")}
    images = {p: _raw(p, "images-idx3")[16:] for p in ("train", "t10k")}
    for row in rows[::25]:
        _, part, index = row["id"].split("-")
        part, j = ("t10k" if part == "test" else "train"), int(index)
        assert row["label"] == fashion_mnist.CLASS_NAMES[labels[part][j]]
        with Image.open(out / row["image"]) as im:
            assert im.size == (28, 28) and im.mode == "L"
            expected = np.frombuffer(images[part][j * 784 : (j + 1) * 784], dtype=np.uint8).reshape(28, 28)
            assert np.array_equal(np.asarray(im), expected)


@needs_data
def test_splits_follow_the_official_sets_and_keep_proportions(made, rows_of):
    _, manifest = made
    rows = rows_of(manifest)
    counts = Counter(r["split"] for r in rows)
    assert counts == {"train": 236, "val": 21, "test": 43}  # 55k/5k/10k scaled to 300
    for row in rows:
        j = int(row["id"].split("-")[2])
        if row["split"] == "test":
            assert row["id"].startswith("fmnist-test-")
        else:
            assert row["id"].startswith("fmnist-train-") and (j >= 55000) == (row["split"] == "val")
    # stratified: every class in train, none hugely over-represented
    per_class = Counter(r["label"] for r in rows if r["split"] == "train")
    assert set(per_class) == set(fashion_mnist.CLASS_NAMES) and max(per_class.values()) <= 30
    nouns = {"trouser": "pair of trousers"}
    assert all(nouns.get(r["label"], r["label"]) in r["text"] for r in rows)


@needs_data
def test_deterministic(tmp_path, tree_of):
    a = make_dataset("fashion-mnist", tmp_path / "a", n=60, seed=4).parent
    b = make_dataset("fashion-mnist", tmp_path / "b", n=60, seed=4).parent
    assert tree_of(a) == tree_of(b)


def test_missing_package_names_it(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "SOURCE_DIR", tmp_path / "nowhere")
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        make_dataset("fashion-mnist", tmp_path / "out", n=10)


def test_corrupt_idx_is_a_data_error(tmp_path):
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")  # promises 5 labels, holds 3
    with pytest.raises(DataError, match="header promises 5"):
        fashion_mnist.read_idx(bad, 1)
    bad.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot read"):
        fashion_mnist.read_idx(bad, 1)
