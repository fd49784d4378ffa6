"""``polymodal tasks`` / ``eval`` / ``compare`` through the CLI app (typer's test runner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from polymodal.cli.main import app

runner = CliRunner()


def test_tasks_lists_every_task_with_metrics() -> None:
    r = runner.invoke(app, ["tasks"], terminal_width=200)
    assert r.exit_code == 0, r.output
    for name in ("zeroshot-classification", "retrieval", "linear-probe", "classification", "acc@1", "macro_f1"):
        assert name in r.output


def test_unknown_task_and_missing_data_are_clean_errors(tmp_path: Path) -> None:
    r = runner.invoke(app, ["eval", "tiny-dual", "--task", "nope", "--data", str(tmp_path / "m.jsonl")])
    assert r.exit_code == 2 and "unknown task 'nope'" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["compare", "tiny-dual", "tiny-dual", "--task", "retrieval", "--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "missing.jsonl" in r.output and "Traceback" not in r.output


@pytest.mark.slow
def test_eval_and_compare_with_a_real_preset(tmp_path: Path) -> None:
    from polymodal.data.builtin import make_dataset

    manifest = make_dataset("shapes", tmp_path / "shapes", n=40)
    out = tmp_path / "res.json"
    r = runner.invoke(
        app,
        ["eval", "tiny-dual", "--task", "zeroshot-classification", "--data", str(manifest), "--json", "--out", str(out), "--bootstrap", "50"],
    )
    assert r.exit_code == 0, r.output
    printed = json.loads(r.stdout)
    assert set(printed) >= {"acc@1", "acc@5", "mean_per_class_recall"}
    assert 0.0 <= printed["acc@1"]["low"] <= printed["acc@1"]["value"] <= printed["acc@1"]["high"] <= 1.0
    assert json.loads(out.read_text())["metrics"] == printed

    board = tmp_path / "board"
    r = runner.invoke(
        app,
        ["compare", "tiny-dual", "tiny-dual", "--task", "retrieval", "--data", str(manifest), "--out", str(board), "--bootstrap", "50"],
    )
    assert r.exit_code == 0, r.output
    data = json.loads((board / "leaderboard.json").read_text())
    assert data["models"] == ["tiny-dual", "tiny-dual (2)"]
    assert "retrieval: image_to_text/R@1" in data["columns"]
    assert (board / "report.html").is_file() and (board / "leaderboard.csv").is_file()
