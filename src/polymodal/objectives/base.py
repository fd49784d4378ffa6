"""What every objective returns, and the cross-process gather the contrastive losses share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class ObjectiveResult:
    """The loss and the step's metrics, all tensors: turning them into Python numbers is the
    caller's choice (the trainer does it only when it logs, so a GPU step never waits on it)."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    """Base of the objectives: ``forward(outputs, batch) -> ObjectiveResult``.

    ``validation`` declares what the trainer measures on the validation split besides the loss
    and the objective's own metrics: ``"retrieval"`` (in-batch recall@1 between the
    ``EmbeddingOutput``'s modalities) and/or ``"classification"`` (accuracy and macro-F1 per
    head of a ``ClassifierOutput``).
    """

    validation: ClassVar[tuple[str, ...]] = ()

    def forward(self, outputs: Any, batch: dict[str, Any]) -> ObjectiveResult:  # pragma: no cover - interface
        raise NotImplementedError


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """Half-precision (bf16/fp16) values are upcast for a loss; float32/float64 stay as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) when torch.distributed is not in use."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_features(x: torch.Tensor, with_grad: bool = True) -> torch.Tensor:
    """All processes' features concatenated in rank order; identity in one process.

    ``with_grad`` uses the autograd-aware all_gather, so the gradient of every process's loss
    flows back to the shard each process owns. Without it, the gathered copies are constants
    and the local shard is put back in place so it still receives its own gradient.
    Every process must pass the same batch size (the trainer drops uneven last batches).
    """
    rank, size = world()
    if size == 1:
        return x
    if with_grad:
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(x), 0)
    parts = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(parts, x.detach())
    parts[rank] = x
    return torch.cat(parts, 0)
