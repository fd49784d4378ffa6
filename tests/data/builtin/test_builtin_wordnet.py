"""wordnet: noun glosses by lexicographer category, balanced and seeded."""

from __future__ import annotations

from collections import Counter

import pytest

from polymodal.data.builtin import make_dataset, wordnet
from polymodal.errors import DataError

needs_wordnet = pytest.mark.skipif(
    not wordnet.SOURCE.is_file(), reason="Debian package wordnet-base is not installed"
)


@needs_wordnet
def test_balanced_categories_and_clean_glosses(tmp_path, rows_of, schema):
    manifest = make_dataset("wordnet", tmp_path, n=280, seed=1)
    rows = rows_of(manifest)
    schema(rows, tmp_path, "text")
    per_class = Counter(r["label"] for r in rows)
    assert len(per_class) == 14 and set(per_class.values()) == {20}
    assert {"noun.animal", "noun.food", "noun.plant", "noun.person"} <= set(per_class)
    assert all(label.startswith("noun.") for label in per_class)
    assert Counter(r["split"] for r in rows) == {"train": 224, "val": 28, "test": 28}
    for row in rows:
        assert '"' not in row["text"] and not row["text"].endswith(";")
        assert isinstance(row["meta"]["lemma"], str)


@needs_wordnet
def test_known_synsets_get_their_category():
    by_offset = {offset: (lexname, lemma, text) for offset, lexname, lemma, text in wordnet.read_glosses()}
    assert by_offset["02084071"][:2] == ("noun.animal", "dog")
    assert by_offset["02084071"][2].startswith("a member of the genus Canis")
    assert by_offset["00001740"][0] == "noun.Tops"


@needs_wordnet
def test_deterministic_and_seed_dependent(tmp_path):
    a = make_dataset("wordnet", tmp_path / "a", n=140, seed=9).read_bytes()
    b = make_dataset("wordnet", tmp_path / "b", n=140, seed=9).read_bytes()
    c = make_dataset("wordnet", tmp_path / "c", n=140, seed=10).read_bytes()
    assert a == b and a != c


def test_definition_drops_usage_examples():
    assert wordnet.definition('a domestic animal; "the dog barked all night"  ') == "a domestic animal"
    assert wordnet.definition("a member of the genus Canis") == "a member of the genus Canis"


def test_missing_package_names_it(tmp_path, monkeypatch):
    monkeypatch.setattr(wordnet, "SOURCE", tmp_path / "data.noun")
    with pytest.raises(DataError, match="wordnet-base"):
        make_dataset("wordnet", tmp_path / "out", n=14)
