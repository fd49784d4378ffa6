"""InfoNCE and SigLIP against direct transcriptions of the papers' formulas (values and gradients)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from polymodal.config import objective_config
from polymodal.errors import ModelError
from polymodal.models.outputs import EmbeddingOutput
from polymodal.objectives import ContrastiveLoss, SigLIPLoss, build_objective
from polymodal.objectives.contrastive import infonce, siglip


def _features(n: int, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1)
    b = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1)
    return a.requires_grad_(), b.requires_grad_()


def clip_paper(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """CLIP: L = 1/2N sum_i [-log e^{s a_i.b_i} / sum_j e^{s a_i.b_j} - log e^{s b_i.a_i} / sum_j e^{s b_i.a_j}]."""
    s = torch.exp(t)
    n = a.shape[0]
    total = a.new_zeros(())
    for i in range(n):
        row_ab = torch.exp(s * (b @ a[i]))
        row_ba = torch.exp(s * (a @ b[i]))
        total = total - torch.log(row_ab[i] / row_ab.sum()) - torch.log(row_ba[i] / row_ba.sum())
    return total / (2 * n)


def siglip_paper(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """SigLIP: L = -1/|B| sum_i sum_j log 1 / (1 + e^{z_ij (-t' x_i.y_j - b)})."""
    s = torch.exp(t)
    n = a.shape[0]
    total = a.new_zeros(())
    for i in range(n):
        z = -torch.ones(n, dtype=a.dtype)
        z[i] = 1.0
        total = total + torch.log(1.0 / (1.0 + torch.exp(z * (-s * (b @ a[i]) - bias)))).sum()
    return -total / n


def _grads(loss: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, params))


@pytest.mark.parametrize("n", [1, 2, 257])
def test_infonce_matches_paper(n: int) -> None:
    a, b = _features(n)
    t = torch.tensor(math.log(1 / 0.07), dtype=torch.float64, requires_grad=True)
    ours, _ = infonce(a, b, t.exp())
    ref = clip_paper(a, b, t)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)
    for g_ours, g_ref in zip(_grads(ours, [a, b, t]), _grads(ref, [a, b, t]), strict=True):
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("n", [1, 2, 257])
def test_siglip_matches_paper(n: int) -> None:
    a, b = _features(n, seed=1)
    t = torch.tensor(math.log(10.0), dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-10.0, dtype=torch.float64, requires_grad=True)
    ours = siglip(a, b, t.exp(), bias)
    ref = siglip_paper(a, b, t, bias)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)
    for g_ours, g_ref in zip(_grads(ours, [a, b, t, bias]), _grads(ref, [a, b, t, bias]), strict=True):
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-7, atol=1e-10)


def test_contrastive_module_averages_pairs_and_reports_accuracy() -> None:
    a, b = _features(4)
    c = b.detach().clone()
    scale = torch.tensor(10.0, dtype=torch.float64)
    res = ContrastiveLoss()(EmbeddingOutput({"image": a, "text": b, "audio": c}, scale), {})
    pairs = [infonce(a, b, scale)[0], infonce(a, c, scale)[0], infonce(b, c, scale)[0]]
    torch.testing.assert_close(res.loss, torch.stack(pairs).mean())
    assert float(res.metrics["acc_text_to_audio"]) == 1.0  # identical features retrieve themselves
    only = ContrastiveLoss(pairs=[("image", "text")])(EmbeddingOutput({"image": a, "text": b, "audio": c}, scale), {})
    torch.testing.assert_close(only.loss, pairs[0])


def test_build_objective_adds_siglip_bias_and_checks_model(tiny_dual) -> None:  # type: ignore[no-untyped-def]
    from polymodal.models.build import build_preset

    model = build_preset("tiny-dual")
    assert model.logit_bias is None
    loss = build_objective(objective_config(kind="siglip"), model, None)
    assert isinstance(loss, SigLIPLoss) and model.logit_bias is not None and model.logit_bias.item() == -10.0
    assert "logit_bias" in dict(model.named_parameters())
    with pytest.raises(ModelError, match="heads"):
        build_objective(objective_config(kind="classification"), model, None)
