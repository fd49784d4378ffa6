"""``polymodal.load``: one entry point for presets, saved models, run dirs and HF models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from polymodal.errors import ModelError

AUDIO_TYPES = {"wav2vec2", "hubert", "whisper", "audio-spectrogram-transformer", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat", "sew", "sew-d", "wav2vec2-conformer"}
VISION_TYPES = {"vit", "deit", "beit", "convnext", "convnextv2", "dinov2", "swin", "swinv2", "resnet", "regnet", "efficientnet", "mobilevit", "clip_vision_model", "siglip_vision_model", "levit", "pvt", "dinov3_vit"}
WRAPPED_TYPES = {"clip", "chinese_clip", "siglip"}


def _hf_model(name: str, local_files_only: bool | None, modality: str | None) -> Any:
    from transformers import AutoConfig

    from polymodal.models.dual import EmbeddingModel
    from polymodal.models.encoders.hf_common import hf_call, hub_kwargs
    from polymodal.models.towers import build_tower
    from polymodal.models.wrapped import WrappedDualEncoder

    config = hf_call(name, lambda: AutoConfig.from_pretrained(name, **hub_kwargs({}, local_files_only)))
    if config.model_type in WRAPPED_TYPES and modality is None:
        return WrappedDualEncoder.from_hub(name, local_files_only=local_files_only)
    if modality is None:
        modality = "audio" if config.model_type in AUDIO_TYPES else "image" if config.model_type in VISION_TYPES else "text"
    pooling = "cls" if modality == "image" and config.model_type in ("vit", "deit", "dinov2") else "mean"
    spec = {"modality": modality, "source": "hf", "name_or_path": name, "pooling": pooling}
    model = EmbeddingModel({modality: build_tower(spec, local_files_only=local_files_only)})
    model.card_info = {"name": name}
    return model


def load(name_or_path: str | Path, *, local_files_only: bool | None = None, modality: str | None = None, **kw: Any) -> Any:
    """Model for a preset name, a save_pretrained folder, a run dir, or an HF folder / hub name.

    ``local_files_only`` (default: the HF_HUB_OFFLINE environment setting) keeps hub models
    from touching the network; ``modality`` forces the tower type of a plain HF model.
    """
    model = _load(name_or_path, local_files_only, modality, **kw)
    model.eval()  # as from_pretrained returns models; call .train() to fine-tune
    return model


def _load(name_or_path: str | Path, local_files_only: bool | None, modality: str | None, **kw: Any) -> Any:
    from polymodal.models.build import build_preset
    from polymodal.models.hub import is_polymodal_folder, load_pretrained
    from polymodal.models.presets import is_preset

    name = str(name_or_path)
    if is_preset(name) and not Path(name).exists():
        return build_preset(name, local_files_only=local_files_only, **kw)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{path} is a file; pass a model folder, a run directory or a preset name")
        if is_polymodal_folder(path):
            return load_pretrained(path)
        if is_polymodal_folder(path / "model"):
            return load_pretrained(path / "model")
        cfg = path / "config.json"
        if cfg.is_file():
            try:
                if "model_type" in json.loads(cfg.read_text(encoding="utf-8")):
                    return _hf_model(str(path), True, modality)
            except json.JSONDecodeError:
                raise ModelError(f"{cfg} is not valid JSON") from None
        raise ModelError(f"{path} is not a polymodal model folder, a run directory (with model/) or a Hugging Face model folder")
    if "/" in name and not name.startswith((".", "/")):
        return _hf_model(name, local_files_only, modality)
    raise ModelError(f"{name!r} is neither a known preset (see `polymodal models`) nor an existing folder")
