"""make_dataset: names, errors, and re-making into a folder a previous make wrote."""

from __future__ import annotations

import json

import pytest

from polymodal.data.builtin import DATASETS, make_dataset
from polymodal.errors import DataError


def test_names_match_the_contract():
    assert set(DATASETS) == {"shapes", "fashion-mnist", "digits", "spoken-words", "spoken-phrases", "moving-shapes",
                             "wordnet"}


def test_unknown_name_lists_the_valid_ones(tmp_path):
    with pytest.raises(DataError) as err:
        make_dataset("shapez", tmp_path / "x")
    for name in DATASETS:
        assert name in str(err.value)


@pytest.mark.parametrize("bad", [0, -3, True, 2.5])
def test_bad_n_is_a_data_error(tmp_path, bad):
    with pytest.raises(DataError, match="n must be a positive integer"):
        make_dataset("shapes", tmp_path / "x", n=bad)


def test_n_larger_than_the_source_is_refused(tmp_path):
    with pytest.raises(DataError, match="exceeds"):
        make_dataset("digits", tmp_path / "x", n=5000)


def test_refuses_a_foreign_non_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        make_dataset("shapes", tmp_path, n=10)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_remake_replaces_the_previous_files(tmp_path, rows_of):
    make_dataset("shapes", tmp_path, n=30)
    manifest = make_dataset("digits", tmp_path, n=20)
    rows = rows_of(manifest)
    assert len(rows) == 20 and all(r["id"].startswith("digits-") for r in rows)
    # no stale PNG from the larger shapes make is left behind
    assert len(list((tmp_path / "images").iterdir())) == 20
    info = json.loads((tmp_path / "dataset.json").read_text())["builtin"]
    assert info["name"] == "digits" and info["rows"] == 20
