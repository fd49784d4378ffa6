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
from polymodal.models.trust import (
    HOW_TO_ALLOW,
    check_local_code,
    is_remote_code_refusal,
    permission,
    pinned_revision,
    require_safetensors,
)

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


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def hf_call(name: str, fn: Callable[[], T]) -> T:
    """Run a from_pretrained call; turn its expected failures into one clean ModelError.

    Not found / offline, a model that needs its own code the caller did not allow, and weight
    files that are not readable safetensors each get a message naming the model and the reason.
    """
    from safetensors import SafetensorError

    try:
        return fn()
    except (OSError, ValueError, KeyError, SafetensorError) as exc:
        if is_remote_code_refusal(exc):
            raise ModelError(f"{name}: the model asks to run its own Python code (trust_remote_code); it was not "
                             f"run. {HOW_TO_ALLOW}") from None
        if isinstance(exc, SafetensorError):
            raise ModelError(f"cannot load Hugging Face model {name}: a weight file is not readable safetensors "
                             f"({_first_line(exc)})") from None
        if "use_safetensors" in str(exc):  # transformers: the repo has no safetensors weights
            raise ModelError(f"{name} has no safetensors weights, and polymodal never loads pickled ones "
                             "(pytorch_model.bin): pick a revision that has model.safetensors, or convert "
                             "the weights where you trust them and pass that folder") from None
        if Path(name).exists():
            raise ModelError(f"cannot load Hugging Face model from {name}: {_first_line(exc)}") from None
        raise ModelError(unavailable_message(name, _first_line(exc))) from None


def hub_kwargs(spec: dict[str, Any], local_files_only: bool | None) -> dict[str, Any]:
    """from_pretrained keyword arguments for ``spec["name_or_path"]``.

    ``trust_remote_code`` is always passed, as the caller's permission (``models.trust``), never
    the spec's own flag: the spec may come from a file. A hub name under that permission is
    pinned to the caller's commit; a local folder naming its own code is refused without it.
    """
    name = str(spec.get("name_or_path") or "")
    if name:
        check_local_code(name)
    kw: dict[str, Any] = {"local_files_only": offline(local_files_only), "trust_remote_code": permission().allowed}
    revision = pinned_revision(name, spec.get("revision"))
    if revision:
        kw["revision"] = revision
    return kw


def local_kwargs(folder: Path) -> dict[str, Any]:
    """from_pretrained keyword arguments for a saved model's tower folder (never the network)."""
    check_local_code(folder)
    return {"local_files_only": True, "trust_remote_code": permission().allowed}


def check_config_code(config: Any, name: str) -> None:
    """Refuse a config that maps to its own code (``auto_map``) when code is not allowed.

    With ``trust_remote_code=False`` transformers would load a known ``model_type``'s built-in
    class in its place, silently not the model the folder describes.
    """
    auto_map = getattr(config, "auto_map", None)
    if auto_map and not permission().allowed:
        refs = ", ".join(f"{k} -> {v}" for k, v in auto_map.items()) if isinstance(auto_map, dict) else str(auto_map)
        raise ModelError(f"{name}: the model asks to run its own Python code (auto_map: {refs}); it was not run. "
                         f"{HOW_TO_ALLOW}")


def load_backbone(name: str, modality: str, kw: dict[str, Any]) -> nn.Module:
    """AutoModel for ``name``; for a composite (CLIP-like) checkpoint, only the modality's half."""
    from transformers import AutoConfig, AutoModel
    from transformers.models.auto.modeling_auto import MODEL_MAPPING
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no per-tower "Loading weights" bars in our output

    config = hf_call(name, lambda: AutoConfig.from_pretrained(name, **kw))
    check_config_code(config, name)
    check_supported(config.model_type, name)
    require_safetensors(name)
    kw = {**kw, "use_safetensors": True}  # never torch.load a pickled .bin
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

    kw = local_kwargs(folder)
    config = hf_call(str(folder), lambda: AutoConfig.from_pretrained(folder, **kw))
    check_config_code(config, str(folder))
    allowed = {"trust_remote_code": kw["trust_remote_code"]}
    if hf_type(config.model_type).encoder_half:
        return hf_call(str(folder), lambda: AutoModel.from_config(config, **allowed)).get_encoder()
    return hf_call(str(folder), lambda: AutoModel.from_config(config, **allowed))


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
