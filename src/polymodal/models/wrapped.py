"""Whole pretrained CLIP / Chinese-CLIP / SigLIP models wrapped as a DualEncoder.

The wrapper reuses the HF model's own parts — vision and text transformers, their
projections, ``logit_scale`` and (SigLIP) ``logit_bias`` — so zero-shot logits equal the
original model's straight after loading. The HF config and processor files are saved under
``towers/hf`` so a saved wrapper reloads offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from polymodal.errors import ModelError
from polymodal.models.dual import DualEncoder
from polymodal.models.encoders.hf_common import (
    check_config_code,
    hf_call,
    hub_kwargs,
    local_kwargs,
)
from polymodal.models.encoders.hf_text import HFTextEncoder
from polymodal.models.encoders.hf_vision import HFVisionEncoder
from polymodal.models.hf_types import wrapped_row
from polymodal.models.hub import register_model_class
from polymodal.models.towers import Tower
from polymodal.models.trust import require_safetensors


def _model_class(model_type: str) -> Any:
    import transformers as tf

    # which model types wrap, and as which transformers class: models/hf_types.py
    return getattr(tf, str(wrapped_row(model_type).wrap_class))


class WrappedDualEncoder(DualEncoder):
    def __init__(self, hf_model: nn.Module, tokenizer: Any, image_processor: Any, source: str = "") -> None:
        config: Any = hf_model.config
        row = wrapped_row(config.model_type)  # text pooling and tokenizing per type (SigLIP: padded to 64)
        text_spec: dict[str, Any] = {"modality": "text", "source": "hf", "name_or_path": source,
                                     "pooling": row.text_pooling, **row.text_options}
        image_spec = {"modality": "image", "source": "hf", "name_or_path": source, "pooling": "pooler"}
        proj_v = getattr(hf_model, "visual_projection", None)
        proj_t = getattr(hf_model, "text_projection", None)
        towers = {
            "image": Tower(HFVisionEncoder(hf_model.vision_model, image_processor, image_spec),  # type: ignore[arg-type]
                           projection=proj_v or nn.Identity(), output_dim=getattr(config, "projection_dim", None) or config.vision_config.hidden_size),
            "text": Tower(HFTextEncoder(hf_model.text_model, tokenizer, text_spec),  # type: ignore[arg-type]
                          projection=proj_t or nn.Identity(), output_dim=getattr(config, "projection_dim", None) or config.text_config.hidden_size),
        }
        super().__init__(towers)
        self.logit_scale = hf_model.logit_scale  # type: ignore[assignment]
        self.logit_bias = getattr(hf_model, "logit_bias", None)
        self.hf_config: Any = config
        self.source = source

    def save_assets(self, folder: Path) -> None:
        out = folder / "towers" / "hf"
        out.mkdir(parents=True, exist_ok=True)
        self.hf_config.save_pretrained(out)
        text_encoder: Any = self.tower("text").encoder
        image_encoder: Any = self.tower("image").encoder
        text_encoder.tokenizer.save_pretrained(out)
        image_encoder.processor.save_pretrained(out)

    def get_config(self) -> dict[str, Any]:
        return {"hf_model_type": self.hf_config.model_type, "source": self.source, "embed_dim": self.embed_dim}

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> WrappedDualEncoder:
        from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

        hf_dir = folder / "towers" / "hf"
        kw = local_kwargs(hf_dir)
        hf_cfg = hf_call(str(hf_dir), lambda: AutoConfig.from_pretrained(hf_dir, **kw))
        check_config_code(hf_cfg, str(hf_dir))
        model = _model_class(hf_cfg.model_type)(hf_cfg)
        tok = hf_call(str(hf_dir), lambda: AutoTokenizer.from_pretrained(hf_dir, **kw))
        proc = hf_call(str(hf_dir), lambda: AutoImageProcessor.from_pretrained(hf_dir, **kw))
        return cls(model, tok, proc, str(config.get("source", "")))

    @classmethod
    def from_hub(cls, name: str, *, local_files_only: bool | None = None, preset: str | None = None,
                 revision: str | None = None) -> WrappedDualEncoder:
        """Load a CLIP-like model by hub name or local folder through ``from_pretrained``
        (safetensors weights only; code only as the caller's permission says, ``models.trust``)."""
        from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

        from polymodal.models.encoders.hf_common import unavailable_message

        kw = hub_kwargs({"name_or_path": name, "revision": revision}, local_files_only)
        try:
            config = hf_call(name, lambda: AutoConfig.from_pretrained(name, **kw))
        except ModelError as exc:
            if preset and not Path(name).exists():
                raise ModelError(unavailable_message(name, preset=preset)) from None
            raise exc
        check_config_code(config, name)
        model_cls = _model_class(config.model_type)
        require_safetensors(name)
        model = hf_call(name, lambda: model_cls.from_pretrained(name, use_safetensors=True, **kw))
        tok = hf_call(name, lambda: AutoTokenizer.from_pretrained(name, **kw))
        proc = hf_call(name, lambda: AutoImageProcessor.from_pretrained(name, **kw))
        wrapped = cls(model, tok, proc, name)
        wrapped.card_info = {"name": preset or name, "source": name}
        wrapped.eval()
        return wrapped


register_model_class(WrappedDualEncoder)
