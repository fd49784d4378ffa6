"""Text encoders from any transformers model (BERT, RoBERTa, MiniLM, XLM-R, CLIP text...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.encoders.base import masked_mean
from polymodal.models.encoders.hf_common import (
    HFEncoder,
    backbone_from_assets,
    hf_call,
    hub_kwargs,
    load_backbone,
    local_kwargs,
)


class HFTextEncoder(HFEncoder):
    modality = "text"
    bf16_weights = True

    def __init__(self, model: nn.Module, tokenizer: Any, spec: dict[str, Any]) -> None:
        super().__init__(model, tokenizer, spec)
        self.tokenizer = tokenizer
        limit = getattr(model.config, "max_position_embeddings", None) or 512  # type: ignore[attr-defined]
        self.max_length = int(spec.get("max_length") or min(int(limit), 512))
        # SigLIP-style text models: fixed-length padding and no attention mask, as they were trained
        self.padding: str | bool = spec.get("padding", True)
        self.use_attention_mask = bool(spec.get("use_attention_mask", True))

    def preprocess(self, items: list[Any]) -> dict[str, torch.Tensor]:
        texts = [str(t) for t in items]
        enc = self.tokenizer(
            texts, padding=self.padding, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        ids = enc["input_ids"]
        mask = enc.get("attention_mask")
        return {"input_ids": ids, "attention_mask": mask if mask is not None else torch.ones_like(ids)}

    def _run(self, inputs: dict[str, torch.Tensor]) -> Any:
        mask = inputs["attention_mask"] if self.use_attention_mask else None
        return self.model(input_ids=inputs["input_ids"], attention_mask=mask)

    def forward_tokens(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run(inputs).last_hidden_state, inputs["attention_mask"].bool()

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self._run(inputs)
        if self.pooling == "cls":
            return out.last_hidden_state[:, 0]
        if self.pooling == "pooler":
            if getattr(out, "pooler_output", None) is None:
                raise ModelError(f"{self._spec.get('name_or_path')}: this model has no pooler output")
            return out.pooler_output
        # pool in float32: a bf16 sum over tens of tokens costs more precision than the whole stack
        return masked_mean(out.last_hidden_state.float(), inputs["attention_mask"])

    def item_length(self, item: Any) -> int:
        return len(str(item))

    def item_lengths(self, items: list[Any]) -> list[int]:
        # token counts, not characters: sorting by characters left 27% of a MiniLM batch padding
        ids = self.tokenizer([str(t) for t in items], truncation=True, max_length=self.max_length)["input_ids"]
        return [len(x) for x in ids]

    @classmethod
    def load(cls, spec: dict[str, Any], local_files_only: bool | None) -> HFTextEncoder:
        from transformers import AutoTokenizer

        name = str(spec["name_or_path"])
        kw = hub_kwargs(spec, local_files_only)
        st_config = Path(name) / "sentence_bert_config.json"
        if not spec.get("max_length") and st_config.is_file():
            # a sentence-transformers folder states the sequence length its model was trained with
            spec = {**spec, "max_length": json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")}
        model = load_backbone(name, "text", kw)
        tok = hf_call(name, lambda: AutoTokenizer.from_pretrained(name, **kw))
        return cls(model, tok, spec)

    @classmethod
    def from_assets(cls, spec: dict[str, Any], folder: Path) -> HFTextEncoder:
        from transformers import AutoTokenizer

        backbone = backbone_from_assets(folder)  # first: it refuses a folder that names its own code
        kw = local_kwargs(folder)
        tok = hf_call(str(folder), lambda: AutoTokenizer.from_pretrained(folder, **kw))
        return cls(backbone, tok, spec)
