"""Teacher-forced cross-entropy for a captioning model's decoder.

Each position predicts the next token of the reference text; ``CaptionOutput.targets`` is -100
where nothing is predicted (padding, a question's own tokens), which ``cross_entropy`` skips.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from polymodal.errors import TrainingError
from polymodal.models.outputs import CaptionOutput
from polymodal.objectives.base import Objective, ObjectiveResult, full_precision


class CaptioningLoss(Objective):
    """Mean cross-entropy over target tokens; metrics ``token_acc`` and ``perplexity``."""

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = float(label_smoothing)

    def forward(self, outputs: CaptionOutput, batch: dict[str, Any]) -> ObjectiveResult:
        if not isinstance(outputs, CaptionOutput):
            raise TrainingError(f"the captioning objective needs a CaptionOutput, got {type(outputs).__name__} "
                                "(model.kind: captioner)")
        logits = full_precision(outputs.logits).flatten(0, 1)
        targets = outputs.targets.flatten()
        loss = F.cross_entropy(logits, targets, ignore_index=-100, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            seen = targets != -100
            hits = (logits.argmax(-1) == targets) & seen
            acc = hits.sum() / seen.sum().clamp(min=1)
            plain = F.cross_entropy(logits, targets, ignore_index=-100) if self.label_smoothing else loss.detach()
        return ObjectiveResult(loss, {"token_acc": acc, "perplexity": plain.exp()})
