"""Knowledge distillation (Hinton et al. 2015): KL(teacher || student) on softened logits.

L = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * base loss.
For FusionModels the logits are each head's; for dual encoders they are the in-batch
similarity logits of every modality pair (so a small student learns a big model's ranking).
The teacher sees the same batch: it must share the student's preprocessing (the same
towers' processors), or the batch may carry precomputed ``teacher_logits``.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.outputs import ClassifierOutput, EmbeddingOutput
from polymodal.objectives.base import Objective, ObjectiveResult, full_precision


def kl_soft(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    t = temperature
    student, teacher = full_precision(student), full_precision(teacher)
    return F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1),
                    reduction="batchmean", log_target=True) * t * t


def _logit_sets(outputs: Any) -> dict[str, torch.Tensor]:
    """Heads' logits of a ClassifierOutput; pairwise similarity logits of an EmbeddingOutput."""
    if isinstance(outputs, ClassifierOutput):
        return {k: v for k, v in outputs.logits.items() if v.dim() == 2}
    if isinstance(outputs, EmbeddingOutput):
        emb = outputs.embeddings
        scale = outputs.logit_scale if outputs.logit_scale is not None else torch.tensor(1.0)
        return {f"{a}_{b}": scale * emb[a] @ emb[b].T for a, b in combinations(list(emb), 2)}
    raise ModelError(f"distillation needs a ClassifierOutput or an EmbeddingOutput, got {type(outputs).__name__}")


class DistillationLoss(Objective):
    def __init__(self, teacher: nn.Module | None, base: nn.Module | None, temperature: float = 2.0, alpha: float = 0.5) -> None:
        super().__init__()
        # the teacher is frozen and kept out of this module's parameters (not optimised, not saved)
        self._teacher = [teacher.eval().requires_grad_(False)] if teacher is not None else []
        self.base = base
        self.temperature = temperature
        self.alpha = alpha

    @property
    def validation(self) -> tuple[str, ...]:  # type: ignore[override]
        # validated as the student's own loss is (classification heads, or retrieval)
        return tuple(getattr(self.base, "validation", ()))

    def forward(self, outputs: Any, batch: dict[str, Any]) -> ObjectiveResult:
        if "teacher_logits" in batch:
            teacher_sets = dict(batch["teacher_logits"])
        else:
            with torch.no_grad():
                teacher_sets = _logit_sets(self._teacher[0](batch))
        student_sets = _logit_sets(outputs)
        kls = {k: kl_soft(student_sets[k], teacher_sets[k], self.temperature) for k in student_sets if k in teacher_sets}
        kd = torch.stack(list(kls.values())).mean()
        metrics = {f"kd_{k}": v.detach() for k, v in kls.items()}
        loss = self.alpha * kd
        if self.base is not None and self.alpha < 1.0:
            base = self.base(outputs, batch)
            loss = loss + (1.0 - self.alpha) * base.loss
            metrics.update(base.metrics)
        return ObjectiveResult(loss, metrics)
