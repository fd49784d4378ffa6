"""Weighted multi-task sum over heads: fixed weights, or uncertainty weighting.

Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018) learns s_c = log sigma_c^2 per
task: regression terms become 1/2 exp(-s) L + 1/2 s, classification terms exp(-s) L + 1/2 s.
The s_c are parameters of this objective, so the optimizer must include
``objective.parameters()``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from polymodal.errors import ModelError
from polymodal.objectives.base import Objective, ObjectiveResult
from polymodal.objectives.classification import ClassificationLoss


class MultiTaskLoss(Objective):
    validation = ("classification",)

    def __init__(self, kinds: dict[str, str], weights: dict[str, float] | None = None, weighting: str = "fixed",
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        unknown = sorted(set(weights or {}) - set(kinds))
        if unknown:
            raise ModelError(f"task_weights name {unknown}, but the heads are {sorted(kinds)}")
        self.base = ClassificationLoss(kinds, label_smoothing)
        self.kinds = dict(kinds)
        self.weights = {c: float((weights or {}).get(c, 1.0)) for c in kinds}
        self.weighting = weighting
        if weighting == "uncertainty":
            self.log_vars = nn.ParameterDict({c: nn.Parameter(torch.zeros(())) for c in kinds})
        elif weighting != "fixed":
            raise ModelError(f"unknown multi-task weighting {weighting!r} (fixed, uncertainty)")

    def forward(self, outputs: Any, batch: dict[str, Any]) -> ObjectiveResult:
        losses, metrics = self.base.per_head(outputs, batch)
        terms = []
        for col, loss in losses.items():
            if self.weighting == "uncertainty":
                s = self.log_vars[col]
                factor = 0.5 if self.kinds[col] == "regression" else 1.0
                terms.append(factor * torch.exp(-s) * loss + 0.5 * s)
                metrics[f"weight_{col}"] = factor * torch.exp(-s.detach())
            else:
                terms.append(self.weights[col] * loss)
        return ObjectiveResult(torch.stack(terms).sum(), metrics)
