"""save_pretrained / from_pretrained for every polymodal model.

A saved folder holds ``config.json`` (the model's own JSON description, the manifest columns
that fed it and the transforms applied to it), ``model.safetensors`` (all weights),
``towers/<modality>/`` (each tower's config + tokenizer/processor files, so no network is
needed to load), and a ``README.md`` model card. Loading reads JSON and safetensors only:
nothing is ever unpickled.

``config.json`` names the model's class; the class is found in a registry filled by an
explicit ``register_model_class(Cls)`` call next to each class (the built-in ones live in
``BUILTIN_MODEL_MODULES``, imported before a folder is read). A new model class is one new
file with that one line: nothing here changes.
"""

from __future__ import annotations

import contextlib
import importlib
import json
from pathlib import Path
from typing import Any, TypeVar

from safetensors.torch import load_model, save_model
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.transforms import as_transforms, builds_empty, describe, reapply
from polymodal.models.trust import caller_scope, check_safetensors, refuse_requests

FORMAT = "polymodal-model"
FORMAT_VERSION = 1
# modules whose import registers polymodal's own model classes (each calls register_model_class)
BUILTIN_MODEL_MODULES = ("polymodal.models.dual", "polymodal.models.fused", "polymodal.models.ctc",
                         "polymodal.models.wrapped", "polymodal.models.captioner", "polymodal.export.onnx_model",
                         "polymodal.models.text_to_image", "polymodal.models.shapes_judge")

C = TypeVar("C", bound=type)


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
    transforms = list(getattr(model, "transforms", []))
    if transforms:
        lines += ["", "## Transforms", "", "Applied after the model was built, in this order:", ""]
        lines += [f"- {describe(t)}" for t in transforms]
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
    ``_from_config(config, folder) -> model`` (architecture only, no pretrained weights), and
    is registered with ``register_model_class`` so a saved folder can name it.

    Saved and restored with the weights: ``card_info`` (model card facts), ``input_columns``
    (manifest columns that fed the towers in training, ``{"text": "question"}``) and
    ``transforms`` (what was done to the model after it was built; see ``models.transforms``).
    """

    card_info: dict[str, Any]

    # per-instance values kept in __dict__: a class-level {} or [] would be shared by every model
    @property
    def input_columns(self) -> dict[str, str]:
        return self.__dict__.setdefault("_input_columns", {})  # type: ignore[no-any-return]

    @input_columns.setter
    def input_columns(self, value: dict[str, str] | None) -> None:
        self.__dict__["_input_columns"] = {str(k): str(v) for k, v in (value or {}).items()}

    @property
    def transforms(self) -> list[dict[str, Any]]:
        return self.__dict__.setdefault("_transforms", [])  # type: ignore[no-any-return]

    @transforms.setter
    def transforms(self, value: list[dict[str, Any]] | None) -> None:
        self.__dict__["_transforms"] = as_transforms(value, type(self).__name__)

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
                  "input_columns": dict(self.input_columns),
                  "transforms": list(self.transforms)}
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
    def from_pretrained(cls, folder: str | Path, *, trust_remote_code: bool | None = None,
                        revision: str | None = None) -> Any:
        """The model saved in ``folder``; ``trust_remote_code`` as in ``polymodal.load``."""
        with caller_scope(trust_remote_code, revision):
            return load_pretrained(folder, expected=cls)


_MODEL_CLASSES: dict[str, type] = {}


def _implements(cls: type, name: str) -> bool:
    """Whether ``cls`` overrides the mixin's placeholder ``name`` somewhere below it."""
    owner = next((k for k in cls.__mro__ if name in vars(k)), None)
    return owner is not None and owner is not PretrainedMixin


