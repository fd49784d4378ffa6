"""Conv-channel pruning (torch-pruning) of EfficientNet-Lite0: narrower convs that reload narrow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import polymodal
from polymodal.compress.prune import prune


@pytest.fixture(scope="module")
def lite_small() -> Any:
    """EfficientNet-Lite0 at 32 px (the lite-dual image tower, cheap to run) + tiny BERT."""
    from polymodal.models.dual import DualEncoder
    from polymodal.models.towers import build_tower

    image = build_tower({"modality": "image", "source": "efficientnet-lite0", "options": {"image_size": 32}})
    text = build_tower({"modality": "text", "source": "tiny", "name_or_path": "bert"})
    return DualEncoder({"image": image, "text": text}, embed_dim=32).eval()


def _convs(model: nn.Module) -> dict[str, nn.Conv2d]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and n.startswith("towers.image.")}


def test_conv_channels_removed_and_the_folder_reloads_narrow(lite_small: Any, tmp_path: Path) -> None:
    from polymodal.export.onnx import _samples

    pruned, summary = prune(lite_small, 0.3, towers=["image"])
    assert "conv channels removed" in summary and "image" in summary
    entry = pruned.transforms[-1]
    assert entry["kind"] == "pruned" and entry["conv_shapes"] and not entry["mlp_widths"]
    before, after = _convs(lite_small), _convs(pruned)
    narrowed = [n for n in after if after[n].out_channels < before[n].out_channels]
    assert len(narrowed) > 20  # every block's expand / depthwise convs and the residual stream
    for name, conv in after.items():  # a depthwise conv stays depthwise: its groups follow its channels
        if before[name].groups > 1:
            assert conv.groups == conv.in_channels == conv.out_channels
    for name, module in pruned.named_modules():  # each BatchNorm as wide as the conv before it
        if isinstance(module, nn.BatchNorm2d) and "_bn" in name:
            assert module.running_mean.shape[0] == module.num_features == module.weight.shape[0]
    assert pruned.tower("image").output_dim == 32 and pruned.tower("image").encoder.pooled_dim == 1280
    assert sum(p.numel() for p in pruned.parameters()) < 0.8 * sum(p.numel() for p in lite_small.parameters())

    folder = pruned.save_pretrained(tmp_path / "pruned")
    loaded = polymodal.load(folder)
    for name, conv in _convs(loaded).items():
        assert (conv.out_channels, conv.in_channels, conv.groups) == (
            after[name].out_channels, after[name].in_channels, after[name].groups), name
    items = _samples(pruned.tower("image"), 3, 1)
    with torch.inference_mode():
        same = pruned.encode_image(items, bf16=False), loaded.encode_image(items, bf16=False)
        original = lite_small.encode_image(items, bf16=False)
    torch.testing.assert_close(same[1], same[0], rtol=0, atol=1e-6)
    assert not torch.allclose(original, same[0], atol=1e-3)  # pruning changed what the tower computes
