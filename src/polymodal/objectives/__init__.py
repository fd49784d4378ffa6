"""Objectives: ``objective(outputs, batch) -> ObjectiveResult(loss, metrics)``.

Objectives are ``nn.Module``s; some own parameters (uncertainty weights), so the trainer
builds the objective before the optimizer and optimises ``objective.parameters()`` too.
Each built-in kind is registered below with one visible call; see ``registry.py`` for adding one.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from polymodal.config import (
    CaptioningConfig,
    ClassificationConfig,
    ContrastiveConfig,
    CTCConfig,
    DiffusionConfig,
    DistillConfig,
    EmbedDistillConfig,
    MaskedLMConfig,
    MultiTaskConfig,
    SiglipConfig,
    SimCLRConfig,
    SwapContrastiveConfig,
)
from polymodal.errors import ModelError
from polymodal.objectives.base import Objective, ObjectiveResult, gather_features
from polymodal.objectives.captioning import CaptioningLoss
from polymodal.objectives.classification import ClassificationLoss
from polymodal.objectives.contrastive import ContrastiveLoss, SigLIPLoss
from polymodal.objectives.ctc import CTCLoss
from polymodal.objectives.diffusion import DiffusionLoss
from polymodal.objectives.distill import DistillationLoss
from polymodal.objectives.embed_distill import EmbedDistillLoss, load_targets
from polymodal.objectives.multitask import MultiTaskLoss
from polymodal.objectives.registry import (
    OBJECTIVES,
    ObjectiveKind,
    build_objective,
    objective_kind,
    register_objective,
)
from polymodal.objectives.self_supervised import MaskedLMLoss, SimCLRLoss
from polymodal.objectives.swap_contrastive import SwapContrastiveLoss

__all__ = [
    "OBJECTIVES", "CTCLoss", "CaptioningLoss", "ClassificationLoss", "ContrastiveLoss", "DiffusionLoss",
    "DistillationLoss",
    "EmbedDistillLoss", "MaskedLMLoss", "MultiTaskLoss", "Objective", "ObjectiveKind", "ObjectiveResult",
    "SigLIPLoss", "SimCLRLoss", "SwapContrastiveLoss", "build_objective", "gather_features", "objective_kind",
    "register_objective",
]


def _head_kinds(model: nn.Module) -> dict[str, str]:
    heads = getattr(model, "heads", None)
    if not heads:
        raise ModelError("a classification/multitask objective needs a model with heads (model.kind: fusion or classifier)")
    return {col: str(h.kind) for col, h in heads.items()}


def _needs_dual(model: nn.Module, kind: str) -> None:
    if not hasattr(model, "logit_scale"):
        raise ModelError(f"the {kind} objective needs a dual encoder (model.kind: dual)")


def _pairs(cfg: Any) -> list[tuple[str, str]] | None:
    return [tuple(p) for p in cfg.pairs] if cfg.pairs else None  # type: ignore[misc]


def _contrastive(cfg: ContrastiveConfig, model: nn.Module, _labels: Any) -> nn.Module:
    _needs_dual(model, "contrastive")
    return ContrastiveLoss(_pairs(cfg), cfg.gather_with_grad)


def _swap_contrastive(cfg: SwapContrastiveConfig, model: nn.Module, _labels: Any) -> nn.Module:
    _needs_dual(model, "swap-contrastive")
    return SwapContrastiveLoss(model, cfg.swap_words, _pairs(cfg), cfg.text_modality, cfg.gather_with_grad)


def _siglip(cfg: SiglipConfig, model: nn.Module, _labels: Any) -> nn.Module:
    _needs_dual(model, "siglip")
    if getattr(model, "logit_bias", None) is None:
        model.add_logit_bias(-10.0)  # type: ignore[operator]  # SigLIP paper's init
    return SigLIPLoss(_pairs(cfg), cfg.gather_with_grad)


def _classification(cfg: ClassificationConfig, model: nn.Module, _labels: Any) -> nn.Module:
    return ClassificationLoss(_head_kinds(model), cfg.label_smoothing)


def _multitask(cfg: MultiTaskConfig, model: nn.Module, _labels: Any) -> nn.Module:
    return MultiTaskLoss(_head_kinds(model), cfg.task_weights, cfg.weighting, cfg.label_smoothing)


def _distill(cfg: DistillConfig, model: nn.Module, _labels: Any) -> nn.Module:
    if not cfg.teacher:
        raise ModelError("objective.teacher must name the teacher model (preset, folder or run dir)")
    from polymodal.models.loading import load_model

    teacher = load_model(cfg.teacher)
    base: Any = (ClassificationLoss(_head_kinds(model), cfg.label_smoothing) if getattr(model, "heads", None)
                 else ContrastiveLoss(_pairs(cfg), cfg.gather_with_grad))
    return DistillationLoss(teacher, base, cfg.distill_temperature, cfg.distill_alpha)


def _embed_distill(cfg: EmbedDistillConfig, model: nn.Module, _labels: Any) -> nn.Module:
    if not cfg.targets:
        raise ModelError("objective.targets must name the teacher's embeddings file (polymodal compress --method "
                         "distill writes one)")
    if not hasattr(model, "towers"):
        raise ModelError("the embed-distill objective needs an embedding model (model.kind: dual)")
    return EmbedDistillLoss(load_targets(cfg.targets), cfg.embedding_weight, cfg.similarity_weight,
                            cfg.similarity_temperature)


def _ctc(cfg: CTCConfig, model: nn.Module, _labels: Any) -> nn.Module:
    vocab = getattr(model, "vocab", None)
    if not vocab:
        raise ModelError("the ctc objective needs a CTC model (model.kind: ctc)")
    return CTCLoss(str(getattr(model, "target", "text")), cfg.zero_infinity, list(vocab))


def _simclr(cfg: SimCLRConfig, model: nn.Module, _labels: Any) -> nn.Module:
    tower_of = getattr(model, "tower", None)
    if not callable(tower_of):
        raise ModelError("the simclr objective needs a model with towers (model.kind: embedding or dual)")
    in_dim = int(tower_of(cfg.modality).output_dim)
    return SimCLRLoss(cfg.modality, in_dim, cfg.hidden_dim, cfg.projection_dim, cfg.temperature)


def _mlm(cfg: MaskedLMConfig, model: nn.Module, _labels: Any) -> nn.Module:
    return MaskedLMLoss(model, cfg.mlm_probability)


def _captioning(cfg: CaptioningConfig, model: nn.Module, _labels: Any) -> nn.Module:
    if not callable(getattr(model, "generate", None)) or "text" not in getattr(model, "towers", {}):
        raise ModelError("the captioning objective needs a captioning model (model.kind: captioner)")
    return CaptioningLoss(cfg.label_smoothing)


def _diffusion(_cfg: DiffusionConfig, model: nn.Module, _labels: Any) -> nn.Module:
    if not callable(getattr(model, "denoise", None)):
        raise ModelError("the diffusion objective needs a text-to-image model (model.kind: text-to-image)")
    return DiffusionLoss()


register_objective("contrastive", _contrastive, ContrastiveConfig, uses_labels=False)  # type: ignore[arg-type]
register_objective("swap-contrastive", _swap_contrastive, SwapContrastiveConfig,  # type: ignore[arg-type]
                   uses_labels=False)
register_objective("siglip", _siglip, SiglipConfig, uses_labels=False)  # type: ignore[arg-type]
register_objective("classification", _classification, ClassificationConfig, uses_labels=True)  # type: ignore[arg-type]
register_objective("multitask", _multitask, MultiTaskConfig, uses_labels=True)  # type: ignore[arg-type]
register_objective("distill", _distill, DistillConfig, uses_labels=True)  # type: ignore[arg-type]
register_objective("ctc", _ctc, CTCConfig, uses_labels=False)  # type: ignore[arg-type]
register_objective("embed-distill", _embed_distill, EmbedDistillConfig, uses_labels=False)  # type: ignore[arg-type]
register_objective("simclr", _simclr, SimCLRConfig, uses_labels=False)  # type: ignore[arg-type]
register_objective("mlm", _mlm, MaskedLMConfig, uses_labels=False)  # type: ignore[arg-type]
register_objective("captioning", _captioning, CaptioningConfig, uses_labels=False)  # type: ignore[arg-type]
register_objective("diffusion", _diffusion, DiffusionConfig, uses_labels=False)  # type: ignore[arg-type]
