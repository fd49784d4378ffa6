"""The line `polymodal quickstart` ends with works as printed (here on a saved tiny model)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from polymodal.cli.main import build_cli
from polymodal.serve.commands import serve_command


def test_the_printed_line_indexes_and_names_the_same_model_and_index(tiny, shapes_dir: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    model_dir = tmp_path / "run with space" / "model"
    tiny.save_pretrained(model_dir)
    line = serve_command(model_dir, shapes_dir / "manifest.jsonl", tmp_path / "run with space" / "index")
    build, serve = line.split(" && ")
    args = shlex.split(build)
    assert args[:3] == ["polymodal", "index", "build"]
    build_cli().main(args=args[1:], prog_name="polymodal", standalone_mode=False)
    assert "wrote index of 24" in capsys.readouterr().out
    served = shlex.split(serve)
    assert served[:3] == ["polymodal", "serve", str(model_dir)] and served[3:] == ["--index", args[-1]]
    assert (Path(args[-1]) / "info.json").is_file()
