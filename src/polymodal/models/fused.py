"""FusionModel: towers + a fusion module + one head per label column (multi-task when several)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.config import FusionSpec
from polymodal.errors import ModelError
from polymodal.models.dual import EmbeddingModel
from polymodal.models.fusion import Fusion, build_fusion
from polymodal.models.heads import Head, head_from_spec
from polymodal.models.hub import register_model_class
from polymodal.models.outputs import ClassifierOutput
from polymodal.models.towers import Tower


class FusionModel(EmbeddingModel):
    """``forward(batch) -> ClassifierOutput(logits={label_col: Tensor}, embeddings={m: pooled}, fused)``.

    ``embeddings`` holds each tower's pooled output when the fusion works on pooled vectors
    (late fusion); token-level fusions skip the pooled pass. ``encode_<modality>`` still
    gives each tower's normalised pooled embedding.
    """

    def __init__(self, towers: dict[str, Tower], fusion: Fusion, heads: dict[str, Head], inputs: list[str] | None = None,
                 fusion_spec: FusionSpec | None = None) -> None:
        super().__init__(towers)
        if not heads:
            raise ModelError("a FusionModel needs at least one head")
        self.inputs = list(inputs or towers)
        self.fusion = fusion
        self.heads = nn.ModuleDict(heads)
        self.fusion_spec = fusion_spec or fusion.to_spec()

    def forward(self, batch: dict[str, Any]) -> ClassifierOutput:  # type: ignore[override]
        missing = [m for m in self.inputs if m not in batch]
        if missing:
            raise ModelError(f"batch lacks inputs {missing} this model needs")
        pooled: dict[str, torch.Tensor] = {}
        tokens: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for m in self.inputs:
            tower = self.towers[m]
            if self.fusion.needs_tokens:
                tokens[m] = tower.forward_tokens(batch[m])  # type: ignore[operator]
            else:
                pooled[m] = tower(batch[m])
        fused = self.fusion(pooled, tokens)
        logits = {col: head(fused) for col, head in self.heads.items()}
        return ClassifierOutput(logits, pooled, fused)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "inputs": self.inputs,
            "fusion": self.fusion_spec.model_dump(),
            "heads": {col: h.spec() for col, h in self.heads.items()},  # type: ignore[operator]
        }

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> FusionModel:
        towers = cls._towers_from_config(config, folder)
        spec = FusionSpec(**config["fusion"])
        used = {m: towers[m] for m in config["inputs"]}
        heads = {col: head_from_spec(s) for col, s in config["heads"].items()}
        return cls(towers, build_fusion(spec, used), heads, config["inputs"], spec)


register_model_class(FusionModel)
