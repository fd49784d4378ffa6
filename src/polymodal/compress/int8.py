"""int8 dynamic quantization of a model's towers: int8 weights, int8 activations at run time.

Linear layers become ``Int8DynamicLinear``: the weight is stored as int8 with one float32
scale per output channel (symmetric, torch.ao's ``PerChannelMinMaxObserver``) and runs through
torch.ao's dynamic quantized kernel (``quantized::linear_dynamic``: the activations are
quantized per batch at run time, the kernel behind ``torch.ao.quantization.quantize_dynamic``).
Embedding tables become ``Int8Embedding`` (int8 rows, one scale per row, dequantized on lookup;
weight-only, they have no matmul).

Why not ``quantize_dynamic``'s own modules: their state holds a packed C++ object, which
safetensors cannot store. These modules keep plain int8 / float32 tensors as buffers, so the
int8 weights themselves go to ``model.safetensors`` (the folder is ~4x smaller for those
layers) and the kernel's packed form is rebuilt from them on first use. Loading redoes the
structural change (``register_transform("int8_dynamic", rebuild)``) and then the weights fill it.

Layers with weights this method cannot quantize (convolutions, ``nn.MultiheadAttention``'s
projections, which the module reads directly) are named and kept in float32, or refused with
``strict=True``.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.transforms import record_transform, register_transform

KIND = "int8_dynamic"
SCHEME = "int8 per-channel symmetric weights; int8 dynamic per-batch activations (torch.ao quantized::linear_dynamic)"
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)


def _per_channel(weight: torch.Tensor, axis: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 values, float32 scale per slice along ``axis``), symmetric as torch.ao's weight observer."""
    from torch.ao.quantization.observer import PerChannelMinMaxObserver

    observer = PerChannelMinMaxObserver(ch_axis=axis, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    observer(weight.detach().float())
    scale, zero = observer.calculate_qparams()
    with warnings.catch_warnings():  # torch marks quantized tensors deprecated (torchao's subclasses replace them)
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        q = torch.quantize_per_channel(weight.detach().float(), scale.double(), zero.long(), axis, torch.qint8)
    return q.int_repr(), scale.float()


class Int8DynamicLinear(nn.Module):
    """``nn.Linear`` with int8 weights (per output channel) and dynamic int8 activations."""

    weight_int8: torch.Tensor
    weight_scale: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)
        self._packed: Any = None
        self._packed_key: tuple[int, ...] = ()

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8DynamicLinear:
        out = cls(linear.in_features, linear.out_features, linear.bias is not None)
        q, scale = _per_channel(linear.weight)
        out.weight_int8.copy_(q)
        out.weight_scale.copy_(scale)
        if linear.bias is not None and out.bias is not None:
            out.bias.copy_(linear.bias.detach().float())
        return out

    def _packed_params(self) -> Any:
        tensors = [t for t in (self.weight_int8, self.weight_scale, self.bias) if t is not None]
        key = tuple(v for t in tensors for v in (t.data_ptr(), t._version))
        if self._packed is None or key != self._packed_key:  # rebuilt after load_state_dict
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
                qweight = torch._make_per_channel_quantized_tensor(
                    self.weight_int8, self.weight_scale.double(), torch.zeros(self.out_features, dtype=torch.long), 0)
            self._packed = torch.ops.quantized.linear_prepack(qweight, self.bias)
            self._packed_key = key
        return self._packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        y = torch.ops.quantized.linear_dynamic(x.float().contiguous(), self._packed_params(), reduce_range=True)
        return y.to(dtype)  # type: ignore[no-any-return]

    def dequantized_weight(self) -> torch.Tensor:
        return self.weight_int8.float() * self.weight_scale[:, None]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, int8"


class Int8Embedding(nn.Module):
    """``nn.Embedding`` stored as int8 rows with one float32 scale each (weight-only)."""

    weight_int8: torch.Tensor
    weight_scale: torch.Tensor

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.register_buffer("weight_int8", torch.zeros(num_embeddings, embedding_dim, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(num_embeddings))

    @classmethod
    def from_embedding(cls, emb: nn.Embedding) -> Int8Embedding:
        out = cls(emb.num_embeddings, emb.embedding_dim, emb.padding_idx)
        q, scale = _per_channel(emb.weight)
        out.weight_int8.copy_(q)
        out.weight_scale.copy_(scale)
        return out

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight_int8).float() * F.embedding(ids, self.weight_scale[:, None])

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8"


