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
    """EfficientNet-Lite0 at 32 px (the lite-dual image tower, cheap to run) with a 32-d projection."""
    from polymodal.models.dual import EmbeddingModel
    from polymodal.models.towers import build_tower

    image = build_tower({"modality": "image", "source": "efficientnet-lite0", "options": {"image_size": 32},
                         "projection_dim": 32})
    return EmbeddingModel({"image": image}).eval()


@pytest.fixture(scope="module")
def pruned(lite_small: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str, Path]:
    model, summary = prune(lite_small, 0.3, towers=["image"])
    return model, summary, model.save_pretrained(tmp_path_factory.mktemp("conv") / "pruned")


def _convs(model: nn.Module) -> dict[str, nn.Conv2d]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and n.startswith("towers.image.")}


def test_conv_channels_removed_and_the_folder_reloads_narrow(lite_small: Any, pruned: tuple[Any, str, Path]) -> None:
    from polymodal.export.onnx import _samples
    from polymodal.models.transforms import builds_empty

    pruned, summary, folder = pruned
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

    loaded = polymodal.load(folder)
    assert builds_empty(loaded.transforms)  # built narrow on the meta device, then the file's tensors assigned
    for name, conv in _convs(loaded).items():
        assert (conv.out_channels, conv.in_channels, conv.groups) == (
            after[name].out_channels, after[name].in_channels, after[name].groups), name
    items = _samples(pruned.tower("image"), 3, 1)
    with torch.inference_mode():
        same = pruned.encode_image(items, bf16=False), loaded.encode_image(items, bf16=False)
        original = lite_small.encode_image(items, bf16=False)
    torch.testing.assert_close(same[1], same[0], rtol=0, atol=1e-6)
    assert not torch.allclose(original, same[0], atol=1e-3)  # pruning changed what the tower computes


def test_a_tensor_missing_from_a_pruned_folder_is_named_not_left_empty(pruned: tuple[Any, str, Path],
                                                                       tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    from polymodal.errors import ModelError

    folder = shutil.copytree(pruned[2], tmp_path / "broken")
    state = load_file(str(folder / "model.safetensors"))
    name = "towers.image.encoder.net._blocks.3._depthwise_conv.weight"
    del state[name]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ModelError, match=f"missing.*{name}"):
        polymodal.load(folder)
