"""Exact resume, end to end: real `polymodal train` processes killed with SIGKILL and resumed.

The reference is an uninterrupted run of the same config; every interrupted-and-resumed
run must end with a model file that is bitwise identical to it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tiny_contrastive.yaml"
# 96 train rows / batch 8 = 12 micro-batches, grad_accum 2 -> 6 optimizer steps per epoch, 3 epochs
SETTINGS = ["data.batch_size=8", "train.grad_accum=2", "train.epochs=3", "train.max_steps=null",
            "train.checkpoint_every=2", "train.eval_every=4", "train.warmup_steps=2", "train.keep_last=3",
            "train.log_every=1", "train.progress=false", "data.limit=96"]


def _cmd(manifest: Path, out: Path, *extra: str) -> list[str]:
    sets = [f"--set={s}" for s in [f"data.manifest={manifest}", *SETTINGS]]
    return [sys.executable, "-m", "polymodal.cli.main", "train", str(EXAMPLE), *sets, "--out", str(out), *extra]


def _env(fault: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "POLYMODAL_FAULT"}
    env["OMP_NUM_THREADS"] = "1"  # same thread count in every run: same reduction order
    if fault:
        env["POLYMODAL_FAULT"] = fault
    return env


def _run(manifest: Path, out: Path, *extra: str, fault: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(manifest, out, *extra), env=_env(fault), capture_output=True, text=True,
                          timeout=600)


def _weights(run: Path) -> dict:
    return load_file(str(run / "model" / "model.safetensors"))


def _assert_same(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not (wa[k].dtype == wb[k].dtype and wa[k].equal(wb[k]))]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    from polymodal.data.builtin import make_dataset

    return make_dataset("shapes", tmp_path_factory.mktemp("shapes"), n=140, seed=0)


@pytest.fixture(scope="module")
def reference(shapes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = _run(shapes, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _killed(shapes: Path, out: Path, fault: str) -> None:
    proc = _run(shapes, out, fault=fault)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert not (out / "model").exists()


def _resume(shapes: Path, out: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    return _run(shapes, out, "--resume", fault=fault)


def test_reference_run_lowers_the_loss(reference):
    events = [json.loads(x) for x in (reference / "metrics.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in events if e["event"] == "train"]
    assert len(losses) == 18
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    assert (reference / "config.yaml").is_file() and any((reference / "tb").iterdir())


def test_kill_at_accumulation_micro_step_in_epoch_two(shapes, reference, tmp_path):
    out = tmp_path / "run"
    _killed(shapes, out, "9:0")  # after the first micro-batch of step 9 (epoch 2, mid-accumulation)
    proc = _resume(shapes, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same(reference, out)


def test_killed_twice_within_one_epoch(shapes, reference, tmp_path):
    out = tmp_path / "run"
    _killed(shapes, out, "14:1")  # epoch 3, right after step 14's last micro-step (before it applies)
    proc = _resume(shapes, out, fault="17:0")  # same epoch again, after a checkpoint at 16
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    proc = _resume(shapes, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same(reference, out)


def test_kill_at_a_random_moment_watched_from_outside(shapes, reference, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd(shapes, out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if metrics.is_file() and any(json.loads(x).get("step", 0) >= 7 for x in metrics.read_text().splitlines()
                                     if x.strip().endswith("}")):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    resumed = _resume(shapes, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same(reference, out)


def test_incomplete_checkpoint_is_skipped_with_a_warning(shapes, reference, tmp_path):
    out = tmp_path / "run"
    _killed(shapes, out, "11:0")
    ckpts = sorted((out / "checkpoints").glob("step-*"))
    (ckpts[-1] / "manifest.json").unlink()  # as if the kill hit while writing the newest one
    proc = _resume(shapes, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"skipping checkpoint {ckpts[-1]}" in proc.stderr
    _assert_same(reference, out)


def test_resume_refuses_another_dataset_unless_forced(shapes, reference, tmp_path):
    out = tmp_path / "run"
    _killed(shapes, out, "5:0")
    other = _run(shapes, out, "--resume", "--set=data.limit=80")
    assert other.returncode == 2, other.stderr[-3000:]
    # every changed setting named with its old and new value (the rows follow from the limit)
    assert "data.limit: " in other.stderr and "-> 80" in other.stderr
    assert "data.rows: the train/val rows differ" in other.stderr and "--force" in other.stderr
    assert "Traceback" not in other.stderr


def test_sigterm_checkpoints_and_exits_cleanly(shapes, reference, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd(shapes, out), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    metrics = out / "metrics.jsonl"
    while proc.poll() is None and not (metrics.is_file() and '"step": 3' in metrics.read_text()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert "--resume" in stdout
    assert _resume(shapes, out).returncode == 0
    _assert_same(reference, out)
