"""The ctc objective: torch's CTC loss per clip, with what cannot be aligned kept from the optimizer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from polymodal.models.outputs import CTCOutput
from polymodal.objectives.ctc import CTCLoss

VOCAB = ["<blank>", " ", "a", "b"]


def _batch(texts: list[str]) -> dict[str, dict[str, torch.Tensor]]:
    index = {c: i for i, c in enumerate(VOCAB)}
    ids = [index[c] for t in texts for c in t]
    need = [len(t) + sum(a == b for a, b in zip(t, t[1:], strict=False)) for t in texts]
    return {"text": {"targets": torch.tensor(ids), "target_lengths": torch.tensor([len(t) for t in texts]),
                     "min_frames": torch.tensor(need)}}


def _output(frames: list[int], seed: int = 0) -> tuple[CTCOutput, torch.Tensor]:
    torch.manual_seed(seed)
    logits = torch.randn(len(frames), max(frames), len(VOCAB), requires_grad=True)
    return CTCOutput(logits.log_softmax(-1), torch.tensor(frames)), logits


def test_alignable_batch_equals_torch_ctc_mean() -> None:
    out, _ = _output([6, 5])
    batch = _batch(["ab", "ba a"])
    res = CTCLoss(vocab=VOCAB)(out, batch)
    tg = batch["text"]
    want = F.ctc_loss(out.log_probs.transpose(0, 1), tg["targets"], out.lengths, tg["target_lengths"],
                      reduction="mean")
    assert torch.allclose(res.loss, want, atol=1e-6)
    assert float(res.metrics["ctc_dropped"]) == 0.0


def test_a_transcript_longer_than_its_frames_never_reaches_the_optimizer() -> None:
    # "aa" needs 3 frames (a, blank, a); the second clip has 2: torch alone gives inf
    out, logits = _output([6, 2])
    batch = _batch(["ab", "aa"])
    tg = batch["text"]
    raw = F.ctc_loss(out.log_probs.transpose(0, 1), tg["targets"], out.lengths, tg["target_lengths"], reduction="none")
    assert math.isinf(float(raw[1].detach()))
    res = CTCLoss(vocab=VOCAB)(out, batch)
    assert torch.isfinite(res.loss)
    assert float(res.metrics["ctc_dropped"]) == 1.0
    alone = F.ctc_loss(out.log_probs[:1].transpose(0, 1), tg["targets"][:2], out.lengths[:1], tg["target_lengths"][:1])
    assert torch.allclose(res.loss, alone, atol=1e-6)
    res.loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert float(logits.grad[1].abs().sum()) == 0.0  # the unalignable clip gives no gradient


def test_a_batch_with_nothing_alignable_is_a_finite_no_op() -> None:
    out, logits = _output([1, 1])
    res = CTCLoss(vocab=VOCAB)(out, _batch(["ab", "ba"]))
    assert float(res.loss.detach()) == 0.0 and float(res.metrics["ctc_dropped"]) == 2.0
    res.loss.backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) == 0.0


def test_nan_frames_are_left_out() -> None:
    out, _ = _output([4, 4])
    poisoned = out.log_probs.detach().clone()
    poisoned[1, 0, 0] = float("nan")
    res = CTCLoss(vocab=VOCAB, zero_infinity=True)(CTCOutput(poisoned, out.lengths), _batch(["ab", "ab"]))
    assert torch.isfinite(res.loss) and float(res.metrics["ctc_dropped"]) == 1.0


def test_validation_reports_the_greedy_cer() -> None:
    # frames spelling "ab" exactly: a, blank, b
    probs = torch.full((1, 3, len(VOCAB)), 1e-4)
    for t, k in enumerate([2, 0, 3]):
        probs[0, t, k] = 1.0
    out = CTCOutput(probs.log_softmax(-1), torch.tensor([3]))
    with torch.no_grad():
        right = CTCLoss(vocab=VOCAB)(out, _batch(["ab"]))
        wrong = CTCLoss(vocab=VOCAB)(out, _batch(["ba"]))
    assert float(right.metrics["cer"]) == 0.0
    assert float(wrong.metrics["cer"]) == pytest.approx(1.0)
    assert "cer" not in CTCLoss(vocab=VOCAB)(out, _batch(["ab"])).metrics  # not while training
