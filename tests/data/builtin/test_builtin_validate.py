"""Integration: every built-in dataset passes the data layer's own validation (real decodes)."""

from __future__ import annotations

import shutil

import pytest

from polymodal.data.builtin import fashion_mnist, make_dataset, wordnet

validate = pytest.importorskip("polymodal.data.validate", reason="polymodal.data.validate not written yet")
sources = pytest.importorskip("polymodal.data.sources", reason="polymodal.data.sources not written yet")

CASES = {
    "shapes": (40, None),
    "digits": (20, None),
    "moving-shapes": (8, None),
    "fashion-mnist": (
        30,
        None if fashion_mnist.SOURCE_DIR.is_dir() else "dataset-fashion-mnist not installed",
    ),
    "wordnet": (28, None if wordnet.SOURCE.is_file() else "wordnet-base not installed"),
    "spoken-words": (20, None if shutil.which("espeak-ng") else "espeak-ng not installed"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_made_dataset_validates(tmp_path, name):
    n, missing = CASES[name]
    if missing:
        pytest.skip(missing)
    path = make_dataset(name, tmp_path, n=n, seed=0)
    manifest = sources.load_manifest(path)
    label_sets = validate.find_label_sets(manifest)
    assert label_sets is not None and "label" in label_sets
    report = validate.validate_rows(manifest, label_sets=label_sets, decode=True)
    assert report.invalid == [], [issue.line() for issue in report.invalid]
    assert report.rows == n and len(report.valid) == n
    assert "label" in manifest.label_columns
