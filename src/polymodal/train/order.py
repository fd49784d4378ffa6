"""The data order: a pure function of (seed, epoch), so a resumed run sees the same batches.

The permutation is drawn from a private ``torch.Generator`` -- never from the global RNG,
whose state belongs to dropout/augmentation and is checkpointed separately. Each global
batch is cut into equal contiguous shards, one per process, so N processes with batch B/N
see exactly the rows one process with batch B sees.

Length bucketing (``data.length_bucketing``) is still one flat permutation -- the thing a
checkpoint saves and a resumed run replays -- just arranged so that consecutive cuts of
``batch_size`` rows hold texts of similar length: the (seed, epoch) permutation is cut into
pools of ``pool`` batches, each pool is sorted by length and cut into batches, and the full
batches are shuffled (so the epoch does not run short-to-long). The one short batch, if any,
goes last, where ``drop_last`` removes it as it would without bucketing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from polymodal.errors import TrainingError


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 17) % (2**63 - 1)


def epoch_permutation(n: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    if not shuffle:
        return list(range(n))
    g = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=g).tolist()


def bucketed_order(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, pool: int = 50) -> list[int]:
    """A permutation of ``range(len(lengths))`` whose ``batch_size`` cuts group similar lengths.

    A pure function of (lengths, batch_size, seed, epoch, pool). Pools bound how far a row can
    move from its random position, so which rows meet in a batch still varies by epoch.
    """
    if batch_size < 1 or pool < 1:
        raise TrainingError(f"bucketing needs batch_size >= 1 and pool >= 1 (got {batch_size}, {pool})")
    perm = epoch_permutation(len(lengths), seed, epoch)
    span = batch_size * pool
    full: list[list[int]] = []
    tail: list[int] = []
    for start in range(0, len(perm), span):
        # sorted() is stable: equal lengths keep their random order
        chunk = sorted(perm[start:start + span], key=lambda i: lengths[i])
        for j in range(0, len(chunk), batch_size):
            piece = chunk[j:j + batch_size]
            if len(piece) == batch_size:
                full.append(piece)
            else:
                tail.extend(piece)
    # a second stream for the batch shuffle, distinct from the row permutation's
    g = torch.Generator().manual_seed(epoch_seed(seed, epoch) ^ 0x5DEECE66D)
    return [i for k in torch.randperm(len(full), generator=g).tolist() for i in full[k]] + tail


def text_lengths(dataset: Any, column: str = "text") -> list[int] | None:
    """Per-row text length in characters (a cheap proxy for tokens), or None without text rows.

    Reads the dataset's ``rows`` (the manifest rows, so no sample is loaded or tokenized).
    """
    rows = getattr(dataset, "rows", None)
    if rows is None:
        return None
    lengths = [len(str(r.get(column) or "")) if isinstance(r, dict) else 0 for r in rows]
    return lengths if any(lengths) else None


def global_batches(order: list[int], batch_size: int, drop_last: bool) -> list[list[int]]:
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def shard(batch: list[int], rank: int, world: int) -> list[int]:
    """This process's contiguous share of a global batch (sizes must divide evenly)."""
    if len(batch) % world:
        raise TrainingError(f"a batch of {len(batch)} rows cannot be split evenly over {world} processes")
    per = len(batch) // world
    return batch[rank * per:(rank + 1) * per]


def optimizer_steps(batches: list[list[int]], grad_accum: int) -> list[list[list[int]]]:
    """Group micro-batches into optimizer steps; the last group of an epoch may be shorter."""
    return [batches[i:i + grad_accum] for i in range(0, len(batches), grad_accum)]


class ListBatchSampler:
    """A batch sampler over fixed index lists (what the DataLoader iterates)."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
