"""The objective registry: a kind name -> how to build it, its config section, whether it reads labels.

Built-in kinds register themselves in ``polymodal.objectives`` with one visible call each;
a user's kind is one ``register_objective(...)`` call in their own file:

    @dataclass ... class MyConfig(ObjectiveConfig): kind: Literal["mine"] = "mine"; ...
    register_objective("mine", lambda cfg, model, labels: MyLoss(cfg), MyConfig, uses_labels=True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from polymodal.config import ObjectiveConfig, register_objective_config
from polymodal.errors import ModelError
from polymodal.registry import Registry

Builder = Callable[[Any, nn.Module, "dict[str, list[str]] | None"], nn.Module]


@dataclass(frozen=True)
class ObjectiveKind:
    name: str
    build: Builder
    config: type[ObjectiveConfig]
    # whether the run reads label columns for it (contrastive pairs need none)
    uses_labels: bool


OBJECTIVES: Registry[ObjectiveKind] = Registry("objective", ModelError)


def register_objective(name: str, build: Builder, config: type[ObjectiveConfig], *, uses_labels: bool,
                       replace: bool = False) -> ObjectiveKind:
    """Make ``objective.kind: name`` build ``build(cfg, model, label_spaces)`` with ``config`` as its section."""
    if not callable(build):
        raise ModelError(f"objective {name!r}: build must be callable, got {build!r}")
    if not (isinstance(config, type) and issubclass(config, ObjectiveConfig)):
        raise ModelError(f"objective {name!r}: config must subclass polymodal.config.ObjectiveConfig")
    if config.model_fields["kind"].default != name:
        raise ModelError(f"objective {name!r}: {config.__name__}.kind defaults to "
                         f"{config.model_fields['kind'].default!r}, not {name!r}")
    kind = OBJECTIVES.register(name, ObjectiveKind(name, build, config, uses_labels), replace=replace)
    register_objective_config(config)
    return kind


def objective_kind(name: str) -> ObjectiveKind:
    return OBJECTIVES.get(name)


def build_objective(objective_cfg: ObjectiveConfig, model: nn.Module,
                    label_spaces: dict[str, list[str]] | None = None) -> nn.Module:
    """The objective a run config asks for, checked against the model it will train.

    Build it before the optimizer: some kinds add parameters to the model (SigLIP's bias) or
    own some themselves (uncertainty weights).
    """
    kind = objective_kind(objective_cfg.kind)
    if not isinstance(objective_cfg, kind.config):
        raise ModelError(f"objective {kind.name!r} takes a {kind.config.__name__}, got {type(objective_cfg).__name__}")
    return kind.build(objective_cfg, model, label_spaces)