@dataclass
class QuantReport:
    """What ``quantize_int8`` did: layers quantized, and layers with weights it left in float32 (why)."""

    linear: list[str] = field(default_factory=list)
    embedding: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        text = f"int8: {len(self.linear)} linear and {len(self.embedding)} embedding layers quantized"
        if self.skipped:
            kinds: dict[str, list[str]] = {}
            for name, why in self.skipped.items():
                kinds.setdefault(why, []).append(name)
            parts = [f"{len(names)} x {why} (e.g. {names[0]})" for why, names in kinds.items()]
            text += "; kept in float32: " + "; ".join(parts)
        return text


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _plan(model: nn.Module, towers: list[str], embeddings: bool) -> QuantReport:
    report = QuantReport()
    inside_mha: set[str] = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            inside_mha.update(f"{name}.{sub}" for sub, _ in module.named_modules() if sub)
    prefixes = tuple(f"towers.{m}." for m in towers)
    for name, module in model.named_modules():
        if not name.startswith(prefixes):
            continue
        own = [p for p, _ in module.named_parameters(recurse=False)]
        if name in {f"towers.{m}.projection" for m in towers}:
            if isinstance(module, nn.Linear):  # Tower.spec() records a projection only while it is an nn.Linear
                report.skipped[name] = "tower projection (kept float32 so the saved spec still names it)"
        elif name in inside_mha:
            if own:
                report.skipped[name] = "nn.MultiheadAttention projection (read directly by its module)"
        elif type(module) is nn.Linear or isinstance(module, nn.modules.linear.NonDynamicallyQuantizableLinear):
            report.linear.append(name)
        elif type(module) is nn.Embedding and embeddings:
            report.embedding.append(name)
        elif isinstance(module, nn.MultiheadAttention):
            report.skipped[name] = "nn.MultiheadAttention (its in_proj weights are read directly)"
        elif "weight" in own and module.weight.dim() >= 2 and not isinstance(module, (*_NORMS, nn.Embedding)):
            report.skipped[name] = f"{type(module).__name__} (dynamic int8 covers linear layers only)"
    return report


def quantize_int8(model: Any, towers: list[str] | None = None, *, strict: bool = False,
                  embeddings: bool = True) -> tuple[Any, QuantReport]:
    """An int8 copy of ``model`` (the original is untouched) and what was quantized.

    ``towers``: modalities to quantize (default: all); ``strict``: refuse a model with layers
    this method cannot quantize (named in the error) instead of keeping them in float32;
    ``embeddings``: store embedding tables as int8 too (weight-only; the largest part of a
    text tower's size on disk).
    """
    names = list(getattr(model, "towers", {}))
    if not names:
        raise ModelError("int8 quantization works on polymodal models with towers")
    chosen = list(towers or names)
    unknown = [t for t in chosen if t not in names]
    if unknown:
        raise ModelError(f"no tower {', '.join(unknown)} to quantize (the model has: {', '.join(names)})")
    if any(t.get("kind") == KIND for t in getattr(model, "transforms", [])):
        raise ModelError("this model is already int8-quantized")
    report = _plan(model, chosen, embeddings)
    if strict and report.skipped:
        first = ", ".join(f"{n} ({why})" for n, why in list(report.skipped.items())[:3])
        raise ModelError(f"int8-dynamic cannot quantize {len(report.skipped)} layer(s): {first}; "
                         "drop --strict to keep them in float32")
    if not report.linear and not report.embedding:
        raise ModelError(f"towers {', '.join(chosen)} have no linear or embedding layers to quantize")
    out = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name in report.linear:
            _set(out, name, Int8DynamicLinear.from_linear(out.get_submodule(name)))
        for name in report.embedding:
            _set(out, name, Int8Embedding.from_embedding(out.get_submodule(name)))
    out.encode_bf16 = False  # the int8 kernels take float32 activations
    record_transform(out, KIND, towers=chosen, linear=report.linear, embedding=report.embedding,
                     skipped=sorted(report.skipped), scheme=SCHEME)
    return out, report


def _rebuild(model: nn.Module, entry: dict[str, Any]) -> nn.Module:
    """Swap the recorded layers for empty int8 ones of the same shapes (the weights load next)."""
    try:
        for name in entry.get("linear", []):
            lin: Any = model.get_submodule(name)
            _set(model, name, Int8DynamicLinear(lin.in_features, lin.out_features, lin.bias is not None))
        for name in entry.get("embedding", []):
            emb: Any = model.get_submodule(name)
            _set(model, name, Int8Embedding(emb.num_embeddings, emb.embedding_dim, emb.padding_idx))
    except (AttributeError, TypeError) as exc:
        raise ModelError(f"int8_dynamic transform names a layer this model does not have ({exc})") from None
    setattr(model, "encode_bf16", False)  # noqa: B010 - a plain attribute of polymodal models
    return model


register_transform(KIND, _rebuild)
