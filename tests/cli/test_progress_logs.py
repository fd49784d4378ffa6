"""Long commands write plain progress lines when their output is not a terminal (a log file,
CI, nohup): ``train``, ``eval`` and ``embed`` used to stay silent until they ended."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from polymodal.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from polymodal.data.builtin import make_dataset

    return make_dataset("shapes", tmp_path_factory.mktemp("shapes"), n=40)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYMODAL_CACHE", str(tmp_path / "cache"))


def test_train_writes_step_rate_and_eta_lines(shapes: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("model: {preset: tiny-dual}\ndata: {batch_size: 8, image: {size: 32}}\n"
                      "train: {epochs: 1, mixed_precision: 'no'}\n", encoding="utf-8")
    r = runner.invoke(app, ["train", str(config), "--set", f"data.manifest={shapes}", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert "train: 4 optimizer steps to run" in r.stderr
    last = [ln for ln in r.stderr.splitlines() if ln.startswith("train: step")][-1]
    assert re.fullmatch(r"train: step 4/4 \(100%\) · loss \d+\.\d{4} · [\d.]+ samples/s · elapsed \d+s · done", last), last


def test_eval_writes_encoding_lines(shapes: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["eval", "tiny-dual", "--task", "retrieval", "--data", str(shapes), "--bootstrap", "0",
                            "--out", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    assert re.search(r"^encoding image: 4/4 \(100%\) · [\d.]+ items/s · elapsed \d+s · done$", r.stderr, re.M), r.stderr
    assert re.search(r"^encoding text: \d+/\d+ \(100%\)", r.stderr, re.M), r.stderr


def test_embed_writes_lines_and_reports_more_often_than_every_512_items(shapes: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["embed", "tiny-dual", "--data", str(shapes), "--modality", "image",
                            "--out", str(tmp_path / "e.npy"), "--batch-size", "8"])
    assert r.exit_code == 0, r.output
    assert re.search(r"^embedding image: 40/40 \(100%\) · .* · done$", r.stderr, re.M), r.stderr

    from polymodal.embed import embed_items
    from polymodal.models.build import build_preset

    model = build_preset("tiny-dual")
    texts = [f"caption {i} " + "word " * (i % 13) for i in range(700)]
    steps: list[int] = []
    got = embed_items(model, texts, "text", batch_size=16, on_progress=steps.append)
    assert sum(steps) == 700 and steps[0] == 32  # two batches first: a rate and an ETA early
    assert len(steps) >= 3 and max(steps) <= 512 and all(s % 16 == 0 for s in steps[:-1])
    whole = embed_items(model, texts, "text", batch_size=16, chunk=700)  # one chunk, same batches
    np.testing.assert_allclose(got, whole, atol=1e-5)
