"""``--resume`` refuses settings it cannot honour, or applies them honestly with ``--force``.

Real runs of ``polymodal.train.train`` on tiny-dual and the built-in shapes set: one reference
run writes a checkpoint after every step; each test copies one of them into a fresh run dir,
as a run killed right after that step would have left it, and resumes with other settings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from polymodal.config import RunConfig, config_from_dict, load_config
from polymodal.data.builtin import make_dataset
from polymodal.errors import TrainingError
from polymodal.train import train

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ROWS = 32  # train rows (data.limit): 4 steps of 8 per epoch


def _cfg(manifest: Path, **sections: dict[str, Any]) -> RunConfig:
    base: dict[str, Any] = {
        "model": {"preset": "tiny-dual", "kind": "dual"},
        "data": {"manifest": str(manifest), "batch_size": 8, "limit": ROWS, "image": {"size": 64}},
        "train": {"epochs": 2, "lr": 1e-3, "schedule": "constant", "log_every": 1, "progress": False,
                  "checkpoint_every": 1, "keep_last": 50, "mixed_precision": "no"},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return config_from_dict(base)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset("shapes", tmp_path_factory.mktemp("shapes"), n=60)


@pytest.fixture(scope="module")
def reference(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("ref") / "run"
    train(_cfg(shapes), run)
    return run


def _killed_after(reference: Path, step: int, out: Path) -> Path:
    """``out`` as a run killed right after ``step`` would leave it."""
    name = f"step-{step:08d}"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copytree(reference / "checkpoints" / name, out / "checkpoints" / name)
    shutil.copy(reference / "config.yaml", out / "config.yaml")
    events = [json.loads(x) for x in (reference / "metrics.jsonl").read_text().splitlines()]
    (out / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events if e["step"] <= step))
    return out


def _events(run: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if e["event"] == kind]


def test_changed_lr_seed_and_batch_size_are_refused_by_name(shapes: Path, reference: Path, tmp_path: Path) -> None:
    run = _killed_after(reference, 2, tmp_path / "run")
    before = (run / "config.yaml").read_text()
    changed = _cfg(shapes, data={"batch_size": 16}, train={"lr": 5e-3, "seed": 3})
    with pytest.raises(TrainingError) as err:
        train(changed, run, resume=True)
    message = str(err.value)
    assert "data.batch_size: 8 -> 16" in message
    assert "train.lr: 0.001 -> 0.005" in message
    assert "train.seed: 0 -> 3" in message
    assert "--force" in message
    # nothing pretends the new settings were applied
    assert (run / "config.yaml").read_text() == before
    assert not _events(run, "resume")


def test_forced_batch_size_goes_on_from_the_same_row(shapes: Path, reference: Path, tmp_path: Path) -> None:
    # killed after step 2 (16 of the epoch's 32 rows); the rest of the epoch runs in batches of 4.
    # Before: the position was kept in steps, so step 3 of the new cut replayed rows 8-15.
    run = _killed_after(reference, 2, tmp_path / "run")
    result = train(_cfg(shapes, data={"batch_size": 4}), run, resume=True, force=True)
    # epoch 1: 2 steps of 8 + 4 steps of 4; epoch 2: 8 steps of 4
    assert result.steps == 2 + 4 + 8
    samples = {e["step"]: (e["epoch"], e["samples"]) for e in _events(run, "train")}
    assert samples[6] == (1, ROWS) and samples[14] == (2, 2 * ROWS)
    resumed = _events(run, "resume")[-1]
    assert resumed["changed"] == {"data.batch_size": [8, 4]} and resumed["forced"] is True
    assert resumed["steps"] == 14
    text = (run / "config.yaml").read_text()
    assert "# step 2: resumed from step-00000002 with --force: data.batch_size: 8 -> 4" in text
    assert load_config(run / "config.yaml").data.batch_size == 4  # still a loadable run config


def test_forced_lr_is_applied_and_recorded(shapes: Path, reference: Path, tmp_path: Path) -> None:
    run = _killed_after(reference, 2, tmp_path / "run")
    train(_cfg(shapes, train={"lr": 5e-3}), run, resume=True, force=True)
    lrs = {e["step"]: e["lr"] for e in _events(run, "train")}
    assert lrs[2] == pytest.approx(1e-3)  # before the resume
    assert all(lrs[s] == pytest.approx(5e-3) for s in range(3, 9))  # constant schedule: the new lr
    assert _events(run, "resume")[-1]["changed"] == {"train.lr": [0.001, 0.005]}
    text = (run / "config.yaml").read_text()
    assert text.startswith("# history:") and "train.lr: 0.001 -> 0.005" in text


def test_more_epochs_on_a_constant_schedule_need_no_force(shapes: Path, reference: Path, tmp_path: Path) -> None:
    # the reference run finished (8 steps); three epochs would have taken the same 8 steps so far
    run = _killed_after(reference, 8, tmp_path / "run")
    result = train(_cfg(shapes, train={"epochs": 3}), run, resume=True)
    assert result.steps == 12
    resumed = _events(run, "resume")[-1]
    assert resumed["changed"] == {"train.epochs": [2, 3]} and resumed["forced"] is False
    assert "(a longer or shorter run on the same schedule): train.epochs: 2 -> 3" in (run / "config.yaml").read_text()


@pytest.mark.parametrize(("schedule", "warmup", "honest"), [
    ("constant", {}, True), ("constant", {"warmup_steps": 2}, True), ("cosine", {}, False),
    ("linear", {}, False), ("constant", {"warmup_ratio": 0.5}, False)])
def test_a_new_length_is_honest_only_when_the_steps_taken_keep_their_lr(schedule: str, warmup: dict,
                                                                         honest: bool) -> None:
    # 4 of 8 steps taken; the new run would have 12. A cosine, linear or ratio-warm-up schedule
    # spans the run's length, so the 4 steps would have had other learning rates.
    from polymodal.config import TrainConfig
    from polymodal.train.resume import honest_length_keys

    tc = TrainConfig(schedule=schedule, epochs=3, **warmup)
    changes = {"train.epochs": (2, 3)}
    assert honest_length_keys(changes, tc, 8, 12, 4) == ({"train.epochs"} if honest else set())


def test_free_settings_change_without_force(shapes: Path, reference: Path, tmp_path: Path) -> None:
    run = _killed_after(reference, 6, tmp_path / "run")
    result = train(_cfg(shapes, train={"log_every": 2, "keep_last": 3}), run, resume=True)
    assert result.steps == 8
    assert "changed" not in _events(run, "resume")[-1]
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["log_every"] == 2


def test_the_fingerprint_covers_every_key_but_the_documented_free_ones(shapes: Path) -> None:
    from polymodal.train.resume import FREE_KEYS, trajectory_settings

    cfg = _cfg(shapes)
    settings = trajectory_settings(cfg, [], "no")
    for key in ("train.lr", "train.seed", "data.batch_size", "train.grad_accum", "train.schedule",
                "train.warmup_steps", "train.warmup_ratio", "train.optimizer", "train.betas", "train.weight_decay",
                "train.head_lr", "train.epochs", "train.max_steps", "train.strategy", "train.lora.r",
                "train.locked_towers", "train.deterministic", "train.max_grad_norm", "data.length_bucketing",
                "data.image.augment", "data.columns", "objective.kind", "model.preset", "model.towers",
                "data.eval_batch_size", "train.early_stopping_metric", "data.rows", "train.mixed_precision"):
        assert key in settings, key
    # a key added to the config later is fingerprinted unless it is declared free
    free = {k for k in FREE_KEYS if "." in k}
    assert not free & {k for k in settings if k != "train.mixed_precision"}
    # the guide names each free key and why it is free
    guide = (ROOT / "docs" / "training.md").read_text()
    assert all(f"`{k}`" in guide for k in FREE_KEYS), [k for k in FREE_KEYS if f"`{k}`" not in guide]


def test_a_checkpoint_that_records_no_settings_is_described_in_one_phrase(shapes: Path) -> None:
    from polymodal.train.resume import compare, describe, trajectory_settings

    # what checkpoints held before every setting was recorded
    legacy = {"data": "0123456789abcdef", "model": "fedcba9876543210"}
    text = describe(compare(legacy, trajectory_settings(_cfg(shapes), [], "no")))
    assert 'data: "0123456789abcdef" -> (not recorded)' in text
    assert "settings the checkpoint does not record" in text and "train.lr: " not in text
    assert len(text) < 400
