"""What polymodal knows about each transformers ``model_type``, in one table.

The loader (which tower a plain HF checkpoint becomes, which pooling), the HF encoders
(which checkpoints hold two towers, one of which a single tower takes) and the wrapped
dual encoder (which CLIP-like models it wraps, how their text half pools) all read
``HF_TYPES``; nothing else keeps a list of model types. A type not in the table is
loaded as a text tower with mean pooling (BERT, RoBERTa, MiniLM, XLM-R...).

No transformers import here: the table is plain data, cheap to read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from polymodal.errors import ModelError

# sub-config of a composite (CLIP-like) checkpoint that holds a modality's half
SUB_CONFIG = {"text": "text_config", "image": "vision_config", "video": "vision_config", "audio": "audio_config"}

# SigLIP v2's vision transformer takes NaFlex inputs: patchified ``pixel_values`` plus
# ``pixel_attention_mask`` and ``spatial_shapes``. A polymodal image tower carries one
# pixel tensor, so the vision half cannot run; the text half has no entry in transformers'
# AutoModel mapping (transformers 5.x), so it cannot be split off either.
_SIGLIP2 = ("SigLIP 2 is not supported: its vision model needs NaFlex inputs (pixel_attention_mask, spatial_shapes) "
            "that polymodal's image towers do not produce, and transformers has no AutoModel class for its "
            "text half; use a SigLIP (v1) checkpoint")


@dataclass(frozen=True)
class HFType:
    """One model_type's row.

    ``modality``: the tower a checkpoint of this type gives when loaded on its own
    (``None``: a composite checkpoint whose halves serve several modalities).
    ``pooling``: default pooling of that tower. ``composite``: the config holds
    ``text_config`` + ``vision_config`` / ``audio_config`` and a single tower takes its half.
    ``wrap_class``: the transformers class ``WrappedDualEncoder`` wraps (the whole pair, with
    its projections and temperature); ``text_pooling`` / ``text_options``: how that wrapper's
    text tower pools and tokenizes. ``encoder_half``: an encoder-decoder whose tower is its
    encoder (``get_encoder()``); ``pad_to_window``: audio is padded to the feature extractor's
    full window (Whisper's encoder takes only 30 s windows). ``unsupported``: why polymodal cannot run this type.
    """

    modality: str | None = "text"
    pooling: str = "mean"
    composite: bool = False
    wrap_class: str | None = None
    text_pooling: str = "pooler"
    text_options: dict[str, Any] = field(default_factory=dict)
    encoder_half: bool = False
    pad_to_window: bool = False
    unsupported: str | None = None


TEXT = HFType()
_AUDIO = HFType(modality="audio")
_IMAGE = HFType(modality="image")
_IMAGE_CLS = HFType(modality="image", pooling="cls")  # trained with a classification token

HF_TYPES: dict[str, HFType] = {
    # audio towers
    **dict.fromkeys(
        ("wav2vec2", "hubert", "audio-spectrogram-transformer", "wavlm", "data2vec-audio", "unispeech",
         "unispeech-sat", "sew", "sew-d", "wav2vec2-conformer"),
        _AUDIO,
    ),
    "whisper": HFType(modality="audio", encoder_half=True, pad_to_window=True),
    # image towers
    **dict.fromkeys(
        ("beit", "convnext", "convnextv2", "swin", "swinv2", "resnet", "regnet", "efficientnet", "mobilevit",
         "clip_vision_model", "siglip_vision_model", "levit", "pvt", "dinov3_vit"),
        _IMAGE,
    ),
    **dict.fromkeys(("vit", "deit", "dinov2"), _IMAGE_CLS),
    # whole dual encoders: loaded on their own they become a WrappedDualEncoder
    "clip": HFType(modality=None, composite=True, wrap_class="CLIPModel", text_pooling="pooler"),
    "chinese_clip": HFType(modality=None, composite=True, wrap_class="ChineseCLIPModel", text_pooling="cls"),
    # SigLIP was trained on texts padded to 64 tokens, without an attention mask, and pools the last one
    "siglip": HFType(modality=None, composite=True, wrap_class="SiglipModel", text_pooling="pooler",
                     text_options={"padding": "max_length", "max_length": 64, "use_attention_mask": False}),
    # composite checkpoints a single tower can take a half of, but that are not wrapped whole
    "altclip": HFType(modality=None, composite=True),
    "clap": HFType(modality=None, composite=True),
    "siglip2": HFType(modality=None, composite=True, unsupported=_SIGLIP2),
    "siglip2_vision_model": HFType(modality="image", unsupported=_SIGLIP2),
}


def hf_type(model_type: str) -> HFType:
    """The row for ``model_type`` (unknown types are text towers)."""
    return HF_TYPES.get(model_type, TEXT)


def check_supported(model_type: str, name: str) -> None:
    """Refuse a type polymodal cannot run, before any weights load."""
    reason = hf_type(model_type).unsupported
    if reason:
        raise ModelError(f"{name} is a {model_type!r} model. {reason}")


def is_wrapped(model_type: str) -> bool:
    return hf_type(model_type).wrap_class is not None


def wrapped_types() -> list[str]:
    return sorted(t for t, row in HF_TYPES.items() if row.wrap_class)


def wrapped_row(model_type: str) -> HFType:
    """The row of a type ``WrappedDualEncoder`` can wrap; a clear error for any other."""
    row = hf_type(model_type)
    if row.unsupported:
        raise ModelError(f"cannot wrap a {model_type!r} model as a dual encoder: {row.unsupported}")
    if row.wrap_class is None:
        raise ModelError(f"cannot wrap a {model_type!r} model as a dual encoder (supported: {wrapped_types()})")
    return row


def tower_modality(model_type: str) -> str:
    """The modality a lone tower of this type has (a composite checkpoint defaults to text)."""
    return hf_type(model_type).modality or "text"


def default_pooling(model_type: str, modality: str) -> str:
    """The type's pooling when the tower is the type's own modality; mean otherwise."""
    row = hf_type(model_type)
    return row.pooling if row.modality == modality else "mean"
