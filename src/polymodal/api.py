"""``polymodal.load``: one entry point for presets, saved models, run dirs and HF models.

The loading itself is the model layer's (``polymodal.models.loading``); this is its public
name, so the model layer never imports the entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load(name_or_path: str | Path, *, local_files_only: bool | None = None, modality: str | None = None,
         trust_remote_code: bool | None = None, revision: str | None = None, **kw: Any) -> Any:
    """Model for a preset name, a save_pretrained folder, a run dir, or an HF folder / hub name.

    ``local_files_only`` (default: the HF_HUB_OFFLINE environment setting) keeps hub models
    from touching the network; ``modality`` forces the tower type of a plain HF model.
    ``trust_remote_code=True`` lets the model's own Python code run: only you decide that,
    never a file in the folder; a hub model then needs ``revision``, the 40-hex commit whose
    code you reviewed. ``revision`` also pins a hub model's download.
    """
    from polymodal.models.loading import load_model

    return load_model(name_or_path, local_files_only=local_files_only, modality=modality,
                      trust_remote_code=trust_remote_code, revision=revision, **kw)
