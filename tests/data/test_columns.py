"""Column names (issue 17.6): a column the run needs that no row has is one
error naming the columns found and the ``data.columns`` mapping; ``data.columns`` maps labels
too; `data validate` and `train` agree (the train side: tests/data/test_data_training.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from data_corpus import rgb_array, save_png
from typer.testing import CliRunner

from polymodal.cli.main import app
from polymodal.config import DataConfig
from polymodal.data.loader import MultimodalDataset, build_label_spaces
from polymodal.data.sources import load_manifest
from polymodal.data.validate import validate_rows
from polymodal.errors import DataError

runner = CliRunner()
TOPICS = ["sport", "music", "food", "tech"]


def topics_csv(root: Path, n: int = 540) -> Path:
    """The reported case: a text CSV whose label column is called ``topic``."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "topics.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "split", "text", "topic"])
        for i in range(n):
            writer.writerow([f"t{i}", "train", f"an item about {TOPICS[i % 4]} number {i}", TOPICS[i % 4]])
    return root / "topics.csv"


def filepath_csv(root: Path, n: int = 6) -> Path:
    """The other reported case: image paths in a column called ``filepath``."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "images.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "split", "filepath", "label"])
        for i in range(n):
            save_png(root / "img" / f"{i}.png", rgb_array(8, 8, seed=i))
            writer.writerow([f"i{i}", "train", f"img/{i}.png", "ab"[i % 2]])
    return root / "images.csv"


def test_a_label_column_under_another_name_is_one_error_naming_the_mapping(tmp_path: Path) -> None:
    manifest = load_manifest(topics_csv(tmp_path))
    with pytest.raises(DataError) as err:  # before: 540 "missing label column 'label'" lines
        validate_rows(manifest, modalities=["text"], label_sets={"label": []})
    message = str(err.value)
    assert "no label column 'label': map yours with data.columns.label=topic" in message
    assert "the manifest's columns are: id, split, text, topic" in message
    assert len(message.splitlines()) == 4 and "on_error=skip" not in message


def test_data_columns_maps_a_label(tmp_path: Path) -> None:
    manifest = load_manifest(topics_csv(tmp_path, n=8))
    cfg = DataConfig(columns={"label": "topic"})
    report = validate_rows(manifest, modalities=["text"], label_sets={"label": ["food", "sport"]}, options=cfg)
    # checked under the run's name, read from "topic"; a value outside the set names the real column
    assert [(i.id, i.field) for i in report.invalid] == [("t1", "topic"), ("t3", "topic"), ("t5", "topic"),
                                                         ("t7", "topic")]
    assert "unknown label 'music'" in report.invalid[0].reason
    spaces = build_label_spaces(manifest.rows, ["label"], cfg.columns)
    assert spaces == {"label": ["food", "music", "sport", "tech"]}
    ds = MultimodalDataset(manifest.rows, tmp_path, ["text"], spaces, cfg)
    assert ds[1]["label"] == spaces["label"].index("music")


def test_an_image_column_under_another_name_is_one_error_naming_the_mapping(tmp_path: Path) -> None:
    manifest = load_manifest(filepath_csv(tmp_path))
    with pytest.raises(DataError, match=r"no column 'image' for image: map yours with data\.columns\.image=filepath"):
        validate_rows(manifest, modalities=["image"])  # what train asks for
    with pytest.raises(DataError, match=r"column 'filepath' holds image file paths .* data\.columns\.image=filepath"):
        validate_rows(manifest)  # what `data validate` asks for: before, 'filepath' passed as a label
    report = validate_rows(manifest, modalities=["image"], options=DataConfig(columns={"image": "filepath"}))
    assert report.ok and len(report.valid) == 6


def test_a_column_present_in_some_rows_stays_a_per_row_issue(tmp_path: Path) -> None:
    rows = [{"id": "a", "split": "train", "text": "x", "label": "p"}, {"id": "b", "split": "train", "text": "y"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = load_manifest(tmp_path / "m.jsonl")
    from polymodal.data.validate import check_columns

    check_columns(manifest, ["text"], ["label"])
    report = validate_rows(manifest, modalities=["text"])
    assert [(i.id, i.reason) for i in report.invalid] == [("b", "missing label column 'label'")]


def test_every_row_invalid_does_not_advise_skipping(tmp_path: Path) -> None:
    from polymodal.data.validate import apply_policy

    rows = [{"id": f"r{i}", "split": "nope", "text": "x"} for i in range(3)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as err:
        apply_policy(validate_rows(load_manifest(tmp_path / "m.jsonl")), "fail")
    assert "on_error=skip would leave nothing" in str(err.value)


# ------------------------------------------------------------------ the CLI agrees
def test_cli_validate_names_the_mapping_and_takes_it(tmp_path: Path) -> None:
    path = filepath_csv(tmp_path)
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 2 and "data.columns.image=filepath" in result.output
    assert "--column KEY=COLUMN" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["data", "validate", str(path), "--column", "image=filepath"])
    assert result.exit_code == 0 and result.output.startswith("6 rows: 6 valid, 0 invalid")
    topics = topics_csv(tmp_path / "t", n=8)
    (topics.parent / "labels.json").write_text(json.dumps({"label": ["food", "music", "sport", "tech"]}))
    result = runner.invoke(app, ["data", "validate", str(topics)])  # labels.json names 'label'
    assert result.exit_code == 2 and "data.columns.label=topic" in result.output
    result = runner.invoke(app, ["data", "validate", str(topics), "--column", "label=topic"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["data", "validate", str(topics), "--column", "label"])
    assert result.exit_code == 2 and "expected KEY=COLUMN" in result.output