def register_model_class(cls: C) -> C:
    """Make ``cls`` loadable from a saved folder whose config.json names it; returns ``cls``.

    Call it right after the class (``register_model_class(MyModel)``) or use it as a decorator.
    """
    if not isinstance(cls, type):
        raise ModelError(f"register_model_class takes a class, not {cls!r}")
    if not issubclass(cls, nn.Module) or not issubclass(cls, PretrainedMixin):
        raise ModelError(f"{cls.__qualname__} must subclass both torch.nn.Module and "
                         "polymodal.models.hub.PretrainedMixin to be saved and loaded")
    missing = [m for m in ("get_config", "_from_config") if not _implements(cls, m)]
    if missing:
        raise ModelError(f"{cls.__qualname__} does not implement {' and '.join(missing)} "
                         "(get_config() -> dict; classmethod _from_config(config, folder) -> model)")
    name = cls.__name__
    known = _MODEL_CLASSES.get(name)
    if known is not None and known is not cls:
        raise ModelError(f"a model class named {name!r} is already registered ({known.__module__}.{known.__qualname__}); "
                         "saved folders name classes by name, so give yours another name")
    _MODEL_CLASSES[name] = cls
    return cls


def registered_model_classes() -> dict[str, type]:
    """Name -> class of every registered model class, the built-in ones included."""
    for module in BUILTIN_MODEL_MODULES:
        importlib.import_module(module)
    return dict(sorted(_MODEL_CLASSES.items()))


def _empty_weights(empty: bool) -> Any:
    """Parameters created on the meta device (no memory) when ``empty``; buffers stay real, since
    some are not saved (BERT's position ids) and must keep the values the constructor gives them."""
    if not empty:
        return contextlib.nullcontext()
    from accelerate import init_empty_weights

    return init_empty_weights(include_buffers=False)


def _load_assigned(model: nn.Module, weights: Path) -> tuple[list[str], list[str]]:
    """Load ``weights`` into a model built with empty parameters: the file's tensors become the
    parameters (``assign``), so no second copy is made; anything left on meta is reported missing."""
    from safetensors.torch import load_file

    result = model.load_state_dict(load_file(str(weights)), strict=False, assign=True)
    empty = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    return sorted({*result.missing_keys, *empty}), list(result.unexpected_keys)


def load_pretrained(folder: str | Path, expected: type | None = None) -> Any:
    """The model saved in ``folder`` (JSON + safetensors only).

    Code runs only as the caller's permission in effect says (``models.trust``): a folder whose
    config asks for ``trust_remote_code`` is refused without it, naming the tower.
    """
    path = Path(folder)
    if not is_polymodal_folder(path):
        raise ModelError(f"{path} is not a polymodal model folder (no config.json with format {FORMAT!r})")
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(f"{path} was saved by a newer polymodal (format {config['format_version']}); upgrade polymodal")
    classes = registered_model_classes()
    name = str(config.get("class"))
    cls = classes.get(name)
    if cls is None:
        raise ModelError(f"{path}/config.json names model class {name!r}, which is not registered "
                         f"(registered: {', '.join(classes)}); import the module that registers it")
    if expected is not None and not issubclass(cls, expected):
        raise ModelError(f"{path} holds a {cls.__name__}, not a {expected.__name__}")
    # older folders have no transforms key: nothing was done to them after they were built
    transforms = as_transforms(config.get("transforms"), f"{path}/config.json")
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{path} has no model.safetensors")
    check_safetensors(weights)
    # a file's word is not the caller's: a tower spec asking for remote code is refused here
    refuse_requests(config.get("model"), f"{path}/config.json")
    empty = builds_empty(transforms)
    with _empty_weights(empty):
        model: Any = reapply(cls._from_config(config["model"], path), transforms, str(path))  # type: ignore[attr-defined]
    try:
        missing, unexpected = _load_assigned(model, weights) if empty else load_model(model, str(weights), strict=False)
    except RuntimeError as exc:  # a tensor of another shape (a transform changed it, and was not recorded)
        raise ModelError(f"{weights} does not match the model: {str(exc).strip().splitlines()[-1].strip()}") from None
    if missing or unexpected:
        raise ModelError(f"{weights} does not match the model: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    model.card_info = dict(config.get("card") or {})
    model.input_columns = config.get("input_columns") or {}
    model.transforms = transforms
    model.eval()
    return model
