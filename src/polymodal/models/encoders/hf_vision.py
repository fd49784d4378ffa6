"""Image encoders from any transformers vision model (ViT, CLIP/SigLIP vision, ConvNeXt, DINOv2...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.encoders.base import as_pil
from polymodal.models.encoders.hf_common import (
    HFEncoder,
    backbone_from_assets,
    hf_call,
    hub_kwargs,
    load_backbone,
    local_kwargs,
)


def _processor_size(processor: Any) -> int:
    size = getattr(processor, "size", None) or {}
    crop = getattr(processor, "crop_size", None) or {}
    for d in (crop, size):
        if isinstance(d, dict):
            for key in ("height", "shortest_edge", "width"):
                if d.get(key):
                    return int(d[key])
        elif isinstance(d, int):
            return d
    return 224


class HFVisionEncoder(HFEncoder):
    modality = "image"

    def __init__(self, model: nn.Module, processor: Any, spec: dict[str, Any]) -> None:
        super().__init__(model, processor, spec)
        self.image_size = _processor_size(processor)
        # conv backbones (ConvNeXt, ResNet) lose accuracy under bf16 like other conv nets
        self.bf16_safe = getattr(model.config, "hidden_sizes", None) is None  # type: ignore[attr-defined]

    def preprocess(self, items: list[Any]) -> torch.Tensor:
        images = [as_pil(i) for i in items]
        return self.processor(images=images, return_tensors="pt")["pixel_values"]

    def _run(self, pixel_values: torch.Tensor) -> Any:
        return self.model(pixel_values=pixel_values)

    @staticmethod
    def _tokens(hidden: torch.Tensor) -> torch.Tensor:
        if hidden.dim() == 4:  # conv nets (ConvNeXt): (B, C, H, W) -> (B, H*W, C)
            return hidden.flatten(2).transpose(1, 2)
        return hidden

    def forward_tokens(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self._tokens(self._run(inputs).last_hidden_state)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self._run(inputs)
        if self.pooling == "pooler":
            pooled = getattr(out, "pooler_output", None)
            if pooled is None:
                raise ModelError(f"{self._spec.get('name_or_path')}: this model has no pooler output")
            return pooled.flatten(1)
        tokens = self._tokens(out.last_hidden_state)
        return tokens[:, 0] if self.pooling == "cls" else tokens.mean(1)

    @classmethod
    def load(cls, spec: dict[str, Any], local_files_only: bool | None) -> HFVisionEncoder:
        from transformers import AutoImageProcessor

        name = str(spec["name_or_path"])
        kw = hub_kwargs(spec, local_files_only)
        model = load_backbone(name, "image", kw)
        proc = hf_call(name, lambda: AutoImageProcessor.from_pretrained(name, **kw))
        return cls(model, proc, spec)

    @classmethod
    def from_assets(cls, spec: dict[str, Any], folder: Path) -> HFVisionEncoder:
        from transformers import AutoImageProcessor

        backbone = backbone_from_assets(folder)  # first: it refuses a folder that names its own code
        kw = local_kwargs(folder)
        proc = hf_call(str(folder), lambda: AutoImageProcessor.from_pretrained(folder, **kw))
        return cls(backbone, proc, spec)
