"""The denoising objective of a text-to-image model: mean squared error between what its UNet
predicts for a noised image (the noise, the velocity or the clean image) and the truth (DDPM's simple
loss), each row weighed by the model's min-SNR weight when it gives one."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from polymodal.errors import TrainingError
from polymodal.models.outputs import DiffusionOutput
from polymodal.objectives.base import Objective, ObjectiveResult, full_precision


class DiffusionLoss(Objective):
    """MSE over every folded pixel, rows weighed by ``outputs.weight``; metrics ``noise_mse`` (the unweighted
    MSE of the prediction, whichever target it is) and, when weighed, ``weighted_mse`` (the loss)."""

    def forward(self, outputs: DiffusionOutput, batch: dict[str, Any]) -> ObjectiveResult:
        if not isinstance(outputs, DiffusionOutput):
            raise TrainingError(f"the diffusion objective needs a DiffusionOutput, got {type(outputs).__name__} "
                                "(model.kind: text-to-image)")
        per_row = F.mse_loss(full_precision(outputs.prediction), outputs.target.float(), reduction="none")
        per_row = per_row.flatten(1).mean(1)
        plain = per_row.mean()
        if outputs.weight is None:
            return ObjectiveResult(plain, {"noise_mse": plain.detach()})
        loss = (per_row * outputs.weight.float()).mean()
        return ObjectiveResult(loss, {"noise_mse": plain.detach(), "weighted_mse": loss.detach()})
