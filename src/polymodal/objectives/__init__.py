"""Objectives: ``objective(outputs, batch) -> ObjectiveResult(loss, metrics)``.

Objectives are ``nn.Module``s; some own parameters (uncertainty weights), so the trainer
builds the objective before the optimizer and optimises ``objective.parameters()`` too.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from polymodal.config import ObjectiveConfig
from polymodal.errors import ModelError
from polymodal.objectives.base import ObjectiveResult, gather_features
from polymodal.objectives.classification import ClassificationLoss
from polymodal.objectives.contrastive import ContrastiveLoss, SigLIPLoss
from polymodal.objectives.distill import DistillationLoss
from polymodal.objectives.multitask import MultiTaskLoss

__all__ = [
    "ClassificationLoss", "ContrastiveLoss", "DistillationLoss", "MultiTaskLoss", "ObjectiveResult",
    "SigLIPLoss", "build_objective", "gather_features",
]


def _head_kinds(model: nn.Module) -> dict[str, str]:
    heads = getattr(model, "heads", None)
    if not heads:
        raise ModelError("a classification/multitask objective needs a model with heads (model.kind: fusion or classifier)")
    return {col: str(h.kind) for col, h in heads.items()}


def build_objective(objective_cfg: ObjectiveConfig, model: nn.Module, label_spaces: dict[str, list[str]] | None = None) -> nn.Module:
    """The objective a run config asks for, checked against the model it will train.

    For ``siglip`` this adds the learnable logit bias to a DualEncoder that lacks one, so call
    it before building the optimizer.
    """
    cfg = objective_cfg
    pairs = [tuple(p) for p in cfg.pairs] if cfg.pairs else None
    if cfg.kind in ("contrastive", "siglip"):
        if not hasattr(model, "logit_scale"):
            raise ModelError(f"the {cfg.kind} objective needs a dual encoder (model.kind: dual)")
        if cfg.kind == "contrastive":
            return ContrastiveLoss(pairs, cfg.gather_with_grad)  # type: ignore[arg-type]
        if getattr(model, "logit_bias", None) is None:
            model.add_logit_bias(-10.0)  # type: ignore[operator]  # SigLIP paper's init
        return SigLIPLoss(pairs, cfg.gather_with_grad)  # type: ignore[arg-type]
    if cfg.kind == "classification":
        return ClassificationLoss(_head_kinds(model), cfg.label_smoothing)
    if cfg.kind == "multitask":
        return MultiTaskLoss(_head_kinds(model), cfg.task_weights, cfg.weighting, cfg.label_smoothing)
    if cfg.kind == "distill":
        if not cfg.teacher:
            raise ModelError("objective.teacher must name the teacher model (preset, folder or run dir)")
        from polymodal.models.loading import load_model

        teacher = load_model(cfg.teacher)
        base: Any = (
            ClassificationLoss(_head_kinds(model), cfg.label_smoothing) if getattr(model, "heads", None)
            else ContrastiveLoss(pairs, cfg.gather_with_grad)  # type: ignore[arg-type]
        )
        return DistillationLoss(teacher, base, cfg.distill_temperature, cfg.distill_alpha)
    raise ModelError(f"unknown objective kind {cfg.kind!r}")
