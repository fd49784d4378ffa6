"""The one model loader: preset name, save_pretrained folder, run dir, HF folder or hub name.

``polymodal.load``, evaluation, distillation teachers and ``build_model`` (a config's
``model.preset`` naming a folder) all come here, so every caller accepts the same names and
gets the same errors. It lives in the model layer and imports nothing above it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from polymodal.errors import ModelError
from polymodal.models.hf_types import check_supported, default_pooling, is_wrapped, tower_modality
from polymodal.models.hub import is_polymodal_folder, load_pretrained
from polymodal.models.presets import is_preset
from polymodal.models.trust import caller_scope


def load_model(name_or_path: str | Path, *, local_files_only: bool | None = None, modality: str | None = None,
               trust_remote_code: bool | None = None, revision: str | None = None, **kw: Any) -> Any:
    """Model for a preset name, a save_pretrained folder, a run dir, or an HF folder / hub name.

    ``local_files_only`` (default: the HF_HUB_OFFLINE environment setting) keeps hub models
    from touching the network; ``modality`` forces the tower type of a plain HF model;
    ``trust_remote_code=True`` lets the model's own Python code run (never a file's say-so;
    a hub model needs ``revision``, the 40-hex commit whose code you reviewed; None keeps the
    permission already in effect, see ``models.trust``); ``revision`` also pins a hub
    model's download; ``kw`` goes to a dual preset (``init_temperature``, ``learn_temperature``).
    The model comes back in eval mode, as ``from_pretrained`` returns models; call
    ``.train()`` to fine-tune.
    """
    with caller_scope(trust_remote_code, revision):
        model = _resolve(name_or_path, local_files_only, modality, revision, **kw)
    model.eval()
    return model


def _resolve(name_or_path: str | Path, local_files_only: bool | None, modality: str | None, revision: str | None,
             **kw: Any) -> Any:
    # build.py imports this module for config presets that name a folder; import it here lazily
    from polymodal.models.build import build_preset

    name = str(name_or_path)
    if is_preset(name) and not Path(name).exists():
        return build_preset(name, local_files_only=local_files_only, **kw)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{path} is a file; pass a model folder, a run directory or a preset name")
        if is_polymodal_folder(path):
            return load_pretrained(path)
        if is_polymodal_folder(path / "model"):  # a run dir: its best model is saved under model/
            return load_pretrained(path / "model")
        cfg = path / "config.json"
        if cfg.is_file():
            try:
                if "model_type" in json.loads(cfg.read_text(encoding="utf-8")):
                    return hf_model(str(path), True, modality, revision)
            except json.JSONDecodeError:
                raise ModelError(f"{cfg} is not valid JSON") from None
        raise ModelError(f"{path} is not a polymodal model folder, a run directory (with model/) or a Hugging Face model folder")
    if "/" in name and not name.startswith((".", "/")):
        return hf_model(name, local_files_only, modality, revision)
    raise ModelError(f"{name!r} is neither a known preset (see `polymodal models`) nor an existing folder")


def hf_model(name: str, local_files_only: bool | None, modality: str | None, revision: str | None = None) -> nn.Module:
    """A plain transformers checkpoint as a polymodal model: a whole CLIP-like pair becomes a
    ``WrappedDualEncoder``, anything else a one-tower ``EmbeddingModel`` (see ``hf_types``).
    Its code may run only as the caller's permission in effect says (``models.trust``)."""
    from transformers import AutoConfig

    from polymodal.models.dual import EmbeddingModel
    from polymodal.models.encoders.hf_common import check_config_code, hf_call, hub_kwargs
    from polymodal.models.towers import build_tower
    from polymodal.models.trust import permission
    from polymodal.models.wrapped import WrappedDualEncoder

    kw = hub_kwargs({"name_or_path": name, "revision": revision}, local_files_only)
    config = hf_call(name, lambda: AutoConfig.from_pretrained(name, **kw))
    check_config_code(config, name)
    model_type = str(config.model_type)
    check_supported(model_type, name)
    if modality is None and is_wrapped(model_type):
        return WrappedDualEncoder.from_hub(name, local_files_only=local_files_only, revision=revision)
    modality = modality or tower_modality(model_type)
    # the loader writes this spec from the caller's arguments: their permission is its own
    perm = permission()
    spec = {"modality": modality, "source": "hf", "name_or_path": name, "pooling": default_pooling(model_type, modality),
            "trust_remote_code": perm.allowed, "revision": perm.revision or revision}
    model = EmbeddingModel({modality: build_tower(spec, local_files_only=local_files_only)})
    model.card_info = {"name": name}
    return model
