"""The record of what was done to a model after it was built: LoRA merged, quantized, pruned.

A model carries ``model.transforms``: an ordered list of ``{"kind": str, **details}`` (JSON
values only). ``save_pretrained`` writes it to ``config.json``; loading rebuilds the
architecture from the model's own config, then redoes each recorded transform that changes
the architecture, and only then loads the weights, so a changed model (a pruned layer, a
quantized linear) still finds every tensor a home.

Each kind is registered once, next to the code that applies it, with how to redo it on a
fresh model (``None`` when the weights alone carry the change, as for merged LoRA).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

from torch import nn

from polymodal.errors import ModelError

# (fresh model, the recorded entry) -> the model with the same structure as the one saved
Rebuild = Callable[[nn.Module, dict[str, Any]], nn.Module]

_KINDS: dict[str, Rebuild | None] = {}
_META_SAFE: set[str] = set()


def register_transform(kind: str, rebuild: Rebuild | None = None, *, meta_safe: bool = False) -> None:
    """Make ``kind`` recordable and loadable; ``rebuild`` redoes its structural change on load.

    ``meta_safe``: the rebuild only reshapes or replaces layers and works on a model whose
    parameters are on the meta device (no data). A folder whose structural transforms all are
    is then built without allocating the original's weights (``builds_empty``)."""
    if not isinstance(kind, str) or not kind.strip():
        raise ModelError(f"a transform kind is a non-empty string, not {kind!r}")
    if rebuild is not None and not callable(rebuild):
        raise ModelError(f"transform {kind!r}: rebuild must be callable (model, entry) -> model")
    if kind in _KINDS and _KINDS[kind] is not rebuild:
        raise ModelError(f"transform kind {kind!r} is already registered with another rebuild function")
    _KINDS[kind] = rebuild
    if meta_safe:
        _META_SAFE.add(kind)


def builds_empty(transforms: list[dict[str, Any]]) -> bool:
    """Whether a folder with these transforms can be built with empty (meta) parameters: at least
    one recorded change is structural and every structural one is ``meta_safe``. A pruned folder
    then never holds its full-width weights (random ones, about to be replaced) in memory."""
    structural = [t["kind"] for t in transforms if _known(t["kind"]) and _KINDS[t["kind"]] is not None]
    return bool(structural) and all(kind in _META_SAFE for kind in structural)


def registered_transforms() -> list[str]:
    return sorted(_KINDS)


# LoRA adapters folded into the base weights: the architecture is the original one
register_transform("lora_merged")

# kinds registered by polymodal's own modules above the model layer (imported by name when a
# saved folder records one, as hub.BUILTIN_MODEL_MODULES are for model classes)
BUILTIN_TRANSFORM_MODULES = {
    "int8_dynamic": "polymodal.compress.int8",
    "pruned": "polymodal.compress.prune",
    "distilled": "polymodal.compress.distill",
    "pruned_recovered": "polymodal.compress.recovery",
}


def _known(kind: str) -> bool:
    if kind not in _KINDS and kind in BUILTIN_TRANSFORM_MODULES:
        importlib.import_module(BUILTIN_TRANSFORM_MODULES[kind])
    return kind in _KINDS


def record_transform(model: Any, kind: str, **details: Any) -> dict[str, Any]:
    """Append ``{"kind": kind, **details}`` to ``model.transforms`` and return the entry."""
    if not _known(kind):
        raise ModelError(f"unknown transform kind {kind!r} (registered: {', '.join(registered_transforms())}); "
                         "register it with polymodal.models.transforms.register_transform")
    entry = {"kind": kind, **details}
    try:
        json.dumps(entry)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"transform {kind!r}: details must be JSON values ({exc})") from None
    model.transforms = [*getattr(model, "transforms", []), entry]
    return entry


def as_transforms(value: Any, where: str) -> list[dict[str, Any]]:
    """A checked copy of a transforms list (from config.json: absent in older folders -> [])."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ModelError(f"{where}: transforms must be a list of {{'kind': ...}} objects, got {type(value).__name__}")
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            raise ModelError(f"{where}: transforms[{i}] is not an object with a string 'kind': {entry!r}")
        out.append(dict(entry))
    return out


def reapply(model: nn.Module, transforms: list[dict[str, Any]], where: str) -> nn.Module:
    """Redo the recorded structural changes on a freshly built model, in order."""
    for entry in transforms:
        kind = entry["kind"]
        if not _known(kind):
            raise ModelError(f"{where} records transform {kind!r}, which this polymodal does not know "
                             f"(known: {', '.join(registered_transforms())}); upgrade polymodal or import "
                             "the module that registers it")
        rebuild = _KINDS[kind]
        if rebuild is not None:
            model = rebuild(model, entry)
    return model


def describe(entry: dict[str, Any]) -> str:
    """One line for the model card: ``lora_merged (towers=['text'], r=8, alpha=16)``."""
    details = ", ".join(f"{k}={v!r}" for k, v in entry.items() if k != "kind")
    return f"{entry['kind']} ({details})" if details else str(entry["kind"])
