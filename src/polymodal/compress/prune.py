"""Pruning: structured (whole MLP / conv channels removed) or magnitude (unstructured).

Structured: in every transformer block's MLP (``intermediate.dense`` -> ``output.dense`` in
BERT / ViT, ``mlp.fc1`` -> ``mlp.fc2`` in CLIP-like towers) the ``sparsity`` fraction of hidden
channels with the smallest importance (L2 norm of the channel's input row times that of its
output column) is cut out: both linears really get narrower, so the model is smaller and
faster. A tower without such blocks but with convolutions (EfficientNet-Lite0, a CNN audio
tower) loses the ``sparsity`` fraction of the channels of every coupled conv group through
torch-pruning (``compress.prune_conv``). The kept widths and shapes are recorded
(``register_transform("pruned", rebuild)``) so loading builds the narrow layers before the
weights fill them. Towers with neither are named and left whole, or refused with ``strict``.

Unstructured (``structured=False``): the smallest-magnitude ``sparsity`` fraction of each
linear layer's weights is set to zero. The architecture is unchanged, so nothing is rebuilt;
the model is not faster (dense kernels) and not smaller on disk (zeros are stored).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from polymodal.compress.prune_conv import has_convs, prune_conv_tower, reshape
from polymodal.errors import ModelError
from polymodal.models.transforms import record_transform, register_transform

KIND = "pruned"
MLP_PAIRS = (("intermediate.dense", "output.dense"), ("mlp.fc1", "mlp.fc2"))


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def _linear(module: nn.Module | None) -> nn.Linear | None:
    return module if type(module) is nn.Linear else None


def mlp_blocks(model: nn.Module, prefix: str) -> list[tuple[str, str]]:
    """(up, down) linear names of every transformer MLP under ``prefix``."""
    found = []
    for name, module in model.named_modules():
        if not name.startswith(prefix):
            continue
        for up, down in MLP_PAIRS:
            try:
                a, b = _linear(module.get_submodule(up)), _linear(module.get_submodule(down))
            except AttributeError:
                continue
            if a is not None and b is not None and a.out_features == b.in_features:
                found.append((f"{name}.{up}", f"{name}.{down}"))
    return found


def _narrow(up: nn.Linear, down: nn.Linear, keep: torch.Tensor) -> tuple[nn.Linear, nn.Linear]:
    new_up = nn.Linear(up.in_features, len(keep), bias=up.bias is not None)
    new_down = nn.Linear(len(keep), down.out_features, bias=down.bias is not None)
    with torch.no_grad():
        new_up.weight.copy_(up.weight[keep])
        if up.bias is not None and new_up.bias is not None:
            new_up.bias.copy_(up.bias[keep])
        new_down.weight.copy_(down.weight[:, keep])
        if down.bias is not None and new_down.bias is not None:
            new_down.bias.copy_(down.bias)
    return new_up, new_down


def prune(model: Any, sparsity: float, *, structured: bool = True, towers: list[str] | None = None,
          strict: bool = False) -> tuple[Any, str]:
    """A pruned copy of ``model`` and a one-line summary (see the module docstring)."""
    if not 0.0 < sparsity < 1.0:
        raise ModelError(f"--sparsity must be between 0 and 1 (exclusive), got {sparsity}")
    names = list(getattr(model, "towers", {}))
    chosen = list(towers or names)
    unknown = [t for t in chosen if t not in names]
    if unknown:
        raise ModelError(f"no tower {', '.join(unknown)} to prune (the model has: {', '.join(names)})")
    if any(t.get("kind") == "int8_dynamic" for t in getattr(model, "transforms", [])):
        raise ModelError("prune the float32 model, then quantize the pruned one")
    out = copy.deepcopy(model).eval()
    if not structured:
        count = 0
        with torch.no_grad():
            for m in chosen:
                for module in out.tower(m).modules():
                    if type(module) is nn.Linear:
                        w = module.weight
                        k = int(sparsity * w.numel())
                        if k:
                            cut = w.abs().flatten().kthvalue(k).values
                            w.masked_fill_(w.abs() <= cut, 0.0)
                            count += 1
        record_transform(out, KIND, structured=False, sparsity=sparsity, towers=chosen)
        return out, f"prune: {sparsity:.0%} of the weights zeroed by magnitude in {count} linear layers (dense; no speed-up)"
    widths: dict[str, int] = {}
    shapes: dict[str, list[int]] = {}
    skipped: dict[str, str] = {}  # tower -> why it was left whole
    for m in chosen:
        blocks = mlp_blocks(out, f"towers.{m}.")
        if not blocks and has_convs(out.tower(m).encoder):
            reason = _prune_convs(out, m, sparsity, shapes)
            if reason:
                skipped[m] = reason
            continue
        if not blocks:
            skipped[m] = "no transformer MLP blocks or convolutions"
            continue
        for up_name, down_name in blocks:
            up, down = out.get_submodule(up_name), out.get_submodule(down_name)
            importance = up.weight.detach().norm(dim=1) * down.weight.detach().norm(dim=0)
            n_keep = max(1, round(up.out_features * (1 - sparsity)))
            keep = importance.topk(n_keep).indices.sort().values
            new_up, new_down = _narrow(up, down, keep)
            _set(out, up_name, new_up)
            _set(out, down_name, new_down)
            widths[up_name] = n_keep
    if skipped and strict:
        raise ModelError("structured pruning cannot prune " + "; ".join(f"the {m} tower ({why})" for m, why in skipped.items())
                         + "; drop --strict to leave it whole")
    if not widths and not shapes:
        raise ModelError(f"no transformer MLP blocks or convolutions to prune in tower(s) {', '.join(chosen)}")
    record_transform(out, KIND, structured=True, sparsity=sparsity, towers=chosen, mlp_widths=widths,
                     **({"conv_shapes": shapes} if shapes else {}))
    done = [f"{sparsity:.0%} of the MLP channels removed in {len(widths)} blocks"] if widths else []
    if shapes:
        convs = sum(1 for shape in shapes.values() if len(shape) == 3)  # [out, in, groups]
        done.append(f"{sparsity:.0%} of the conv channels removed ({convs} convolutions narrowed) in "
                     f"{', '.join(pruned_towers(shapes))}")
    note = "".join(f"; left whole: {m} ({why})" for m, why in skipped.items())
    return out, f"prune: {'; '.join(done)}{note}"


def _prune_convs(model: Any, modality: str, sparsity: float, shapes: dict[str, list[int]]) -> str | None:
    """Prune the conv channels of one tower in place, adding its new layer shapes to ``shapes``;
    why it was left whole when torch-pruning could not handle it (the tower is then put back)."""
    tower = model.tower(modality)
    backup = copy.deepcopy(tower)
    try:
        changed = prune_conv_tower(tower, tower.preprocess(example_items(tower)), sparsity)
    except ModelError:
        raise
    except Exception as exc:  # a layer torch-pruning cannot trace or cut: a partly cut tower must not stay
        model.towers[modality] = backup
        return f"torch-pruning failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
    shapes.update({f"towers.{modality}.{name}": shape for name, shape in changed.items()})
    return None


def pruned_towers(names: Any) -> list[str]:
    """The towers a ``pruned`` entry's layer names (``towers.<m>....``) belong to."""
    return sorted({str(name).split(".")[1] for name in names})


def example_items(tower: Any) -> list[Any]:
    """Two raw items of the tower's modality for torch-pruning's trace."""
    from polymodal.export.onnx import _samples

    return _samples(tower, 2, 7)


def _rebuild(model: nn.Module, entry: dict[str, Any]) -> nn.Module:
    if not entry.get("structured"):
        return model
    pairs = dict(p for m in entry.get("towers", []) for p in mlp_blocks(model, f"towers.{m}."))
    for up_name, width in entry.get("mlp_widths", {}).items():
        if up_name not in pairs:
            raise ModelError(f"pruned transform names MLP {up_name!r}, which this model does not have")
        up: Any = model.get_submodule(up_name)
        down: Any = model.get_submodule(pairs[up_name])
        new_up, new_down = _narrow(up, down, torch.arange(int(width)))
        _set(model, up_name, new_up)
        _set(model, pairs[up_name], new_down)
    reshape(model, entry.get("conv_shapes", {}))
    return model


register_transform(KIND, _rebuild, meta_safe=True)  # it only slices and replaces layers
