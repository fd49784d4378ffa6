"""Named models as data: one JSON file per preset, registered by an explicit call.

The presets shipped with polymodal are the files listed in ``PACKAGED``; they are registered
the first time the registry is read (``register_packaged``), never as an import side effect of
some other module. Users add their own with ``register_preset(path_to_json)``.

A preset file: ``name``, ``description``, ``kind`` (``dual`` | ``single`` | ``wrapped``),
``offline`` (works with no network), ``towers`` (TowerSpec dicts) and ``embed_dim`` for
dual/single presets, ``hf_model`` for wrapped CLIP-like models, and optionally ``params``
and ``weights``: a safetensors file beside the JSON holding the parts that are not the
packaged towers' (an aligned preset's projections and temperature), loaded over the built
model by :func:`load_preset_weights`. A preset without ``weights`` has freshly drawn
projections: it embeds, but its modalities are not aligned until it is trained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.errors import ModelError

PACKAGED = (
    "lite-clip", "lite-dual", "tiny-dual", "tiny-audio-text", "tiny-video-text", "audio-cnn-text", "minilm",
    "efficientnet-lite0", "clip-vit-b32", "chinese-clip-vit-b16", "siglip-base", "vit-base-in21k",
    "bert-base-cased", "wav2vec2-base",
)
KINDS = ("dual", "single", "wrapped")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    kind: str
    offline: bool
    towers: list[dict[str, Any]] = field(default_factory=list)
    embed_dim: int | None = None
    hf_model: str | None = None
    params: int | None = None
    weights: str | None = None
    path: Path | None = None

    @property
    def aligned(self) -> bool | None:
        """Whether the modalities share a trained space: a wrapped model (CLIP-like) or a dual
        preset that ships trained projections (``weights``); ``None`` for one-tower presets."""
        if self.kind == "wrapped":
            return True
        if self.kind == "single" or len(self.towers) < 2:
            return None
        return self.weights is not None

    @property
    def source(self) -> str:
        if self.hf_model:
            return self.hf_model
        parts = []
        for t in self.towers:
            name = t.get("name_or_path") if t.get("source") in ("hf", "tiny") else None
            parts.append(f"{t['modality']}={t['source']}" + (f":{name}" if name else ""))
        return ", ".join(parts)


_REGISTRY: dict[str, Preset] = {}
_packaged_done = False


def _parse(path: Path) -> Preset:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read preset file {path}: {exc}") from None
    missing = [k for k in ("name", "kind") if k not in data]
    if missing:
        raise ModelError(f"preset file {path} lacks {missing}")
    if data["kind"] not in KINDS:
        raise ModelError(f"preset file {path}: kind {data['kind']!r} is not one of {KINDS}")
    if data["kind"] == "wrapped" and not data.get("hf_model"):
        raise ModelError(f"preset file {path}: a wrapped preset needs `hf_model`")
    if data["kind"] != "wrapped" and not data.get("towers"):
        raise ModelError(f"preset file {path}: needs `towers`")
    known = {f for f in Preset.__dataclass_fields__ if f != "path"}
    extra = set(data) - known
    if extra:
        raise ModelError(f"preset file {path}: unknown keys {sorted(extra)}")
    return Preset(
        name=str(data["name"]), description=str(data.get("description", "")), kind=data["kind"],
        offline=bool(data.get("offline", False)), towers=list(data.get("towers") or []),
        embed_dim=data.get("embed_dim"), hf_model=data.get("hf_model"), params=data.get("params"),
        weights=data.get("weights"), path=path,
    )


def register_preset(path: str | Path) -> Preset:
    """Register a preset JSON file; a later registration of the same name replaces the earlier."""
    preset = _parse(Path(path))
    _REGISTRY[preset.name] = preset
    return preset


def register_packaged() -> None:
    global _packaged_done
    if _packaged_done:
        return
    _packaged_done = True
    here = Path(__file__).parent
    for name in PACKAGED:
        if name not in _REGISTRY:
            register_preset(here / f"{name}.json")


def list_presets() -> list[Preset]:
    register_packaged()
    return list(_REGISTRY.values())


def get_preset(name: str) -> Preset:
    register_packaged()
    if name not in _REGISTRY:
        raise ModelError(f"unknown model preset {name!r}; known: {', '.join(sorted(_REGISTRY))} (see `polymodal models`)")
    return _REGISTRY[name]


def is_preset(name: str) -> bool:
    register_packaged()
    return name in _REGISTRY


def load_preset_weights(preset: Preset, model: Any, skip: tuple[str, ...] = ()) -> None:
    """Load ``preset.weights`` (safetensors) over ``model``; every tensor in the file must match
    a parameter or buffer of the same shape (the towers' own weights come from their packages).
    Keys starting with one of ``skip`` are left out (towers a run config replaced)."""
    if not preset.weights:
        return
    from safetensors.torch import load_file

    base = preset.path.parent if preset.path is not None else Path(__file__).parent
    path = base / preset.weights
    if not path.is_file():
        raise ModelError(f"preset {preset.name!r}: weights file {path} is missing (reinstall polymodal)")
    state = {k: v for k, v in load_file(str(path)).items() if not k.startswith(skip)}
    own = model.state_dict()
    bad = sorted(k for k, v in state.items() if k not in own or tuple(own[k].shape) != tuple(v.shape))
    if bad:
        raise ModelError(f"preset {preset.name!r}: {path.name} does not fit the built model at {bad[:5]}")
    model.load_state_dict(state, strict=False)
