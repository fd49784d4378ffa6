"""The data order: plain and length-bucketed permutations are pure functions of (seed, epoch)."""

from __future__ import annotations

import random
import signal

import pytest
import torch
from accelerate import Accelerator
from helpers import PairSet, TinyDual, collate, info_nce
from safetensors.torch import load_file
from test_resume_subprocess import _assert_same, _run

from polymodal.config import RunConfig
from polymodal.data.builtin import make_dataset
from polymodal.errors import TrainingError
from polymodal.train import checkpoint as ckpt
from polymodal.train import order
from polymodal.train.strategies import apply_strategy
from polymodal.train.trainer import DataSplit, Trainer


def _lengths(n: int, seed: int = 3) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 300) for _ in range(n)]


def _padded(lengths: list[int], perm: list[int], bs: int) -> int:
    """Tokens a pad-to-longest collate would produce for the full batches of ``perm``."""
    batches = order.global_batches(perm, bs, drop_last=True)
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


def test_bucketed_order_is_a_function_of_seed_and_epoch() -> None:
    lengths = _lengths(1000)
    a = order.bucketed_order(lengths, 32, seed=7, epoch=2)
    assert a == order.bucketed_order(list(lengths), 32, seed=7, epoch=2)
    assert a != order.bucketed_order(lengths, 32, seed=7, epoch=3)
    assert a != order.bucketed_order(lengths, 32, seed=8, epoch=2)


@pytest.mark.parametrize(("n", "bs", "pool"), [(1000, 32, 50), (1000, 32, 4), (97, 10, 3), (5, 8, 2)])
def test_bucketed_order_covers_every_row_once(n: int, bs: int, pool: int) -> None:
    perm = order.bucketed_order(_lengths(n), bs, seed=0, epoch=1, pool=pool)
    assert sorted(perm) == list(range(n))


def test_only_the_short_batch_is_dropped() -> None:
    n, bs = 1000, 32  # 31 full batches + 8 rows
    lengths = _lengths(n)
    perm = order.bucketed_order(lengths, bs, seed=0, epoch=0, pool=4)
    batches = order.global_batches(perm, bs, drop_last=True)
    assert len(batches) == n // bs and all(len(b) == bs for b in batches)
    assert len({i for b in batches for i in b}) == (n // bs) * bs


def test_batches_have_similar_lengths() -> None:
    lengths = _lengths(2000)
    plain = order.epoch_permutation(2000, seed=0, epoch=0)
    bucketed = order.bucketed_order(lengths, 32, seed=0, epoch=0)
    # within a pool the rows are sorted, so padding nearly vanishes; random batches pad to ~max
    assert _padded(lengths, bucketed, 32) < 0.6 * _padded(lengths, plain, 32)
    spreads = [max(lengths[i] for i in b) - min(lengths[i] for i in b)
               for b in order.global_batches(bucketed, 32, drop_last=True)]
    assert sorted(spreads)[len(spreads) // 2] <= 20


def test_batches_are_shuffled_not_short_to_long() -> None:
    lengths = _lengths(2000)
    perm = order.bucketed_order(lengths, 32, seed=0, epoch=0, pool=1000)  # one pool: fully sorted rows
    maxes = [max(lengths[i] for i in b) for b in order.global_batches(perm, 32, drop_last=True)]
    assert maxes != sorted(maxes)


def test_text_lengths_reads_rows_of_the_named_column() -> None:
    class Rows:
        rows = [{"text": "abc", "q": "a"}, {"text": "", "q": "abcd"}]

    assert order.text_lengths(Rows(), "text") == [3, 0]
    assert order.text_lengths(Rows(), "q") == [1, 4]
    assert order.text_lengths(Rows(), "caption") is None
    assert order.text_lengths(object()) is None


def test_bad_bucketing_arguments_raise() -> None:
    with pytest.raises(TrainingError):
        order.bucketed_order([1, 2, 3], 0, seed=0, epoch=0)


def test_trainer_feeds_the_bucketed_order_and_saves_it(tmp_path) -> None:
    class TextRows(PairSet):
        def __init__(self, n: int) -> None:
            super().__init__(n)
            self.rows = [{"text": "w" * n_chars} for n_chars in _lengths(n, seed=5)]
            self.seen: list[int] = []

        def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
            self.seen.append(i)
            return super().__getitem__(i)

    cfg = RunConfig.model_validate({"data": {"batch_size": 8, "length_bucketing": True},
                                    "train": {"lr": 1e-3, "epochs": 2, "progress": False}})
    torch.manual_seed(0)
    model = TinyDual()
    data = TextRows(64)
    tr = Trainer(cfg, model, info_nce, DataSplit(data, collate), None, tmp_path / "run",
                 apply_strategy(model, cfg.train), {"data": "d", "model": "m"}, [], Accelerator(cpu=True))
    tr.fit()
    lengths = _lengths(64, seed=5)
    assert data.seen == [i for e in range(2) for i in order.bucketed_order(lengths, 8, 0, e)]
    # the checkpoint at the end of epoch 1 holds the order of the epoch it resumes into
    state = ckpt.load_checkpoint(ckpt.step_dir(tr.ckpt_dir, 8), TinyDual())
    assert state["data_order"].tolist() == order.bucketed_order(lengths, 8, 0, 1)


def test_length_bucketing_without_text_is_refused(tmp_path) -> None:
    cfg = RunConfig.model_validate({"data": {"batch_size": 8, "length_bucketing": True}, "train": {"progress": False}})
    model = TinyDual()
    with pytest.raises(TrainingError, match="length_bucketing"):
        Trainer(cfg, model, info_nce, DataSplit(PairSet(16), collate), None, tmp_path / "run",
                apply_strategy(model, cfg.train), {"data": "d", "model": "m"}, [], Accelerator(cpu=True))


@pytest.mark.slow
def test_bucketed_run_killed_mid_epoch_two_resumes_bitwise(tmp_path) -> None:
    """A real `polymodal train` with length bucketing, SIGKILLed mid-accumulation in epoch 2."""
    shapes = make_dataset("shapes", tmp_path / "shapes", n=140, seed=0)
    bucket = "--set=data.length_bucketing=true"
    ref, out = tmp_path / "ref", tmp_path / "run"
    proc = _run(shapes, ref, bucket)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _run(shapes, out, bucket, fault="9:0").returncode == -signal.SIGKILL
    proc = _run(shapes, out, bucket, "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same(ref, out)
    # bucketing reached the CLI run (the test is not vacuous): every order it saved is a bucketed one,
    # never the plain (seed 0, epoch) permutation a run without the flag would have used
    saved = [load_file(str(d / "state.safetensors"))["s.data_order"].tolist()
             for d in sorted((ref / "checkpoints").iterdir()) if (d / "state.safetensors").is_file()]
    assert saved
    for data_order in saved:
        assert all(data_order != order.epoch_permutation(len(data_order), 0, e) for e in range(4))
