"""Structured conv-channel pruning of a convolutional tower with torch-pruning, and its rebuild on load.

torch-pruning traces the tower (encoder + projection) once and groups every layer whose channels
are coupled: a conv's output channels, its BatchNorm, the depthwise conv that follows (whose groups
shrink with it), the next conv's input channels, and the residual adds that tie a stage's block
outputs together. In each group the ``sparsity`` fraction of channels with the smallest L2 norm
(summed over the group) is removed, rounded to a multiple of ``ROUND_TO`` so the narrow convs stay
SIMD-friendly. The layer that makes the pooled features (and the projection) keeps its output
width, so the tower's embedding and ``pooled_dim`` do not change.

What is recorded is the resulting shape of every changed layer (``shapes_of``); loading redoes
it with plain torch (``reshape``: keep the first channels, then the saved weights fill them), so
a pruned folder loads without torch-pruning installed.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from polymodal.errors import ModelError

ROUND_TO = 8
_SHAPED = (nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.Linear, nn.LayerNorm)


def _shape(module: nn.Module) -> list[int] | None:
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        return [module.out_channels, module.in_channels, module.groups]
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
        return [module.num_features]
    if isinstance(module, nn.Linear):
        return [module.out_features, module.in_features]
    if isinstance(module, nn.LayerNorm):
        return [int(module.normalized_shape[0])]
    return None


def shapes_of(module: nn.Module, prefix: str) -> dict[str, list[int]]:
    """Name (with ``prefix``) -> shape of every conv / norm / linear under ``module``, and of every
    parameter held loose by another module (ConvNeXt's layer scale, which torch-pruning cuts too)."""
    out = {}
    for name, child in module.named_modules():
        shape = _shape(child)
        if shape is not None:
            out[f"{prefix}{name}"] = shape
        else:
            for pname, param in child.named_parameters(recurse=False):
                out[f"{prefix}{name}.{pname}" if name else f"{prefix}{pname}"] = list(param.shape)
    return out


def has_convs(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv1d | nn.Conv2d) for m in module.modules())


def _pooled_layer(tower: Any) -> nn.Module | None:
    """The last conv whose output width is the tower's pooled width: it makes the features."""
    last = None
    for m in tower.encoder.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d) and m.out_channels == tower.encoder.pooled_dim:
            last = m
    return last


def prune_conv_tower(tower: Any, example: Any, sparsity: float) -> dict[str, list[int]]:
    """Remove ``sparsity`` of the channels of every coupled conv group of ``tower`` in place;
    the new shapes of the layers that changed (names relative to the tower)."""
    try:
        import torch_pruning as tp
    except ImportError:
        raise ModelError("conv-channel pruning needs torch-pruning: pip install 'polymodal[compress]'") from None
    before = shapes_of(tower, "")
    keep = [m for m in (_pooled_layer(tower), tower.projection) if isinstance(m, nn.Module)]
    was_training = tower.training
    tower.eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unwrapped parameters detected")  # handled: shapes_of records them
        pruner = tp.pruner.BasePruner(tower, example, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                      pruning_ratio=sparsity, ignored_layers=keep, round_to=ROUND_TO,
                                      forward_fn=lambda model, inputs: model(inputs))  # a dict is one argument
        with torch.no_grad():
            pruner.step()
    tower.train(was_training)
    after = shapes_of(tower, "")
    return {name: shape for name, shape in after.items() if before.get(name) != shape}


def _cut(t: Any, *sizes: int) -> Any:
    """The first ``sizes`` entries of a parameter, as a parameter (None stays None)."""
    if t is None:
        return None
    return nn.Parameter(t[tuple(slice(0, s) for s in sizes)].clone(), requires_grad=t.requires_grad)


def _loose_parameter(model: nn.Module, name: str, shape: list[int]) -> None:
    owner, _, attr = name.rpartition(".")
    try:
        parent = model.get_submodule(owner)
        param = parent.get_parameter(attr)
    except AttributeError:
        raise ModelError(f"pruned transform names layer {name!r}, which this model does not have") from None
    setattr(parent, attr, _cut(param, *shape))


def reshape(model: nn.Module, shapes: dict[str, list[int]]) -> None:
    """Give each named layer of ``model`` its recorded shape (keeping its first channels; the
    weights loaded afterwards replace them). Works on meta tensors: nothing full-width is copied."""
    for name, shape in shapes.items():
        try:
            m = model.get_submodule(name)
        except AttributeError:
            _loose_parameter(model, name, shape)
            continue
        if not isinstance(m, _SHAPED):
            raise ModelError(f"pruned transform records a shape for {name!r}, a {type(m).__name__}; "
                             "only convolutions, batch/layer norms and linears can be reshaped")
        if isinstance(m, nn.Conv1d | nn.Conv2d):
            out, inp, groups = shape
            m.weight = _cut(m.weight, out, inp // groups)
            m.bias = _cut(m.bias, out)
            m.out_channels, m.in_channels, m.groups = out, inp, groups
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            (n,) = shape
            m.weight, m.bias = _cut(m.weight, n), _cut(m.bias, n)
            for buf in ("running_mean", "running_var"):
                value = getattr(m, buf)
                if value is not None:
                    setattr(m, buf, value[:n].clone())
            m.num_features = n
        elif isinstance(m, nn.Linear):
            out, inp = shape
            m.weight = _cut(m.weight, out, inp)
            m.bias = _cut(m.bias, out)
            m.out_features, m.in_features = out, inp
        else:
            (n,) = shape
            m.weight, m.bias = _cut(m.weight, n), _cut(m.bias, n)
            m.normalized_shape = (n,)
