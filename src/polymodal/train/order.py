"""The data order: a pure function of (seed, epoch), so a resumed run sees the same batches.

The permutation is drawn from a private ``torch.Generator`` -- never from the global RNG,
whose state belongs to dropout/augmentation and is checkpointed separately. Each global
batch is cut into equal contiguous shards, one per process, so N processes with batch B/N
see exactly the rows one process with batch B sees.
"""

from __future__ import annotations

import torch

from polymodal.errors import TrainingError


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 17) % (2**63 - 1)


def epoch_permutation(n: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    if not shuffle:
        return list(range(n))
    g = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=g).tolist()


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
