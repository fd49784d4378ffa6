import json
from pathlib import Path

import pytest
from data_corpus import rgb_array, save_png, write_wav

from polymodal.data.sources import label_columns_of, load_manifest, manifest_stats
from polymodal.errors import DataError


def _jsonl(path: Path, rows: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_rows_lines_labels_and_root(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"id": "a", "split": "train", "text": "x", "label": "cat", "colour": "red"}\n'
        "\n"
        '{"id": "b", "split": "val", "text": "y", "label": ["cat", "dog"], "meta": {"q": 1}}\n'
    )
    m = load_manifest(path)
    assert [r["id"] for r in m.rows] == ["a", "b"]
    assert m.line_numbers == [1, 3]  # blank lines skipped but counted
    assert m.label_columns == ["label", "colour"]  # meta and modalities are not labels
    assert m.root == tmp_path.resolve() and m.kind == "jsonl"
    assert m.modalities() == ["text"]
    assert load_manifest(path, root=tmp_path.parent).root == tmp_path.parent.resolve()
    assert load_manifest(path, label_columns=["colour"]).label_columns == ["colour"]


def test_jsonl_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: each line must be a JSON object"):
        load_manifest(bad)
    bad.write_text('{"id": "a"}\n{"id": "b",,}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: malformed JSON line"):
        load_manifest(bad)
    with pytest.raises(DataError, match="unknown manifest type '.txt'"):
        load_manifest(bad.rename(tmp_path / "bad.txt"))


def test_csv_cells_multilabel_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        'id,split,text,label,topic\n1,train,"hello, world",cat,\n\n2,test,bye,"[""cat"", ""dog""]",news\n'
    )
    m = load_manifest(path)
    assert m.rows == [
        {"id": "1", "split": "train", "text": "hello, world", "label": "cat"},
        {"id": "2", "split": "test", "text": "bye", "label": ["cat", "dog"], "topic": "news"},
    ]
    assert m.line_numbers == [2, 4]
    assert m.label_columns == ["label", "topic"]
    (tmp_path / "dup.csv").write_text("id,text,text\n1,a,b\n")
    with pytest.raises(DataError, match=r"dup.csv:1: CSV header repeats column\(s\) text"):
        load_manifest(tmp_path / "dup.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty CSV manifest"):
        load_manifest(tmp_path / "empty.csv")


def test_missing_split_column_gets_seeded_stratified_split(tmp_path: Path) -> None:
    rows = [{"id": str(i), "text": f"t{i}", "label": "ab"[i % 2]} for i in range(40)]
    path = _jsonl(tmp_path / "m.jsonl", rows)
    a = load_manifest(path, seed=1)
    b = load_manifest(path, seed=1)
    c = load_manifest(path, seed=2)
    splits = [r["split"] for r in a.rows]
    assert splits == [r["split"] for r in b.rows]
    assert splits != [r["split"] for r in c.rows]
    for label in "ab":
        mine = [r["split"] for r in a.rows if r["label"] == label]
        assert (mine.count("train"), mine.count("val"), mine.count("test")) == (16, 2, 2)
    with pytest.raises(DataError, match="split ratio"):
        load_manifest(path, split_ratio=(0.0, 0.0, 0.0))


def test_class_folder_tree(tmp_path: Path) -> None:
    for cls in ("cat", "dog"):
        for i in range(10):
            save_png(tmp_path / "tree" / cls / f"{i}.png", rgb_array(seed=i))
    (tmp_path / "tree" / "cat" / "notes.txt").write_text("ignored")
    write_wav(tmp_path / "tree" / "dog" / "bark.wav")
    m = load_manifest(tmp_path / "tree", split_ratio=(0.6, 0.2, 0.2), seed=3)
    assert m.kind == "folder" and len(m.rows) == 21
    row = next(r for r in m.rows if r["id"] == "cat/0.png")
    assert row["image"] == "cat/0.png" and row["label"] == "cat"
    assert next(r for r in m.rows if r["id"] == "dog/bark.wav")["audio"] == "dog/bark.wav"
    cats = [r["split"] for r in m.rows if r["label"] == "cat"]
    assert (cats.count("train"), cats.count("val"), cats.count("test")) == (6, 2, 2)
    assert manifest_stats(m)["modalities"] == {"image": 20, "audio": 1}


def test_class_folder_tree_with_split_folders(tmp_path: Path) -> None:
    save_png(tmp_path / "t" / "train" / "cat" / "a.png", rgb_array())
    save_png(tmp_path / "t" / "test" / "dog" / "b.png", rgb_array())
    m = load_manifest(tmp_path / "t")
    assert {(r["id"], r["split"], r["label"]) for r in m.rows} == {
        ("train/cat/a.png", "train", "cat"),
        ("test/dog/b.png", "test", "dog"),
    }
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no sub-folders"):
        load_manifest(tmp_path / "empty")


def test_missing_manifest_and_hf_without_datasets(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="manifest not found"):
        load_manifest(tmp_path / "nope.jsonl")
    try:
        import datasets  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match=r"optional 'datasets' package"):
            load_manifest("hf:some/dataset")
    else:
        pytest.skip("datasets is installed; this checks the message when it is not")


def test_label_columns_order() -> None:
    assert label_columns_of([{"id": 1, "shape": "x", "_private": 1}, {"label": "y", "split": "t"}]) == [
        "label",
        "shape",
    ]
