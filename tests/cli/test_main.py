import subprocess
import sys
from typing import Any

import pytest

from polymodal import __version__
from polymodal.cli.main import build_cli


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = build_cli().main(args=args, prog_name="polymodal", standalone_mode=False)
    return (code or 0), capsys.readouterr().out


def test_root_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"polymodal {__version__}"
    code, out = run_cli(["--help"], capsys)
    assert code == 0
    assert "Usage" in out


def _walk(command: Any, path: list[str]) -> Any:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, [*path, name])


def test_every_command_has_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    seen = 0
    for path, _cmd in _walk(build_cli(), []):
        code, out = run_cli([*path, "--version"], capsys)
        assert code == 0 and out.strip() == f"polymodal {__version__}", path
        code, out = run_cli([*path, "--help"], capsys)
        assert code == 0 and "Usage" in out, path
        seen += 1
    assert seen >= 1


@pytest.mark.parametrize("module", ["polymodal.cli.main", "polymodal"])
def test_console_script_runs(module: str) -> None:
    out = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, check=True)
    assert __version__ in out.stdout


def test_errors_sent_to_a_log_file_keep_long_paths_on_one_line(tmp_path: Any) -> None:
    """Output that is not a terminal (a log file) is not wrapped at 80 columns mid-path."""
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "missing-manifest.jsonl"
    log = tmp_path / "log.txt"
    with log.open("w") as fh:
        proc = subprocess.run([sys.executable, "-m", "polymodal.cli.main", "data", "validate", str(deep)],
                              stdout=fh, stderr=subprocess.STDOUT, env={"COLUMNS": "80", "PATH": ""}, check=False)
    assert proc.returncode == 2
    text = log.read_text()
    assert len(str(deep)) > 80 and str(deep) in text  # whole, not broken across lines
