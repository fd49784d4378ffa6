"""Prepacked bf16 linears for the runtime's CPU inference copies.

oneDNN runs a bf16 linear whose weight is already in its blocked (AMX/VNNI) layout 1.3-4x
faster than ``F.linear``, which re-lays the weight out on every call (measured on this
project's 2-core AMX CPU: 240 vs 990 GFLOP/s on a 1600x384x1536 product). ``pack_linears``
swaps the plain ``nn.Linear`` layers of an inference-only bf16 copy for ``PackedLinear``,
the same prepacked op torch.compile's CPU backend emits. It is a private torch op, so it is
probed once and skipped wherever it is missing or disagrees with ``F.linear``.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn


def _mkldnn_ops() -> object | None:
    ops = getattr(torch.ops, "mkldnn", None)
    if ops is None or not hasattr(ops, "_reorder_linear_weight") or not hasattr(ops, "_linear_pointwise"):
        return None
    return ops


@lru_cache(maxsize=1)
def packed_linear_works() -> bool:
    """Whether the prepacked bf16 linear exists here and matches ``F.linear`` on a probe."""
    ops = _mkldnn_ops()
    if ops is None:
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        w = torch.randn(48, 32, generator=gen).bfloat16()
        b = torch.randn(48, generator=gen).bfloat16()
        x = torch.randn(2, 5, 32, generator=gen).bfloat16()
        with torch.inference_mode():
            got = ops._linear_pointwise(x, ops._reorder_linear_weight(w), b, "none", [], "")  # type: ignore[attr-defined]
            want = F.linear(x, w, b)
        return bool(got.shape == want.shape and torch.allclose(got.float(), want.float(), atol=0.05, rtol=0.02))
    except (RuntimeError, TypeError):
        return False


class PackedLinear(nn.Module):
    """An inference-only bf16 linear whose weight is stored in oneDNN's prepacked layout.

    ``weight`` (the plain bf16 tensor) stays readable because model code reads
    ``layer.weight.dtype`` / ``.shape``; it is not used for the product.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        ops = _mkldnn_ops()
        assert ops is not None
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.weight = linear.weight.detach().to(torch.bfloat16)
        self.bias = None if linear.bias is None else linear.bias.detach().to(torch.bfloat16)
        self._packed = ops._reorder_linear_weight(self.weight)  # type: ignore[attr-defined]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16), self._packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, prepacked bf16"


def _is_adapter_layer(module: nn.Module) -> bool:
    # peft's tuner layers (LoRA, IA3, ...) hold a ``base_layer`` and read their children's weights
    return type(module).__module__.startswith("peft.") and hasattr(module, "base_layer")


def pack_linears(module: nn.Module) -> int:
    """Replace, in place, every plain ``nn.Linear`` of a bf16 inference copy by a ``PackedLinear``.

    Layers inside adapter layers (peft's LoRA wrappers and the like) are left alone. Returns how many layers were packed.
    """
    if not packed_linear_works():
        return 0
    count = 0
    for name, child in list(module.named_children()):
        if _is_adapter_layer(child):
            continue
        if type(child) is nn.Linear and child.weight.dtype == torch.bfloat16:
            setattr(module, name, PackedLinear(child))
            count += 1
        else:
            count += pack_linears(child)
    return count
