"""digits: scikit-learn's 8x8 digits upscaled to 32x32 with captions."""

from __future__ import annotations

from collections import Counter

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from polymodal.data.builtin import digits, make_dataset


def test_rows_images_and_labels(tmp_path, rows_of, schema):
    manifest = make_dataset("digits", tmp_path, n=100, seed=2)
    rows = rows_of(manifest)
    assert len(rows) == 100
    schema(rows, tmp_path, "image")
    assert Counter(r["split"] for r in rows) == {"train": 80, "val": 10, "test": 10}
    assert set(Counter(r["label"] for r in rows).values()) == {10}  # stratified take
    source = load_digits()
    for row in rows[::7]:
        index = int(row["id"].split("-")[1])
        assert row["digit"] == str(source.target[index])
        assert row["label"] == digits.DIGIT_NAMES[int(row["digit"])]
        assert row["digit"] in row["text"] or row["label"] in row["text"]
        with Image.open(tmp_path / row["image"]) as im:
            assert im.size == (32, 32) and im.mode == "L"
            # the upscaled image still has the source's ink where the source has it
            small = np.asarray(im.resize((8, 8), Image.Resampling.BOX), dtype=float)
            corr = np.corrcoef(small.ravel(), source.images[index].ravel())[0, 1]
            assert corr > 0.9


def test_deterministic(tmp_path, tree_of):
    a = make_dataset("digits", tmp_path / "a", n=30, seed=5).parent
    b = make_dataset("digits", tmp_path / "b", n=30, seed=5).parent
    assert tree_of(a) == tree_of(b)
