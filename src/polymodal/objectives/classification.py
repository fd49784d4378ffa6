"""Supervised losses per head: cross-entropy (label smoothing), BCE multi-label, MSE regression.

Missing labels are skipped: a negative class index (single-label) or NaN targets
(multi-label, regression) do not count towards the loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from polymodal.errors import ModelError
from polymodal.models.outputs import ClassifierOutput
from polymodal.objectives.base import Objective, ObjectiveResult, full_precision


def head_loss(kind: str, logits: torch.Tensor, target: Any, label_smoothing: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss + metrics of one head; ``kind`` is classification | multilabel | regression."""
    target = torch.as_tensor(target, device=logits.device)
    logits = full_precision(logits)
    if kind == "classification":
        target = target.long()
        keep = target >= 0
        if not bool(keep.any()):
            return logits.sum() * 0.0, {}
        loss = F.cross_entropy(logits[keep], target[keep], label_smoothing=label_smoothing)
        acc = (logits[keep].detach().argmax(-1) == target[keep]).float().mean()
        return loss, {"acc": acc}
    target = target.to(logits.dtype)
    target = target.view_as(logits) if target.numel() == logits.numel() else target
    keep = ~torch.isnan(target)
    if not bool(keep.any()):
        return logits.sum() * 0.0, {}
    if kind == "multilabel":
        loss = F.binary_cross_entropy_with_logits(logits[keep], target[keep])
        acc = ((logits[keep].detach() > 0).float() == target[keep]).float().mean()
        return loss, {"label_acc": acc}
    if kind == "regression":
        loss = F.mse_loss(logits[keep], target[keep])
        return loss, {"mae": (logits[keep].detach() - target[keep]).abs().mean()}
    raise ModelError(f"unknown head kind {kind!r}")


def classifier_output(outputs: Any, objective: str) -> ClassifierOutput:
    if not isinstance(outputs, ClassifierOutput):
        raise ModelError(f"the {objective} objective needs a model with heads (ClassifierOutput), "
                         f"got {type(outputs).__name__}")
    return outputs


class ClassificationLoss(Objective):
    """Sum of the per-head losses (one head: plain CE / BCE / MSE)."""

    validation = ("classification",)

    def __init__(self, kinds: dict[str, str], label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.kinds = dict(kinds)
        self.label_smoothing = label_smoothing

    def per_head(self, outputs: Any, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        logits = classifier_output(outputs, "classification").logits
        losses: dict[str, torch.Tensor] = {}
        metrics: dict[str, torch.Tensor] = {}
        for col, kind in self.kinds.items():
            if col not in batch:
                raise ModelError(f"the batch has no labels for head {col!r} (columns: {sorted(k for k in batch if k != 'id')})")
            loss, m = head_loss(kind, logits[col], batch[col], self.label_smoothing)
            losses[col] = loss
            metrics[f"loss_{col}"] = loss.detach()
            metrics.update({f"{k}_{col}": v for k, v in m.items()})
        return losses, metrics

    def forward(self, outputs: Any, batch: dict[str, Any]) -> ObjectiveResult:
        losses, metrics = self.per_head(outputs, batch)
        return ObjectiveResult(torch.stack(list(losses.values())).sum(), metrics)
