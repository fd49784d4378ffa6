"""The NaN policy has a floor: skipped steps are limited, non-finite weights halt, and a non-finite
model or selection metric is never exported as the best. Engine-level runs on small real modules
(tests/train/helpers.py); the lr-1e6 run on tiny-dual is in tests/train/test_trust_runs.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from helpers import PairSet, TinyDual, collate, info_nce

from polymodal.config import RunConfig
from polymodal.errors import TrainingError
from polymodal.train import checkpoint as ckpt
from polymodal.train.strategies import apply_strategy
from polymodal.train.trainer import DataSplit, Trainer


def _trainer(tmp_path: Path, *, nan_ids=None, val_nan_ids=None, exported: list | None = None, **train) -> Trainer:
    cfg = RunConfig.model_validate({"data": {"batch_size": 8},
                                    "train": {"lr": 3e-3, "epochs": 2, "progress": False, "log_every": 1, **train}})
    torch.manual_seed(0)
    model = TinyDual()
    return Trainer(cfg, model, info_nce, DataSplit(PairSet(64, nan_ids=nan_ids), collate),
                   DataSplit(PairSet(16, seed=1, nan_ids=val_nan_ids), collate), tmp_path / "run",
                   apply_strategy(model, cfg.train), {}, [], Accelerator(cpu=True),
                   export=(lambda m, out: exported.append(out)) if exported is not None else None)


def _events(run: Path, kind: str) -> list[dict]:
    return [e for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if e["event"] == kind]


def test_consecutive_skips_halt_with_a_checkpoint(tmp_path: Path) -> None:
    every_row = {f"r{i}" for i in range(64)}
    tr = _trainer(tmp_path, nan_ids=every_row, nan_max_fraction=None)
    with pytest.raises(TrainingError, match=r"5 steps in a row skipped, train.nan_max_consecutive=5"):
        tr.fit()
    assert [e["step"] for e in _events(tr.run_dir, "nan")] == [1, 2, 3, 4, 5]
    # the checkpoint is the state before the fifth skipped step, which a resume runs again
    latest = ckpt.latest_complete(tr.ckpt_dir)
    assert latest is not None and latest.name == ckpt.step_dir(tr.ckpt_dir, 4).name
    state = ckpt.load_checkpoint(latest, TinyDual())
    assert state["trainer"]["skipped_steps"] == 4 and state["trainer"]["consecutive_skips"] == 4


def test_skipped_fraction_halts(tmp_path: Path) -> None:
    # 16 steps, 5% -> one skipped step is tolerated, the second halts
    tr = _trainer(tmp_path, nan_ids={"r1", "r2", "r3", "r4", "r5", "r6"}, nan_max_consecutive=None)
    with pytest.raises(TrainingError, match=r"2 of 16 steps skipped, more than train.nan_max_fraction=0.05"):
        tr.fit()
    assert len(_events(tr.run_dir, "nan")) == 2


def test_limits_off_keep_skipping(tmp_path: Path) -> None:
    tr = _trainer(tmp_path, nan_ids={"r1", "r2", "r3", "r4", "r5", "r6"}, nan_max_consecutive=None,
                  nan_max_fraction=None)
    result = tr.fit()
    assert result.steps == 16 and len(_events(tr.run_dir, "nan")) >= 2


def test_non_finite_weights_after_a_step_halt_without_saving_them(tmp_path: Path) -> None:
    # a finite loss and finite gradients, but an update that overflows float32
    tr = _trainer(tmp_path, lr=1e39, checkpoint_every=1, max_grad_norm=None)
    with pytest.raises(TrainingError, match=r"non-finite weights after optimizer step 1 .*no checkpoint was written"):
        tr.fit()
    assert ckpt.list_checkpoints(tr.ckpt_dir) == []
    assert _events(tr.run_dir, "nan")[0]["weights"]


def test_every_checkpoint_has_finite_weights(tmp_path: Path) -> None:
    # the weights blow up at step 4: the run stops there and the newest checkpoint is step 3's
    tr2 = _trainer(tmp_path, checkpoint_every=1, keep_last=50, epochs=1)
    real_step = tr2.optimizer.step
    calls = []

    def step(*args, **kwargs):
        out = real_step(*args, **kwargs)
        calls.append(1)
        if len(calls) == 4:
            with torch.no_grad():
                next(tr2.raw_model.parameters()).fill_(float("inf"))
        return out

    tr2.optimizer.step = step
    with pytest.raises(TrainingError, match=r"step 4 .*newest checkpoint, step-00000003, has finite weights"):
        tr2.fit()
    assert [s for s, _ in ckpt.list_checkpoints(tr2.ckpt_dir)] == [1, 2, 3]


def test_a_non_finite_selection_metric_is_never_the_best(tmp_path: Path) -> None:
    exported: list = []
    # every validation row holds a NaN: val/loss is NaN at every evaluation
    tr = _trainer(tmp_path, val_nan_ids={f"r{i}" for i in range(16)}, exported=exported)
    with pytest.raises(TrainingError, match=r"no evaluation gave a finite val/loss .*model/ is not exported"):
        tr.fit()
    assert exported == []
    assert all(e["val/loss"] == "nan" for e in _events(tr.run_dir, "eval"))


def test_best_is_the_last_finite_one(tmp_path: Path) -> None:
    exported: list = []
    tr = _trainer(tmp_path, exported=exported, eval_every=2)
    # the validation data turns bad after step 4: later evaluations are NaN
    val = tr.val_data.dataset
    real_eval = tr.run_eval

    def run_eval():
        if tr.global_step > 4:
            val.nan_ids = {f"r{i}" for i in range(16)}
        return real_eval()

    tr.run_eval = run_eval
    result = tr.fit()
    assert exported and result.best_step is not None and result.best_step <= 4
    assert tr.best_path is not None and tr.best_path.name == ckpt.step_dir(tr.ckpt_dir, result.best_step).name
