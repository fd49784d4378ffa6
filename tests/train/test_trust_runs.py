"""Whole runs that must not end well: lr 1e6 on tiny-dual halts instead of exporting a broken
model, and ``train.deterministic`` runs a real tiny-dual alignment on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from polymodal.config import config_from_dict
from polymodal.data.builtin import make_dataset
from polymodal.errors import TrainingError
from polymodal.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset("shapes", tmp_path_factory.mktemp("shapes"), n=60)


def _cfg(manifest: Path, **train_cfg: object) -> object:
    return config_from_dict({
        "model": {"preset": "tiny-dual", "kind": "dual"},
        "data": {"manifest": str(manifest), "batch_size": 8, "limit": 40, "image": {"size": 64}},
        "train": {"epochs": 2, "log_every": 1, "progress": False, "mixed_precision": "no",
                  "checkpoint_every": 2, **train_cfg},
    })


def test_lr_1e6_halts_and_exports_no_model(shapes: Path, tmp_path: Path) -> None:
    # before: step 1 wrecked the weights, every later step was skipped, the run exited 0 and
    # exported model/ as the best with val/loss nan
    run = tmp_path / "run"
    with pytest.raises(TrainingError) as err:
        train(_cfg(shapes, lr=1e6), run)
    message = str(err.value)
    assert "train.lr=1000000.0 too high?" in message
    assert not (run / "model").exists()
    assert [e for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if e["event"] == "nan"]
    # what it leaves behind is finite
    for folder in (run / "checkpoints").glob("step-*"):
        weights = load_file(str(folder / "model.safetensors"))
        assert all(t.isfinite().all() for t in weights.values() if t.is_floating_point()), folder.name


def test_deterministic_tiny_dual_run_trains_on_the_cpu(shapes: Path, tmp_path: Path) -> None:
    import torch

    result = train(_cfg(shapes, deterministic=True, epochs=1), tmp_path / "run")
    assert result.steps == 5 and (tmp_path / "run" / "model" / "model.safetensors").is_file()
    assert not torch.are_deterministic_algorithms_enabled()
