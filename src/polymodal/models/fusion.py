"""Fusion modules: combine several towers' outputs into one vector for the heads.

- ``LateFusion``: pooled embeddings combined by ``concat``, ``sum`` (after a projection to a
  shared width), ``gated`` (a learned softmax gate over modalities of tanh projections, a
  gated multimodal unit generalised to N inputs) or ``product`` (the elementwise product of
  tanh projections: low-rank bilinear pooling, so even a linear head sees how the modalities
  interact, which concat and sum cannot show it).
- ``EarlyFusion``: every modality's token sequence projected to one width, tagged with a
  learned modality embedding, concatenated behind a CLS token into a joint transformer.
- ``CrossAttentionFusion``: the ``query`` modality's tokens attend to the ``context``
  modality's tokens (transformer decoder layers), then masked mean pooling.

Fusion kinds are registered: ``register_fusion("name", build)`` where ``build(spec, towers)``
returns a ``Fusion``; ``model.fusion.kind: name`` then builds it (its own settings go in
``model.fusion.options``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from polymodal.config import FusionSpec
from polymodal.errors import ModelError
from polymodal.models.encoders.base import masked_mean
from polymodal.registry import Registry

Tokens = dict[str, tuple[torch.Tensor, torch.Tensor]]


def _check_heads(dim: int, heads: int) -> None:
    if dim % heads:
        raise ModelError(f"fusion hidden_dim {dim} is not divisible by num_heads {heads}")


class Fusion(nn.Module):
    """``forward(pooled, tokens) -> (B, output_dim)``; ``needs_tokens`` asks for token sequences."""

    needs_tokens = False
    output_dim = 0

    def forward(self, pooled: dict[str, torch.Tensor], tokens: Tokens) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def to_spec(self) -> FusionSpec:
        """The spec that rebuilds this fusion on load (models built from a config keep theirs)."""
        raise ModelError(f"cannot describe fusion {type(self).__name__} for saving; pass fusion_spec to FusionModel")


class LateFusion(Fusion):
    def __init__(self, dims: dict[str, int], combine: str = "concat", hidden_dim: int = 256, dropout: float = 0.0) -> None:
        super().__init__()
        self.order = list(dims)
        self.combine = combine
        self.dropout = nn.Dropout(dropout)
        if combine == "concat":
            self.output_dim = sum(dims.values())
        elif combine in ("sum", "gated", "product"):
            self.proj = nn.ModuleDict({m: nn.Linear(d, hidden_dim) for m, d in dims.items()})
            self.output_dim = hidden_dim
            if combine == "gated":
                self.gate = nn.Linear(sum(dims.values()), len(dims))
        else:
            raise ModelError(f"unknown late-fusion combine {combine!r} (concat, sum, gated, product)")

    def forward(self, pooled: dict[str, torch.Tensor], tokens: Tokens) -> torch.Tensor:
        xs = [pooled[m] for m in self.order]
        if self.combine == "concat":
            return self.dropout(torch.cat(xs, -1))
        projected = torch.stack([self.proj[m](x) for m, x in zip(self.order, xs, strict=True)], 1)  # (B, M, H)
        if self.combine == "sum":
            return self.dropout(projected.sum(1))
        if self.combine == "product":
            return self.dropout(torch.tanh(projected).prod(1))
        weights = torch.softmax(self.gate(torch.cat(xs, -1)), -1).unsqueeze(-1)  # (B, M, 1)
        return self.dropout((weights * torch.tanh(projected)).sum(1))

    def to_spec(self) -> FusionSpec:
        hidden = self.output_dim if self.combine != "concat" else 256
        return FusionSpec(kind="late", combine=self.combine, hidden_dim=hidden)  # type: ignore[arg-type]


class EarlyFusion(Fusion):
    needs_tokens = True

    def __init__(self, dims: dict[str, int], hidden_dim: int = 256, num_layers: int = 1, num_heads: int = 4,
                 dropout: float = 0.0) -> None:
        super().__init__()
        _check_heads(hidden_dim, num_heads)
        self.order = list(dims)
        self.proj = nn.ModuleDict({m: nn.Linear(d, hidden_dim) for m, d in dims.items()})
        self.modality_embed = nn.Parameter(torch.randn(len(dims), hidden_dim) * 0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        layer = nn.TransformerEncoderLayer(hidden_dim, num_heads, hidden_dim * 2, dropout, "gelu", batch_first=True, norm_first=True)
        self.joint = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_dim)
        self.output_dim = hidden_dim

    def forward(self, pooled: dict[str, torch.Tensor], tokens: Tokens) -> torch.Tensor:
        seqs, masks = [], []
        for i, m in enumerate(self.order):
            t, mask = tokens[m]
            seqs.append(self.proj[m](t) + self.modality_embed[i])
            masks.append(mask.bool())
        b = seqs[0].shape[0]
        x = torch.cat([self.cls.expand(b, -1, -1).to(seqs[0].dtype)] + seqs, 1)
        keep = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=x.device)] + masks, 1)
        return self.norm(self.joint(x, src_key_padding_mask=~keep)[:, 0])

    def to_spec(self) -> FusionSpec:
        return FusionSpec(kind="early", hidden_dim=self.output_dim, num_layers=len(self.joint.layers),
                          num_heads=self.joint.layers[0].self_attn.num_heads)


class CrossAttentionFusion(Fusion):
    needs_tokens = True

    def __init__(self, query: str, context: str, dims: dict[str, int], hidden_dim: int = 256, num_layers: int = 1,
                 num_heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        _check_heads(hidden_dim, num_heads)
        for m in (query, context):
            if m not in dims:
                raise ModelError(f"cross-attention names modality {m!r} but the towers are {list(dims)}")
        if query == context:
            raise ModelError("cross-attention needs two different modalities for query and context")
        self.query, self.context = query, context
        self.q_proj = nn.Linear(dims[query], hidden_dim)
        self.c_proj = nn.Linear(dims[context], hidden_dim)
        layer = nn.TransformerDecoderLayer(hidden_dim, num_heads, hidden_dim * 2, dropout, "gelu", batch_first=True, norm_first=True)
        self.layers = nn.TransformerDecoder(layer, num_layers)
        self.norm = nn.LayerNorm(hidden_dim)
        self.output_dim = hidden_dim

    def forward(self, pooled: dict[str, torch.Tensor], tokens: Tokens) -> torch.Tensor:
        q, q_mask = tokens[self.query]
        c, c_mask = tokens[self.context]
        x = self.layers(self.q_proj(q), self.c_proj(c), tgt_key_padding_mask=~q_mask.bool(),
                        memory_key_padding_mask=~c_mask.bool())
        return self.norm(masked_mean(x, q_mask))

    def to_spec(self) -> FusionSpec:
        return FusionSpec(kind="cross_attention", hidden_dim=self.output_dim, num_layers=len(self.layers.layers),
                          num_heads=self.layers.layers[0].self_attn.num_heads, query=self.query, context=self.context)


FusionBuilder = Callable[[FusionSpec, dict[str, Any]], Fusion]
FUSIONS: Registry[FusionBuilder] = Registry("fusion kind", ModelError)


def register_fusion(kind: str, build: FusionBuilder, *, replace: bool = False) -> FusionBuilder:
    """Make ``model.fusion.kind: kind`` build ``build(spec, towers) -> Fusion``."""
    if not callable(build):
        raise ModelError(f"fusion kind {kind!r}: build must be callable, got {build!r}")
    return FUSIONS.register(kind, build, replace=replace)


def _late(spec: FusionSpec, towers: dict[str, Any]) -> Fusion:
    return LateFusion({m: t.output_dim for m, t in towers.items()}, spec.combine, spec.hidden_dim, spec.dropout)


def _early(spec: FusionSpec, towers: dict[str, Any]) -> Fusion:
    dims = {m: t.hidden_dim for m, t in towers.items()}
    return EarlyFusion(dims, spec.hidden_dim, spec.num_layers, spec.num_heads, spec.dropout)


def _cross_attention(spec: FusionSpec, towers: dict[str, Any]) -> Fusion:
    names = list(towers)
    if len(names) < 2:
        raise ModelError("cross-attention fusion needs two towers")
    query = spec.query or ("text" if "text" in names else names[0])
    context = spec.context or next(m for m in names if m != query)
    dims = {m: t.hidden_dim for m, t in towers.items()}
    return CrossAttentionFusion(query, context, dims, spec.hidden_dim, spec.num_layers, spec.num_heads, spec.dropout)


register_fusion("late", _late)
register_fusion("early", _early)
register_fusion("cross_attention", _cross_attention)


def build_fusion(spec: FusionSpec, towers: dict[str, Any]) -> Fusion:
    """A fusion module for these towers (pooled widths for late fusion, token widths otherwise)."""
    fusion = FUSIONS.get(spec.kind)(spec, towers)
    if not isinstance(fusion, Fusion):
        raise ModelError(f"fusion kind {spec.kind!r} built a {type(fusion).__name__}, not a polymodal Fusion")
    return fusion
