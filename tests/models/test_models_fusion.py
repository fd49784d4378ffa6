"""Every fusion type and head learns a toy problem for image+text, audio+text and video+text."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import polymodal
from polymodal.config import FusionSpec, HeadSpec, ModelConfig, objective_config
from polymodal.models.build import build_model
from polymodal.models.fused import FusionModel
from polymodal.objectives import build_objective

FUSIONS = [
    FusionSpec(kind="early", hidden_dim=32, num_heads=2),
    FusionSpec(kind="late", combine="concat"),
    FusionSpec(kind="late", combine="sum", hidden_dim=32),
    FusionSpec(kind="late", combine="gated", hidden_dim=32),
    FusionSpec(kind="cross_attention", hidden_dim=32, num_heads=2),
]
PAIRS = {"image": "tiny-dual", "audio": "tiny-audio-text", "video": "tiny-video-text"}
HEAD_KINDS = ["classification", "multilabel", "regression"]


def _raw(modality: str, bright: bool, rng: np.random.Generator) -> Any:
    """A sample whose label (bright/loud vs dark/quiet) is visible in the non-text modality."""
    level = 200 if bright else 40
    if modality == "audio":
        t = np.arange(4000) / 16000
        return (0.5 * np.sin(2 * np.pi * (880 if bright else 220) * t) + 0.01 * rng.standard_normal(4000)).astype(np.float32)
    img = Image.fromarray(np.clip(level + rng.integers(-20, 20, (64, 64, 3)), 0, 255).astype(np.uint8))
    return [img, img] if modality == "video" else img


def _toy_batch(model: FusionModel, modality: str, head_kind: str) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    flags = [i % 2 == 0 for i in range(8)]
    words = ["a bright thing" if f else "a dark thing" for f in flags]
    batch = {
        modality: model.towers[modality].preprocess([_raw(modality, f, rng) for f in flags]),
        "text": model.towers["text"].preprocess(words),
    }
    y = torch.tensor([float(f) for f in flags])
    batch["label"] = {"classification": y.long(), "multilabel": torch.stack([y, 1 - y], 1), "regression": y * 2 - 1}[head_kind]
    return batch


def _train(model: torch.nn.Module, objective: torch.nn.Module, batch: dict[str, Any], steps: int = 12) -> list[float]:
    opt = torch.optim.AdamW(list(model.parameters()) + list(objective.parameters()), lr=3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        res = objective(model(batch), batch)
        opt.zero_grad()
        res.loss.backward()
        opt.step()
        losses.append(float(res.loss.detach()))
    return losses


@pytest.mark.slow  # 15 small training runs: ~1 s each on an idle 2-core CPU
@pytest.mark.parametrize("modality", list(PAIRS))
@pytest.mark.parametrize("fusion_idx", range(len(FUSIONS)))
def test_fusion_and_head_learn(modality: str, fusion_idx: int) -> None:
    torch.manual_seed(0)
    fusion = FUSIONS[fusion_idx]
    head_kind = HEAD_KINDS[(fusion_idx + list(PAIRS).index(modality)) % 3]  # every head meets every pair
    n_out = {"classification": None, "multilabel": 2, "regression": None}[head_kind]
    cfg = ModelConfig(preset=PAIRS[modality], kind="fusion", fusion=fusion, heads={"label": HeadSpec(kind=head_kind, num_outputs=n_out)})
    model = build_model(cfg, {"label": ["dark", "bright"]})
    assert isinstance(model, FusionModel)
    objective = build_objective(objective_config(kind="classification"), model, None)
    losses = _train(model, objective, _toy_batch(model, modality, head_kind))
    assert all(np.isfinite(losses))
    assert min(losses[-3:]) < 0.7 * losses[0], f"{fusion.kind}/{fusion.combine} {head_kind} on {modality}: {losses}"


@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["fixed", "uncertainty"])
def test_multitask_model_learns_every_head(weighting: str) -> None:
    torch.manual_seed(0)
    heads = {"kind": HeadSpec(kind="classification"), "tags": HeadSpec(kind="multilabel", num_outputs=2), "score": HeadSpec(kind="regression")}
    model = build_model(ModelConfig(preset="tiny-dual", kind="classifier", heads=heads), {"kind": ["dark", "bright"]})
    batch = _toy_batch(model, "image", "classification")
    y = batch.pop("label")
    batch.update({"kind": y, "tags": torch.stack([y.float(), 1 - y.float()], 1), "score": y.float() * 2 - 1})
    objective = build_objective(objective_config(kind="multitask", weighting=weighting, task_weights={"score": 2.0}), model, None)
    assert len(list(objective.parameters())) == (3 if weighting == "uncertainty" else 0)
    before = objective(model(batch), batch).metrics
    _train(model, objective, batch, steps=15)
    after = objective(model(batch), batch).metrics
    for col in heads:
        assert after[f"loss_{col}"] < before[f"loss_{col}"]


def test_fusion_model_round_trip(tmp_path, find_pickles) -> None:  # type: ignore[no-untyped-def]
    cfg = ModelConfig(preset="tiny-video-text", kind="fusion", fusion=FUSIONS[4], heads={"label": HeadSpec(hidden_dim=16)})
    model = build_model(cfg, {"label": ["a", "b", "c"]}).eval()
    batch = _toy_batch(model, "video", "classification")
    saved = model.save_pretrained(tmp_path / "fm")
    assert find_pickles(saved) == []
    loaded = polymodal.load(saved)
    assert isinstance(loaded, FusionModel) and loaded.heads["label"].labels == ["a", "b", "c"]
    with torch.no_grad():
        assert torch.equal(model(batch).logits["label"], loaded(batch).logits["label"])


@pytest.mark.parametrize(("combine", "solvable"), [("product", True), ("concat", False)])
def test_product_fusion_lets_a_linear_head_model_interactions(combine: str, solvable: bool) -> None:
    """XOR of two modalities' signs: no linear head on concatenated features gets all four
    cases right; one on the product of tanh projections does."""
    from polymodal.models.fusion import LateFusion

    torch.manual_seed(0)
    a = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]])
    b = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])
    y = torch.tensor([1, 0, 0, 1])
    fusion = LateFusion({"image": 1, "text": 1}, combine=combine, hidden_dim=8)
    head = torch.nn.Linear(fusion.output_dim, 2)
    opt = torch.optim.Adam([*fusion.parameters(), *head.parameters()], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(fusion({"image": a, "text": b}, {})), y)
        loss.backward()
        opt.step()
    accuracy = (head(fusion({"image": a, "text": b}, {})).argmax(-1) == y).float().mean().item()
    assert (accuracy == 1.0) is solvable
    assert fusion.output_dim == (8 if combine == "product" else 2)
