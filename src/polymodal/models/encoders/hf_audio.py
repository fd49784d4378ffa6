"""Audio encoders from transformers (wav2vec2, HuBERT, Whisper encoder, AST)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.models.encoders.base import as_waveform, masked_mean
from polymodal.models.encoders.hf_common import (
    HFEncoder,
    backbone_from_assets,
    hf_call,
    hub_kwargs,
    load_backbone,
    local_kwargs,
)
from polymodal.models.hf_types import hf_type


class HFAudioEncoder(HFEncoder):
    modality = "audio"

    def __init__(self, model: nn.Module, feature_extractor: Any, spec: dict[str, Any]) -> None:
        super().__init__(model, feature_extractor, spec)
        self.sample_rate = int(getattr(feature_extractor, "sampling_rate", 16000))
        # Whisper's encoder only takes full 30 s windows of log-mel frames
        self.pad_to_window = hf_type(getattr(model.config, "model_type", "")).pad_to_window  # type: ignore[union-attr]

    def preprocess(self, items: list[Any]) -> dict[str, torch.Tensor]:
        waves = [as_waveform(w) for w in items]
        enc = self.processor(
            waves, sampling_rate=self.sample_rate, return_tensors="pt",
            padding="max_length" if self.pad_to_window else True, return_attention_mask=True,
        )
        return {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}

    def forward_tokens(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        mask = inputs.get("attention_mask")
        feats = {k: v for k, v in inputs.items() if k in ("input_values", "input_features")}
        takes_mask = mask is not None and hasattr(self.model, "_get_feature_vector_attention_mask")
        out = self.model(**feats, attention_mask=mask) if takes_mask else self.model(**feats)
        tokens = out.last_hidden_state
        if takes_mask:
            # frame-level mask from the sample-level one (conv feature extractor strides)
            model: Any = self.model
            frame_mask = model._get_feature_vector_attention_mask(tokens.shape[1], mask)
            return tokens, frame_mask.bool()
        if mask is not None and mask.shape[1] == 2 * tokens.shape[1]:  # Whisper: mel-frame mask, conv stride 2
            return tokens, mask[:, ::2].bool()
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens, mask = self.forward_tokens(inputs)
        if self.pooling == "cls":
            return tokens[:, 0]
        return masked_mean(tokens, mask)

    def item_length(self, item: Any) -> int:
        return int(getattr(item, "shape", [len(item)])[-1])

    @classmethod
    def load(cls, spec: dict[str, Any], local_files_only: bool | None) -> HFAudioEncoder:
        from transformers import AutoFeatureExtractor

        name = str(spec["name_or_path"])
        kw = hub_kwargs(spec, local_files_only)
        model = load_backbone(name, "audio", kw)
        fe = hf_call(name, lambda: AutoFeatureExtractor.from_pretrained(name, **kw))
        return cls(model, fe, spec)

    @classmethod
    def from_assets(cls, spec: dict[str, Any], folder: Path) -> HFAudioEncoder:
        from transformers import AutoFeatureExtractor

        backbone = backbone_from_assets(folder)  # first: it refuses a folder that names its own code
        kw = local_kwargs(folder)
        fe = hf_call(str(folder), lambda: AutoFeatureExtractor.from_pretrained(folder, **kw))
        return cls(backbone, fe, spec)
