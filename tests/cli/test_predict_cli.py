"""``polymodal predict RUN --data MANIFEST_OR_FOLDER_OR_FILES --out preds.csv``, as a user runs it."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from polymodal.config import ModelConfig
from polymodal.models.build import build_model

CLASSES = ["cat", "dog", "fox"]


def polymodal_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The command in this process (a subprocess per call costs a torch import each)."""
    from typer.testing import CliRunner

    from polymodal.cli.main import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = build_model(ModelConfig(preset="tiny-dual", kind="classifier", inputs=["image"]), {"label": CLASSES})
    run = tmp_path_factory.mktemp("run")
    model.save_pretrained(run / "model")
    return run


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    rng = np.random.default_rng(0)
    for i in range(9):
        folder = root / CLASSES[i % 3]
        folder.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_predict_a_class_folder_tree_to_csv(run_dir: Path, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    proc = polymodal_cli("predict", str(run_dir), "--data", str(tree), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote 9 predictions (head: label) to {out}" in proc.stdout
    rows = _read(out)
    assert list(rows[0]) == ["id", "image", "label", "predicted", "probability", "prob_cat", "prob_dog", "prob_fox"]
    assert sorted(r["id"] for r in rows) == sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*.png"))
    assert all(r["predicted"] in CLASSES and 0 < float(r["probability"]) <= 1 for r in rows)


def test_files_from_a_shell_glob_and_stdout(run_dir: Path, tree: Path, tmp_path: Path) -> None:
    """The console script, its output piped (not a terminal): the CSV alone on stdout."""
    files = sorted(str(p) for p in tree.glob("cat/*.png"))
    # `--data *.png` expands to `--data a.png b.png c.png`: the extra paths are inputs too
    proc = subprocess.run([sys.executable, "-m", "polymodal.cli.main", "predict", str(run_dir), "--data", *files,
                           "--top-k", "1"], capture_output=True, text=True, check=False, timeout=300,
                          env={**os.environ, "COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "id,image,predicted,probability,top1,top1_prob"  # no --out: the CSV on stdout
    assert [ln.split(",")[1] for ln in lines[1:]] == files


def test_clear_errors_not_tracebacks(run_dir: Path, tree: Path, tmp_path: Path) -> None:
    proc = polymodal_cli("predict", "tiny-dual", "--data", str(tree))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no classification head" in proc.stderr
    assert "polymodal eval tiny-dual --task zeroshot-classification" in proc.stderr
    proc = polymodal_cli("predict", str(run_dir))
    assert proc.returncode == 2 and "--data" in proc.stderr
    proc = polymodal_cli("predict", str(run_dir), "--data", str(tmp_path / "missing.png"))
    assert proc.returncode == 2 and "missing.png: no such file" in proc.stderr
    proc = polymodal_cli("predict", str(run_dir), "--data", str(tree), "--column", "image")
    assert proc.returncode == 2 and "--column 'image': expected KEY=COLUMN" in proc.stderr


def test_help_names_the_inputs(run_dir: Path) -> None:
    proc = polymodal_cli("predict", "--help")
    assert proc.returncode == 0
    for word in ("--data", "--out", "--split", "--column", "--top-k", "--threshold", "class-folder"):
        assert word in proc.stdout, word


def test_a_bad_file_is_named_by_its_row_and_logs_get_progress_lines(
    run_dir: Path, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import polymodal.cli.predict as cli_predict

    root = tmp_path / "data"
    root.mkdir()
    good = next(tree.rglob("*.png"))
    (root / "good.png").write_bytes(good.read_bytes())
    (root / "broken.png").write_bytes(b"not a png")
    (root / "m.csv").write_text("id,image\nfirst,good.png\nsecond,broken.png\n")
    proc = polymodal_cli("predict", str(run_dir), "--data", str(root / "m.csv"), "--out", str(tmp_path / "p.csv"))
    assert proc.returncode == 2 and "'second'" in proc.stderr and "broken.png" in proc.stderr
    monkeypatch.setattr(cli_predict, "LOG_EVERY_S", 0.0)  # output to a log (not a terminal): plain lines
    proc = polymodal_cli("predict", str(run_dir), "--data", str(tree), "--out", str(tmp_path / "p.csv"),
                         "--batch-size", "4")
    assert proc.returncode == 0, proc.stderr
    assert "predict: 4/9 items" in proc.stderr and "predict: 9/9 items" in proc.stderr and "ETA" in proc.stderr
