"""The encoder interface every tower backbone implements, plus shared input helpers.

An ``Encoder`` owns its preprocessing (tokenizer / image transform / feature extractor) and
turns preprocessed inputs into token features and a pooled vector. ``spec()`` returns a JSON
description that, together with the files ``save_assets`` writes, rebuilds the architecture
without the network; the weights themselves travel in the model's ``model.safetensors``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from polymodal.errors import ModelError

Inputs = Any  # Tensor or dict[str, Tensor], whatever ``preprocess`` returned


class Encoder(nn.Module):
    """Backbone adapter: ``preprocess`` -> ``forward_tokens`` / ``forward`` (pooled)."""

    modality: str = ""
    hidden_dim: int = 0  # token width
    pooled_dim: int = 0  # width of the pooled vector (before any tower projection)
    # whether bf16 autocast keeps outputs within cosine 0.999 of fp32 (measured: transformer
    # encoders yes; BatchNorm conv nets such as EfficientNet-Lite0 drift to ~0.998, so no)
    bf16_safe: bool = False
    # whether ``encode`` may run a bf16 copy of the weights (bf16 residual stream and norms too),
    # not just autocast; measured for MiniLM: min cosine 0.9999 to fp32 at ~2.5x the speed
    bf16_weights: bool = False

    def preprocess(self, items: list[Any]) -> Inputs:  # pragma: no cover - interface
        raise NotImplementedError

    def forward_tokens(self, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def forward(self, inputs: Inputs) -> torch.Tensor:
        tokens, mask = self.forward_tokens(inputs)
        return masked_mean(tokens, mask)

    def blocks(self) -> list[nn.Module]:
        return []

    def lora_targets(self) -> list[str]:
        return []

    def spec(self) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def save_assets(self, folder: Path) -> None:
        """Write whatever (besides weights) is needed to rebuild this encoder offline."""

    def item_length(self, item: Any) -> int:
        """A cheap size of one raw item; ``encode`` sorts by it to cut padding."""
        return 0

    def item_lengths(self, items: list[Any]) -> list[int]:
        """Sizes of many raw items at once (a tokenizer counts a whole list in one call)."""
        return [self.item_length(item) for item in items]


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * m).sum(1) / m.sum(1).clamp_min(1e-6)


def as_pil(item: Any) -> Image.Image:
    """Accept a PIL image, a path, or an HxWxC uint8 array; return an RGB PIL image."""
    if isinstance(item, Image.Image):
        return item if item.mode == "RGB" else item.convert("RGB")
    if isinstance(item, str | Path):
        try:
            with Image.open(item) as im:
                return im.convert("RGB")
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read image {item}: {exc}") from None
    if isinstance(item, np.ndarray):
        return Image.fromarray(item.astype(np.uint8)).convert("RGB")
    raise ModelError(f"expected an image (PIL image, path or array), got {type(item).__name__}")


def as_waveform(item: Any) -> np.ndarray:
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu().numpy()
    arr = np.asarray(item, dtype=np.float32)
    if arr.ndim == 2:  # (channels, samples) -> mono
        arr = arr.mean(axis=0)
    if arr.ndim != 1:
        raise ModelError(f"expected a mono waveform (1-D array), got shape {arr.shape}")
    return arr


def largest_module_list(model: nn.Module) -> list[nn.Module]:
    """The longest nn.ModuleList inside ``model``: the transformer/conv block stack."""
    best: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) > len(best):
            best = list(module)
    return best


def linear_names(model: nn.Module, candidates: tuple[str, ...]) -> list[str]:
    """Which of ``candidates`` name nn.Linear leaves in ``model`` (peft target_modules)."""
    found = {name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, nn.Linear)}
    return [c for c in candidates if c in found]


ATTENTION_LINEARS = ("query", "value", "q_proj", "v_proj", "q", "v", "qkv", "in_proj")
