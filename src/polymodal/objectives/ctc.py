"""CTC loss for speech recognition (``objective.kind: ctc``): torch's ``ctc_loss`` per clip.

A clip that cannot be aligned to its transcript (fewer frames than the transcript needs: one
per character plus a blank between repeats) gives an infinite loss; ``zero_infinity`` zeroes
it and this objective also leaves it, and any non-finite loss, out of the batch's mean, so
neither inf nor NaN reaches the optimizer. ``ctc_dropped`` counts them. During validation
(no gradient) the greedy character error rate of the batch is reported as ``cer``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from polymodal.errors import ModelError
from polymodal.models.outputs import CTCOutput
from polymodal.objectives.base import Objective, ObjectiveResult


def _greedy_cer(out: CTCOutput, targets: torch.Tensor, lengths: torch.Tensor, vocab: list[str]) -> torch.Tensor:
    import jiwer

    from polymodal.models.ctc_decode import decode

    refs, hyps = [], []
    offset = 0
    for lp, n, tl in zip(out.log_probs, out.lengths.tolist(), lengths.tolist(), strict=True):
        refs.append("".join(vocab[i] for i in targets[offset : offset + tl].tolist()))
        offset += tl
        hyps.append(decode(lp[:n].exp().detach().float().cpu().numpy(), vocab, "greedy"))
    return torch.tensor(float(jiwer.cer(refs, hyps)))


class CTCLoss(Objective):
    validation = ()

    def __init__(self, target: str = "text", zero_infinity: bool = True, vocab: list[str] | None = None) -> None:
        super().__init__()
        self.target, self.zero_infinity, self.vocab = target, zero_infinity, vocab

    def forward(self, outputs: CTCOutput, batch: dict[str, Any]) -> ObjectiveResult:
        if not isinstance(outputs, CTCOutput):
            raise ModelError(f"the ctc objective needs a CTC model's output, got {type(outputs).__name__}")
        tg = batch[self.target]
        targets, lengths, need = tg["targets"], tg["target_lengths"], tg["min_frames"]
        frames = outputs.lengths
        per = F.ctc_loss(outputs.log_probs.transpose(0, 1), targets, frames, lengths, blank=0,
                         reduction="none", zero_infinity=self.zero_infinity)
        # the mean over characters, as ctc_loss's own "mean" reduction does
        per = per / lengths.clamp_min(1).to(per.dtype)
        keep = (need.to(frames.device) <= frames) & torch.isfinite(per)
        if bool(keep.any()):
            loss = per[keep].mean()
        else:  # nothing alignable: a zero that still belongs to the graph, so the step is a no-op
            loss = outputs.log_probs.sum() * 0.0
        metrics = {"ctc": loss.detach(), "ctc_dropped": (~keep).sum().to(torch.float32)}
        if not torch.is_grad_enabled() and self.vocab:
            metrics["cer"] = _greedy_cer(outputs, targets, lengths, self.vocab)
        return ObjectiveResult(loss, metrics)
