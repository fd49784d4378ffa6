"""The denoising objective of a text-to-image model: mean squared error between the noise its
UNet predicts for a noised image and the noise that was added (DDPM's simple loss)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from polymodal.errors import TrainingError
from polymodal.models.outputs import DiffusionOutput
from polymodal.objectives.base import Objective, ObjectiveResult, full_precision


class DiffusionLoss(Objective):
    """MSE over every folded pixel; metric ``noise_mse`` (so ``val/loss`` is the same number)."""

    def forward(self, outputs: DiffusionOutput, batch: dict[str, Any]) -> ObjectiveResult:
        if not isinstance(outputs, DiffusionOutput):
            raise TrainingError(f"the diffusion objective needs a DiffusionOutput, got {type(outputs).__name__} "
                                "(model.kind: text-to-image)")
        loss = F.mse_loss(full_precision(outputs.prediction), outputs.target.float())
        return ObjectiveResult(loss, {"noise_mse": loss.detach()})
