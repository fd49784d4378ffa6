"""polymodal: align, fine-tune, evaluate and compare multimodal models.

The top-level package stays light: heavy modules (torch, transformers) are imported
only when a function that needs them is called.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(name_or_path: str, **kwargs: Any) -> Any:
    """Load a model from a preset name, a save_pretrained folder, an HF folder/name or a run dir."""
    from polymodal.api import load as _load

    return _load(name_or_path, **kwargs)
