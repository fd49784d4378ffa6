import json
import subprocess
import sys
from pathlib import Path

import pytest
from data_corpus import rgb_array, save_png, write_mixed_manifest
from typer.testing import CliRunner

from polymodal.cli.main import app

runner = CliRunner()


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, list(args))
    # a clean exit is SystemExit (typer.Exit); anything else is a traceback
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_validate_mixed_manifest_exit_1_and_lists_bad_rows(tmp_path: Path) -> None:
    path, expected = write_mixed_manifest(tmp_path / "data")
    result = _invoke("data", "validate", str(path))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    bad = [e for e in expected if e[2] is not None]
    assert lines[0] == f"{len(expected)} rows: {len(expected) - len(bad)} valid, {len(bad)} invalid"
    assert len(lines) == 1 + len(bad)
    for line, (row, rid, field, reason) in zip(lines[1:], bad, strict=True):
        assert line.startswith(f"row {row} (id {rid}): {field}: "), line
        assert reason in line
    assert "Traceback" not in result.output


def test_validate_json(tmp_path: Path) -> None:
    path, expected = write_mixed_manifest(tmp_path / "data")
    result = _invoke("data", "validate", str(path), "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["rows"] == len(expected)
    assert [(i["row"], i["id"], i["field"]) for i in data["invalid"]] == [
        (r, i, f) for r, i, f, _ in expected if f is not None
    ]


def test_validate_all_good_exit_0_and_root_option(tmp_path: Path) -> None:
    save_png(tmp_path / "imgs" / "a.png", rgb_array())
    (tmp_path / "meta").mkdir()
    manifest = tmp_path / "meta" / "m.csv"
    manifest.write_text('id,split,image,label\n1,train,imgs/a.png,"[""x"", ""y""]"\n')
    # relative to the manifest's folder the file does not exist; with --root it does
    assert _invoke("data", "validate", str(manifest)).exit_code == 1
    result = _invoke("data", "validate", str(manifest), "--root", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 rows: 1 valid, 0 invalid"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bad.jsonl",
            b'{"id": "a", "split": "train"}\n{"id": "b", "split": \n',
            "bad.jsonl:2: malformed JSON line",
        ),
        ("bad.csv", b"id,split,text\na,train,hello\nb,train\n", "bad.csv:3: expected 3 columns"),
        ("dupes.csv", b"id,text,text\na,hello,there\n", "dupes.csv:1: CSV header repeats column(s) text"),
        ("missing.jsonl", None, "missing.jsonl: manifest not found"),
    ],
)
def test_unreadable_manifest_exit_2_names_file_and_line(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_bytes(content)
    for command in ("validate", "stats"):
        result = _invoke("data", command, str(tmp_path / name))
        assert result.exit_code == 2
        assert message in " ".join(result.output.split())
        assert "Traceback" not in result.output


def test_a_csv_without_an_id_column_is_numbered_by_line(tmp_path: Path) -> None:
    # a spreadsheet export (body,topic) has no ids: its line numbers are the ids, not an error
    from polymodal.data.sources import load_manifest

    (tmp_path / "topics.csv").write_text("body,topic\nthe match,sport\n\nthe soup,cooking\n")
    rows = load_manifest(tmp_path / "topics.csv").rows
    assert [(r["id"], r["body"]) for r in rows] == [("2", "the match"), ("4", "the soup")]
    result = _invoke("data", "validate", str(tmp_path / "topics.csv"), "--column", "text=body")
    assert result.exit_code == 0, result.output


def test_stats_counts(tmp_path: Path) -> None:
    rows = [
        {"id": "1", "split": "train", "text": "a", "label": "x"},
        {"id": "2", "split": "train", "text": "b", "label": ["x", "y"]},
        {"id": "3", "split": "test", "image": "i.png", "label": "y"},
    ]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = json.loads(_invoke("data", "stats", str(tmp_path / "m.jsonl"), "--json").output)
    assert data == {
        "rows": 3,
        "splits": {"test": 1, "train": 2},
        "modalities": {"image": 1, "text": 2},
        "labels": {"label": {"x": 2, "y": 2}},
    }
    table = _invoke("data", "stats", str(tmp_path / "m.jsonl"))
    assert table.exit_code == 0 and "split" in table.output and "train" in table.output


def test_make_then_validate_shapes(tmp_path: Path) -> None:
    pytest.importorskip("polymodal.data.builtin")
    out = tmp_path / "shapes"
    made = _invoke("data", "make", "shapes", "--out", str(out), "--n", "60", "--seed", "1")
    assert made.exit_code == 0, made.output
    result = _invoke("data", "validate", str(out / "manifest.jsonl"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("60 rows: 60 valid, 0 invalid")


def test_make_unknown_dataset_is_a_clean_error(tmp_path: Path) -> None:
    pytest.importorskip("polymodal.data.builtin")
    result = _invoke("data", "make", "no-such-dataset", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert "no-such-dataset" in result.output


def test_console_script_has_no_traceback(tmp_path: Path) -> None:
    path, _ = write_mixed_manifest(tmp_path / "data")
    proc = subprocess.run(
        [sys.executable, "-m", "polymodal.cli.main", "data", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "row 4 (id truncated-jpeg): image: files/truncated.jpg: truncated image" in proc.stdout
