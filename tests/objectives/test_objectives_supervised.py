"""Classification / multi-label / regression, multi-task weighting and distillation losses."""

from __future__ import annotations

import math

import pytest
import torch

from polymodal.models.outputs import ClassifierOutput
from polymodal.objectives import ClassificationLoss, DistillationLoss, MultiTaskLoss
from polymodal.objectives.distill import kl_soft


def test_label_smoothing_cross_entropy_matches_formula() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 1, -1])  # the last row has no label and is skipped
    eps = 0.1
    res = ClassificationLoss({"label": "classification"}, eps)(ClassifierOutput({"label": logits}), {"label": y})
    logp = torch.log_softmax(logits[:5], -1)
    # smoothed target: (1 - eps) on the class + eps / C spread over all classes
    target = torch.full((5, 4), eps / 4, dtype=torch.float64)
    target[torch.arange(5), y[:5]] += 1 - eps
    expected = -(target * logp).sum(-1).mean()
    torch.testing.assert_close(res.loss, expected)
    assert float(res.metrics["acc_label"]) == pytest.approx(float((logits[:5].argmax(-1) == y[:5]).double().mean()))


def test_bce_and_mse_match_formulas_and_skip_nan() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    tags = torch.tensor([[1.0, 0.0], [float("nan"), 1.0]])
    pred = torch.tensor([0.5, 2.0])
    score = torch.tensor([1.0, float("nan")])
    loss = ClassificationLoss({"tags": "multilabel", "score": "regression"})
    res = loss(ClassifierOutput({"tags": logits, "score": pred}), {"tags": tags, "score": score})
    p = torch.sigmoid(torch.tensor([2.0, -1.0, 0.0]))
    t = torch.tensor([1.0, 0.0, 1.0])
    bce = -(t * p.log() + (1 - t) * (1 - p).log()).mean()
    mse = (0.5 - 1.0) ** 2
    torch.testing.assert_close(res.loss, bce + mse)
    assert float(res.metrics["loss_score"]) == pytest.approx(mse)


def test_uncertainty_weighting_follows_kendall() -> None:
    kinds = {"c": "classification", "r": "regression"}
    mt = MultiTaskLoss(kinds, weighting="uncertainty")
    with torch.no_grad():
        mt.log_vars["c"].fill_(0.3)
        mt.log_vars["r"].fill_(-0.2)
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    outputs = ClassifierOutput({"c": logits, "r": torch.tensor([0.0, 1.0])})
    batch = {"c": torch.tensor([0, 0]), "r": torch.tensor([1.0, 1.0])}
    res = mt(outputs, batch)
    ce = torch.nn.functional.cross_entropy(logits, batch["c"])
    mse = torch.tensor(0.5)
    expected = math.exp(-0.3) * ce + 0.15 + 0.5 * math.exp(0.2) * mse - 0.1
    torch.testing.assert_close(res.loss, expected)
    res.loss.backward()
    assert mt.log_vars["c"].grad is not None


def test_fixed_weights() -> None:
    mt = MultiTaskLoss({"a": "regression", "b": "regression"}, weights={"a": 3.0})
    res = mt(ClassifierOutput({"a": torch.tensor([1.0]), "b": torch.tensor([2.0])}), {"a": torch.tensor([0.0]), "b": torch.tensor([0.0])})
    torch.testing.assert_close(res.loss, torch.tensor(3.0 * 1.0 + 4.0))


def test_distillation_kl_and_mix() -> None:
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(4, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    T = 2.0
    pt, ps = torch.softmax(t / T, -1), torch.softmax(s / T, -1)
    expected_kl = (pt * (pt.log() - ps.log())).sum(-1).mean() * T * T
    torch.testing.assert_close(kl_soft(s, t, T), expected_kl)
    assert kl_soft(t, t, T).abs() < 1e-12

    class Teacher(torch.nn.Module):
        def forward(self, batch):  # type: ignore[no-untyped-def]
            return ClassifierOutput({"label": t})

    y = torch.tensor([0, 1, 2, 3])
    loss = DistillationLoss(Teacher(), ClassificationLoss({"label": "classification"}), T, alpha=0.25)
    res = loss(ClassifierOutput({"label": s}), {"label": y})
    ce = torch.nn.functional.cross_entropy(s, y)
    torch.testing.assert_close(res.loss, 0.25 * expected_kl + 0.75 * ce)
    # precomputed teacher logits in the batch give the same loss without a teacher model
    res2 = DistillationLoss(None, ClassificationLoss({"label": "classification"}), T, 0.25)(
        ClassifierOutput({"label": s}), {"label": y, "teacher_logits": {"label": t}})
    torch.testing.assert_close(res2.loss, res.loss)
