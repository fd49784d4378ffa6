"""Contrastive objectives over a DualEncoder's normalised embeddings.

- ``ContrastiveLoss``: CLIP's symmetric InfoNCE. For a pair (a, b) with scale s = exp(t)
  (t clamped at ln 100 by the model): L = 1/2 [CE(s A B^T, I) + CE(s B A^T, I)].
- ``SigLIPLoss``: the pairwise sigmoid loss of Zhai et al. 2023,
  L = -1/|B| sum_i sum_j log sigmoid(z_ij (s a_i.b_j + bias)), z_ij = 1 if i == j else -1.

Under data parallelism each process scores its local rows against the features of every
process (gathered with gradients), with targets offset by rank * local batch size.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import torch
import torch.nn.functional as F

from polymodal.errors import ModelError
from polymodal.models.outputs import EmbeddingOutput
from polymodal.objectives.base import Objective, ObjectiveResult, full_precision, gather_features, world


def _pairs(pairs: list[tuple[str, str]] | None, embeddings: dict[str, torch.Tensor]) -> list[tuple[str, str]]:
    if pairs:
        missing = sorted({m for p in pairs for m in p} - set(embeddings))
        if missing:
            raise ModelError(f"contrastive pairs name {missing}, but the batch only has {sorted(embeddings)}")
        return [tuple(p) for p in pairs]  # type: ignore[misc]
    if len(embeddings) < 2:
        raise ModelError(f"a contrastive loss needs two modalities in the batch, got {sorted(embeddings)}")
    return list(combinations(list(embeddings), 2))


def infonce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, gather_with_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE between row-aligned a and b; also returns the local a->b logits."""
    rank, _ = world()
    all_a, all_b = gather_features(a, gather_with_grad), gather_features(b, gather_with_grad)
    logits_ab = scale * a @ all_b.T
    logits_ba = scale * b @ all_a.T
    target = torch.arange(a.shape[0], device=a.device) + rank * a.shape[0]
    loss = (F.cross_entropy(full_precision(logits_ab), target) + F.cross_entropy(full_precision(logits_ba), target)) / 2
    return loss, logits_ab


def siglip(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, gather_with_grad: bool = True) -> torch.Tensor:
    rank, _ = world()
    all_b = gather_features(b, gather_with_grad)
    logits = full_precision(scale * a @ all_b.T + bias)
    signs = -torch.ones_like(logits)
    idx = torch.arange(a.shape[0], device=a.device)
    signs[idx, idx + rank * a.shape[0]] = 1.0
    return -F.logsigmoid(signs * logits).sum() / a.shape[0]


def _accuracy(logits: torch.Tensor) -> torch.Tensor:
    rank, _ = world()
    target = torch.arange(logits.shape[0], device=logits.device) + rank * logits.shape[0]
    return (logits.argmax(-1) == target).float().mean()


def _embedding_output(outputs: Any, objective: str) -> EmbeddingOutput:
    if not isinstance(outputs, EmbeddingOutput) or outputs.logit_scale is None:
        raise ModelError(f"the {objective} objective needs a dual encoder's output (EmbeddingOutput with a "
                         f"logit scale), got {type(outputs).__name__}")
    return outputs


class ContrastiveLoss(Objective):
    """Symmetric InfoNCE averaged over modality pairs (default: every pair in the batch)."""

    validation = ("retrieval",)

    def __init__(self, pairs: list[tuple[str, str]] | None = None, gather_with_grad: bool = True) -> None:
        super().__init__()
        self.pairs = pairs
        self.gather_with_grad = gather_with_grad

    def forward(self, outputs: Any, batch: dict[str, Any] | None = None) -> ObjectiveResult:
        out = _embedding_output(outputs, "contrastive")
        emb, scale = out.embeddings, out.logit_scale
        assert scale is not None
        losses, metrics = [], {}
        for a, b in _pairs(self.pairs, emb):
            loss, logits = infonce(emb[a], emb[b], scale, self.gather_with_grad)
            losses.append(loss)
            metrics[f"loss_{a}_{b}"] = loss.detach()
            metrics[f"acc_{a}_to_{b}"] = _accuracy(logits.detach())
        total = torch.stack(losses).mean()
        metrics["logit_scale"] = scale.detach()
        return ObjectiveResult(total, metrics)


class SigLIPLoss(Objective):
    """Pairwise sigmoid loss; needs the model's ``logit_bias`` (``build_objective`` adds it)."""

    validation = ("retrieval",)

    def __init__(self, pairs: list[tuple[str, str]] | None = None, gather_with_grad: bool = True) -> None:
        super().__init__()
        self.pairs = pairs
        self.gather_with_grad = gather_with_grad

    def forward(self, outputs: Any, batch: dict[str, Any] | None = None) -> ObjectiveResult:
        out = _embedding_output(outputs, "siglip")
        if out.logit_bias is None:
            raise ModelError("the SigLIP loss needs a model with a logit bias (model.add_logit_bias(), or build_objective)")
        emb, scale, bias = out.embeddings, out.logit_scale, out.logit_bias
        assert scale is not None
        losses, metrics = [], {}
        for a, b in _pairs(self.pairs, emb):
            loss = siglip(emb[a], emb[b], scale, bias, self.gather_with_grad)
            losses.append(loss)
            metrics[f"loss_{a}_{b}"] = loss.detach()
        metrics["logit_scale"] = scale.detach()
        metrics["logit_bias"] = bias.detach()
        return ObjectiveResult(torch.stack(losses).mean(), metrics)
