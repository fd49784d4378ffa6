"""``train.deterministic``: PyTorch's deterministic algorithms during the run, restored after, and a
loud failure (not a silent variation) on an op that has no deterministic implementation.

``Tensor.put_`` (accumulate=False) is such an op on every device, CPU included (torch 2.14), so
the failure is tested here without a GPU. What this proves: the flag reaches torch for the whole
run and its error surfaces as a TrainingError naming the op. It does not prove GPU kernels are
bitwise reproducible (that is torch's promise once the flag is on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from accelerate import Accelerator
from helpers import PairSet, TinyDual, collate, info_nce

from polymodal.config import RunConfig
from polymodal.errors import TrainingError
from polymodal.train.strategies import apply_strategy
from polymodal.train.trainer import DataSplit, Trainer


class PutDual(TinyDual):
    """TinyDual whose image input passes through ``put_`` (a no-op write of its own values)."""

    seen: list[bool]

    def forward(self, batch: dict[str, Any]) -> Any:
        self.seen.append(torch.are_deterministic_algorithms_enabled())
        image = batch["image"].clone()
        image.put_(torch.tensor([0]), image.flatten()[:1].clone())
        return super().forward({**batch, "image": image})


def _trainer(tmp_path: Path, deterministic: bool) -> tuple[Trainer, PutDual]:
    cfg = RunConfig.model_validate({"data": {"batch_size": 8},
                                    "train": {"epochs": 1, "max_steps": 2, "progress": False,
                                              "deterministic": deterministic}})
    torch.manual_seed(0)
    model = PutDual()
    model.seen = []
    return Trainer(cfg, model, info_nce, DataSplit(PairSet(32), collate), None, tmp_path / "run",
                   apply_strategy(model, cfg.train), {}, [], Accelerator(cpu=True)), model


def test_an_op_without_a_deterministic_implementation_fails_loudly(tmp_path: Path) -> None:
    assert not torch.are_deterministic_algorithms_enabled()
    tr, model = _trainer(tmp_path, deterministic=True)
    with pytest.raises(TrainingError, match=r"train.deterministic: put_ does not have a deterministic implementation"):
        tr.fit()
    assert model.seen == [True]
    assert not torch.are_deterministic_algorithms_enabled()  # restored after the failure too


def test_without_the_switch_the_same_model_trains(tmp_path: Path) -> None:
    tr, model = _trainer(tmp_path, deterministic=False)
    assert tr.fit().steps == 2
    assert model.seen and not any(model.seen)


def test_the_switch_is_on_for_the_whole_run_and_restored_after(tmp_path: Path) -> None:
    torch.use_deterministic_algorithms(True, warn_only=True)  # the caller's own setting
    try:
        cfg = RunConfig.model_validate({"data": {"batch_size": 8},
                                        "train": {"epochs": 1, "max_steps": 3, "progress": False,
                                                  "deterministic": True}})
        seen: list[tuple[bool, bool]] = []

        class Watch(TinyDual):
            def forward(self, batch: dict[str, Any]) -> Any:
                seen.append((torch.are_deterministic_algorithms_enabled(),
                             torch.is_deterministic_algorithms_warn_only_enabled()))
                return super().forward(batch)

        model = Watch()
        Trainer(cfg, model, info_nce, DataSplit(PairSet(32), collate), DataSplit(PairSet(8, seed=1), collate),
                tmp_path / "run", apply_strategy(model, cfg.train), {}, [], Accelerator(cpu=True)).fit()
        # training and evaluation steps ran with errors on (not warn-only); the caller's setting is back
        assert seen and all(s == (True, False) for s in seen)
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")
def test_on_cuda_two_deterministic_runs_are_bitwise_equal(tmp_path: Path) -> None:
    # each run in a fresh process: cuBLAS reads CUBLAS_WORKSPACE_CONFIG once, when CUDA starts
    import os
    import subprocess
    import sys

    import yaml
    from safetensors.torch import load_file

    from polymodal.data.builtin import make_dataset

    manifest = make_dataset("shapes", tmp_path / "shapes", n=48)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"preset": "tiny-dual", "kind": "dual"},
        "data": {"manifest": str(manifest), "batch_size": 8, "image": {"size": 64}},
        "train": {"epochs": 1, "progress": False, "mixed_precision": "no", "deterministic": True},
    }))
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    weights = []
    for name in ("a", "b"):
        proc = subprocess.run([sys.executable, "-m", "polymodal.cli.main", "train", str(config),
                               "--out", str(tmp_path / name)], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        weights.append(load_file(str(tmp_path / name / "model" / "model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
