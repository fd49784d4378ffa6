"""Task heads on top of a fused/pooled representation: classification, multi-label, regression.

Head kinds are registered (``register_head``): a new kind is a ``Head`` subclass plus one
``register_head("name", Class)`` line beside it, and ``model.heads.<col>.kind: name`` builds it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from polymodal.config import HeadSpec
from polymodal.errors import ModelError
from polymodal.registry import Registry


class Head(nn.Module):
    """Optional hidden layer (Linear-GELU) + dropout + Linear to ``num_outputs``."""

    kind = "classification"

    def __init__(self, in_dim: int, num_outputs: int, hidden_dim: int | None = None, dropout: float = 0.0,
                 labels: list[str] | None = None) -> None:
        super().__init__()
        self.in_dim, self.num_outputs, self.hidden_dim, self.dropout_p = in_dim, num_outputs, hidden_dim, dropout
        self.labels = list(labels) if labels else None
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden_dim:
            layers += [nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden_dim or in_dim, num_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "in_dim": self.in_dim, "num_outputs": self.num_outputs,
                "hidden_dim": self.hidden_dim, "dropout": self.dropout_p, "labels": self.labels}


class ClassificationHead(Head):
    """Single-label: logits (B, C) for softmax cross-entropy."""

    kind = "classification"


class MultiLabelHead(Head):
    """Multi-label: independent logits (B, C) for sigmoid / BCE."""

    kind = "multilabel"


class RegressionHead(Head):
    """Regression: real values (B, num_outputs); (B,) when num_outputs == 1."""

    kind = "regression"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return y.squeeze(-1) if self.num_outputs == 1 else y


HEADS: Registry[type[Head]] = Registry("head kind", ModelError)


def register_head(kind: str, cls: type[Head], *, replace: bool = False) -> type[Head]:
    """Make ``kind`` build ``cls(in_dim, num_outputs, hidden_dim, dropout, labels)``; ``cls.kind`` must say ``kind``."""
    if not (isinstance(cls, type) and issubclass(cls, Head)):
        raise ModelError(f"head kind {kind!r}: {cls!r} is not a polymodal.models.heads.Head subclass")
    if cls.kind != kind:
        raise ModelError(f"head kind {kind!r}: {cls.__name__}.kind is {cls.kind!r}; set it to {kind!r} "
                         "(it is saved with the model and picks the class on load)")
    return HEADS.register(kind, cls, replace=replace)


register_head("classification", ClassificationHead)
register_head("multilabel", MultiLabelHead)
register_head("regression", RegressionHead)


def build_head(spec: HeadSpec, in_dim: int, num_outputs: int, labels: list[str] | None = None) -> Head:
    return HEADS.get(spec.kind)(in_dim, num_outputs, spec.hidden_dim, spec.dropout, labels)


def head_from_spec(spec: dict[str, Any]) -> Head:
    cls = HEADS.get(spec["kind"])
    return cls(spec["in_dim"], spec["num_outputs"], spec.get("hidden_dim"), spec.get("dropout", 0.0), spec.get("labels"))
