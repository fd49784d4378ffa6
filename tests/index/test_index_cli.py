from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal.cli.main import build_cli


def cli(args: list[str]) -> int:
    try:
        code = build_cli().main(args=args, prog_name="polymodal", standalone_mode=False)
    except SystemExit as exc:  # typer.Exit from fail()
        return int(exc.code or 0)
    return int(code or 0)


def test_index_build_then_search_from_the_shell(shapes_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "idx"
    assert cli(["index", "build", "tiny-dual", "--data", str(shapes_dir / "manifest.jsonl"), "--out", str(out),
                "--modality", "text", "--chunk-size", "10"]) == 0
    printed = capsys.readouterr().out
    assert "wrote index of 24 x 32" in printed and "flat" in printed
    caption = json.loads((out / "items.jsonl").read_text().splitlines()[5])["caption"]
    assert cli(["index", "search", str(out), caption, "-k", "2", "--json"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(hits) == 2 and hits[0]["caption"] == caption and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert cli(["index", "info", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 24


def test_index_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["index", "search", str(tmp_path), "x"]) == 2
    assert "not an index folder" in capsys.readouterr().err
    assert cli(["index", "build", "tiny-dual", "--data", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "i")]) == 2
    assert "no such file" in capsys.readouterr().err
