"""save_pretrained / from_pretrained for every polymodal model.

A saved folder holds ``config.json`` (the model's own JSON description), ``model.safetensors``
(all weights), ``towers/<modality>/`` (each tower's config + tokenizer/processor files, so no
network is needed to load), and a ``README.md`` model card. Loading reads JSON and
safetensors only: nothing is ever unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_model, save_model
from torch import nn

from polymodal.errors import ModelError

FORMAT = "polymodal-model"
FORMAT_VERSION = 1


def is_polymodal_folder(path: Path) -> bool:
    cfg = path / "config.json"
    if not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, json.JSONDecodeError):
        return False


def _card(model: Any, info: dict[str, Any]) -> str:
    lines = [f"# {info.get('name') or type(model).__name__}", "", f"A polymodal `{type(model).__name__}`.", "", "## Towers", ""]
    for tower in getattr(model, "towers", {}).values():
        lines.append(f"- {tower.describe()}")
    heads = getattr(model, "heads", None)
    if heads:
        lines += ["", "## Heads", ""] + [f"- `{col}`: {h.kind}, {h.num_outputs} outputs" for col, h in heads.items()]
    lines += ["", "## Training data", "", str(info.get("training_data") or "not recorded (pretrained or untrained weights)")]
    metrics = info.get("metrics") or {}
    if metrics:
        lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    lines += ["", "## Load", "", "```python", "import polymodal", 'model = polymodal.load("path/to/this/folder")', "```", ""]
    return "\n".join(lines)


class PretrainedMixin:
    """Gives a model ``save_pretrained(dir)`` and ``Cls.from_pretrained(dir)``.

    A model class implements ``get_config() -> dict`` and
    ``_from_config(config, folder) -> model`` (architecture only, no pretrained weights).
    """

    card_info: dict[str, Any]

    def get_config(self) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def save_assets(self, folder: Path) -> None:
        for modality, tower in getattr(self, "towers", {}).items():
            tower.encoder.save_assets(folder / "towers" / modality)

    def save_pretrained(self, folder: str | Path, card: dict[str, Any] | None = None) -> Path:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        info = {**getattr(self, "card_info", {}), **(card or {})}
        config = {"format": FORMAT, "format_version": FORMAT_VERSION, "class": type(self).__name__,
                  "model": self.get_config(), "card": info,
                  # manifest columns that fed the towers in training ({"text": "question"})
                  "input_columns": dict(getattr(self, "input_columns", None) or {})}
        (out / "config.json").write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
        self.save_assets(out)
        assert isinstance(self, nn.Module)
        save_model(self, str(out / "model.safetensors"))
        (out / "README.md").write_text(_card(self, info), encoding="utf-8")
        return out

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> Any:
        return load_pretrained(folder, expected=cls)


def _classes() -> dict[str, type]:
    from polymodal.models.dual import DualEncoder, EmbeddingModel
    from polymodal.models.fused import FusionModel
    from polymodal.models.wrapped import WrappedDualEncoder

    return {c.__name__: c for c in (EmbeddingModel, DualEncoder, FusionModel, WrappedDualEncoder)}


def load_pretrained(folder: str | Path, expected: type | None = None) -> Any:
    path = Path(folder)
    if not is_polymodal_folder(path):
        raise ModelError(f"{path} is not a polymodal model folder (no config.json with format {FORMAT!r})")
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(f"{path} was saved by a newer polymodal (format {config['format_version']}); upgrade polymodal")
    cls = _classes().get(str(config.get("class")))
    if cls is None:
        raise ModelError(f"{path}/config.json names an unknown model class {config.get('class')!r}")
    if expected is not None and not issubclass(cls, expected):
        raise ModelError(f"{path} holds a {cls.__name__}, not a {expected.__name__}")
    model = cls._from_config(config["model"], path)  # type: ignore[attr-defined]
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{path} has no model.safetensors")
    missing, unexpected = load_model(model, str(weights), strict=False)
    if missing or unexpected:
        raise ModelError(f"{weights} does not match the model: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    model.card_info = dict(config.get("card") or {})
    model.input_columns = {str(k): str(v) for k, v in (config.get("input_columns") or {}).items()}
    model.eval()
    return model
