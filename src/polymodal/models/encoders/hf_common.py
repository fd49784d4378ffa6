"""Shared Hugging Face loading: the normal ``from_pretrained`` path, offline-aware errors."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from torch import nn

from polymodal.errors import ModelError
from polymodal.models.encoders.base import ATTENTION_LINEARS, Encoder, largest_module_list, linear_names
from polymodal.models.hf_types import SUB_CONFIG, check_supported, hf_type

T = TypeVar("T")


def env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """Whether the Hub's host name resolves; without DNS, go straight to the local cache instead
    of letting huggingface_hub retry for a minute before failing."""
    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def offline(local_files_only: bool | None) -> bool:
    if local_files_only is not None:
        return bool(local_files_only)
    return env_offline() or not hub_reachable()


def unavailable_message(name: str, reason: str = "", preset: str | None = None) -> str:
    what = f"preset {preset!r} needs model {name!r}" if preset else f"model {name!r}"
    msg = (
        f"{what}, which is not available offline. Download it once into a local folder "
        f"(e.g. `hf download {name} --local-dir ./{name.split('/')[-1]}`) and pass that folder path, "
        "or allow network access (HF_HUB_OFFLINE=0)."
    )
    return f"{msg} ({reason})" if reason else msg


def hf_call(name: str, fn: Callable[[], T]) -> T:
    """Run a from_pretrained call; turn 'not found / offline' failures into one clean ModelError."""
    try:
        return fn()
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if Path(name).exists():
            raise ModelError(f"cannot load Hugging Face model from {name}: {first}") from None
        raise ModelError(unavailable_message(name, first)) from None


def hub_kwargs(spec: dict[str, Any], local_files_only: bool | None) -> dict[str, Any]:
    """from_pretrained keyword arguments; remote code only with a pinned revision."""
    kw: dict[str, Any] = {"local_files_only": offline(local_files_only)}
    if spec.get("revision"):
        kw["revision"] = spec["revision"]
    if spec.get("trust_remote_code"):
        if not spec.get("revision"):
            raise ModelError(
                f"trust_remote_code for {spec.get('name_or_path')!r} needs a pinned `revision` "
                "(a commit hash), so the code that runs is the code you reviewed"
            )
        kw["trust_remote_code"] = True
    return kw


def load_backbone(name: str, modality: str, kw: dict[str, Any]) -> nn.Module:
    """AutoModel for ``name``; for a composite (CLIP-like) checkpoint, only the modality's half."""
    from transformers import AutoConfig, AutoModel
    from transformers.models.auto.modeling_auto import MODEL_MAPPING
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no per-tower "Loading weights" bars in our output

    config = hf_call(name, lambda: AutoConfig.from_pretrained(name, **kw))
    check_supported(config.model_type, name)
    if hf_type(config.model_type).encoder_half:  # an encoder-decoder (Whisper): the tower is its encoder
        return hf_call(name, lambda: AutoModel.from_pretrained(name, config=config, **kw)).get_encoder()
    sub_attr = SUB_CONFIG.get(modality)
    # a composite (CLIP-like) checkpoint: a single tower takes its modality's half
    if hf_type(config.model_type).composite and sub_attr and hasattr(config, sub_attr):
        sub_cfg = getattr(config, sub_attr)
        cls: Any = MODEL_MAPPING[type(sub_cfg)]
        return hf_call(name, lambda: cls.from_pretrained(name, **kw))
    return hf_call(name, lambda: AutoModel.from_pretrained(name, config=config, **kw))


def backbone_from_assets(folder: Path) -> nn.Module:
    """Rebuild the architecture from a saved config.json (weights come later from safetensors)."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    if hf_type(config.model_type).encoder_half:
        return AutoModel.from_config(config).get_encoder()
    return AutoModel.from_config(config)


class HFEncoder(Encoder):
    """Common part of the transformers-backed encoders."""

    bf16_safe = True

    model: nn.Module

    def __init__(self, model: nn.Module, processor: Any, spec: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.processor = processor
        self._spec = dict(spec)
        self.pooling = spec.get("pooling", "mean")
        cfg: Any = model.config
        sizes = getattr(cfg, "hidden_sizes", None)
        self.hidden_dim = int(getattr(cfg, "hidden_size", 0) or (sizes[-1] if sizes else 0) or cfg.d_model)
        self.pooled_dim = self.hidden_dim

    def blocks(self) -> list[nn.Module]:
        return largest_module_list(self.model)

    def lora_targets(self) -> list[str]:
        return linear_names(self.model, ATTENTION_LINEARS)[:2] or linear_names(self.model, ("dense",))

    def spec(self) -> dict[str, Any]:
        return dict(self._spec)

    def save_assets(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        config: Any = self.model.config
        config.save_pretrained(folder)
        if self.processor is not None:
            self.processor.save_pretrained(folder)
