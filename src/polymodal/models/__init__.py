"""Model building blocks: towers, dual encoders, fusion models, heads, presets, save/load.

Import what you need from the submodules; this package re-exports the main names lazily so
``import polymodal.models`` stays cheap.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Tower": "polymodal.models.towers", "build_tower": "polymodal.models.towers",
    "EmbeddingModel": "polymodal.models.dual", "DualEncoder": "polymodal.models.dual",
    "WrappedDualEncoder": "polymodal.models.wrapped", "FusionModel": "polymodal.models.fused",
    "EarlyFusion": "polymodal.models.fusion", "LateFusion": "polymodal.models.fusion",
    "CrossAttentionFusion": "polymodal.models.fusion", "ClassificationHead": "polymodal.models.heads",
    "MultiLabelHead": "polymodal.models.heads", "RegressionHead": "polymodal.models.heads",
    "build_model": "polymodal.models.build", "build_preset": "polymodal.models.build",
    "load_pretrained": "polymodal.models.hub", "register_model_class": "polymodal.models.hub",
    "load_model": "polymodal.models.loading", "record_transform": "polymodal.models.transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
