import json
import shutil

import pytest
import torch
from accelerate import Accelerator
from helpers import PairSet, TinyDual, collate, info_nce
from safetensors.torch import load_file

from polymodal.config import RunConfig
from polymodal.errors import TrainingError
from polymodal.train import checkpoint as ckpt
from polymodal.train.strategies import apply_strategy
from polymodal.train.trainer import DataSplit, Trainer


def _trainer(tmp_path, name="run", nan_ids=None, **train):
    cfg = RunConfig.model_validate({"data": {"batch_size": 8},
                                    "train": {"lr": 3e-3, "epochs": 3, "progress": False, "log_every": 1,
                                              **train}})
    torch.manual_seed(0)
    model = TinyDual()
    rep = apply_strategy(model, cfg.train)
    return Trainer(cfg, model, info_nce, DataSplit(PairSet(64, nan_ids=nan_ids), collate),
                   DataSplit(PairSet(24, seed=1), collate), tmp_path / name, rep,
                   {"data": "d", "model": "m"}, [], Accelerator(cpu=True))


def _events(run_dir, kind):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def test_loss_goes_down_and_metrics_are_logged(tmp_path):
    tr = _trainer(tmp_path, epochs=6)
    result = tr.fit()
    train = _events(tr.run_dir, "train")
    assert result.steps == 6 * 8
    assert sum(e["loss"] for e in train[-4:]) < 0.7 * sum(e["loss"] for e in train[:4])
    evals = _events(tr.run_dir, "eval")
    assert len(evals) == 6 and evals[-1]["val/recall@1"] > evals[0]["val/recall@1"]
    assert result.best_metric == min(e["val/loss"] for e in evals)


def test_resume_from_a_mid_epoch_checkpoint_is_bitwise_exact(tmp_path):
    full = _trainer(tmp_path, "full", grad_accum=3, checkpoint_every=2, keep_last=50)
    full.fit()
    mid = ckpt.step_dir(full.ckpt_dir, 4)  # epoch 1 has 3 steps (8 batches / 3): step 4 is mid-epoch 2
    resumed = _trainer(tmp_path, "resumed", grad_accum=3, checkpoint_every=2, keep_last=50)
    shutil.copytree(mid, resumed.ckpt_dir / mid.name)
    torch.manual_seed(1234)  # a different process state: resume must not depend on it
    resumed.fit(resume_path=resumed.ckpt_dir / mid.name)
    a = load_file(str(ckpt.step_dir(full.ckpt_dir, 9) / "model.safetensors"))
    b = load_file(str(ckpt.step_dir(resumed.ckpt_dir, 9) / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_nan_skip_logs_ids_and_keeps_weights_finite(tmp_path):
    tr = _trainer(tmp_path, nan_ids={"r5"}, epochs=1)
    result = tr.fit()
    nan = _events(tr.run_dir, "nan")
    assert len(nan) == 1 and "r5" in nan[0]["ids"] and len(nan[0]["ids"]) == 8
    assert "r5" in result.skipped_ids and result.steps == 8
    assert all(torch.isfinite(p).all() for p in tr.raw_model.parameters())


def test_nan_halt_checkpoints_and_raises_with_ids(tmp_path):
    tr = _trainer(tmp_path, nan_ids={"r5"}, epochs=1, on_nan="halt")
    with pytest.raises(TrainingError, match="r5"):
        tr.fit()
    assert "r5" in (tr.run_dir / "nan_ids.json").read_text().split()
    assert ckpt.latest_complete(tr.ckpt_dir) is not None


def test_resume_refuses_other_data_unless_forced(tmp_path):
    tr = _trainer(tmp_path, epochs=1)
    tr.fit()
    path = ckpt.latest_complete(tr.ckpt_dir)
    other = _trainer(tmp_path, "other", epochs=2)
    other.fingerprint = {"data": "changed", "model": "m"}
    with pytest.raises(TrainingError, match=r'settings differ .*data: "d" -> "changed".*--force'):
        other.fit(resume_path=path)
    other.fit(resume_path=path, force=True)


@pytest.mark.parametrize("strategy", [{"strategy": "linear_probe"}, {"strategy": "top_k", "top_k": 1},
                                      {"strategy": "locked", "locked_towers": ["text"]}])
def test_training_changes_exactly_the_trainable_parameters(tmp_path, strategy):
    tr = _trainer(tmp_path, epochs=1, max_steps=3, weight_decay=0.0, **strategy)
    before = {n: p.detach().clone() for n, p in tr.raw_model.named_parameters()}
    tr.fit()
    changed = {n for n, p in tr.raw_model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == set(tr.strategy.names)
