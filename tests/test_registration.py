"""New kinds of objective, head, fusion and tower source come from a user's own file alone:
one class/function and one ``register_*`` call each, then a run config names them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import polymodal
from polymodal.config import ConfigError, ObjectiveConfig, config_from_dict
from polymodal.data.builtin import make_dataset
from polymodal.errors import ModelError
from polymodal.models.encoders.builtin import BUILTIN
from polymodal.models.fusion import FUSIONS, Fusion, register_fusion
from polymodal.models.heads import HEADS, Head, register_head
from polymodal.models.outputs import ClassifierOutput
from polymodal.models.towers import TOWER_SOURCES, register_tower_source
from polymodal.objectives import OBJECTIVES, Objective, ObjectiveResult, register_objective
from polymodal.train import train


# ----------------------------------------------------------------------------- the user's file
class FocalConfig(ObjectiveConfig):
    kind: Literal["toy-focal"] = "toy-focal"
    gamma: float = 2.0


class FocalLoss(Objective):
    """Focal loss (Lin et al. 2017) on every head's logits."""

    validation = ("classification",)

    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, outputs: Any, batch: dict[str, Any]) -> ObjectiveResult:
        assert isinstance(outputs, ClassifierOutput)
        losses = []
        for col, logits in outputs.logits.items():
            logp = F.log_softmax(logits.float(), -1).gather(1, batch[col].long()[:, None]).squeeze(1)
            losses.append((-(1 - logp.exp()) ** self.gamma * logp).mean())
        loss = torch.stack(losses).sum()
        return ObjectiveResult(loss, {"focal": loss.detach()})


class TemperatureHead(Head):
    """A classification head whose logits are divided by a learned temperature."""

    kind = "toy-temperature"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log_t = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) / self.log_t.exp()


class MaxFusion(Fusion):
    """Element-wise max of the pooled embeddings (they share a width here)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.output_dim = width

    def forward(self, pooled: dict[str, torch.Tensor], tokens: Any) -> torch.Tensor:
        return torch.stack(list(pooled.values()), 0).amax(0)


def build_focal(cfg: FocalConfig, model: nn.Module, labels: Any) -> Objective:
    return FocalLoss(cfg.gamma)


def build_max(spec: Any, towers: dict[str, Any]) -> Fusion:
    widths = {t.output_dim for t in towers.values()}
    if len(widths) != 1:
        raise ModelError(f"toy-max fusion needs towers of one width, got {sorted(widths)}")
    return MaxFusion(widths.pop())


def build_small_cnn(spec: dict[str, Any], local_files_only: bool | None, assets: Path | None) -> Any:
    return BUILTIN["builtin-cnn"]({**spec, "source": "builtin-cnn"})


@pytest.fixture
def registered():  # type: ignore[no-untyped-def]
    register_objective("toy-focal", build_focal, FocalConfig, uses_labels=True)  # type: ignore[arg-type]
    register_head("toy-temperature", TemperatureHead)
    register_fusion("toy-max", build_max)
    register_tower_source("toy-cnn", build_small_cnn, "image")
    yield
    OBJECTIVES.unregister("toy-focal")
    HEADS.unregister("toy-temperature")
    FUSIONS.unregister("toy-max")
    TOWER_SOURCES.unregister("toy-cnn")


# ----------------------------------------------------------------------------- tests
@pytest.mark.slow
def test_a_toy_objective_head_fusion_and_tower_source_train_save_and_load(registered, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shapes = make_dataset("shapes", tmp_path / "shapes", n=64)
    cfg = config_from_dict({
        "model": {"preset": "tiny-dual", "kind": "fusion", "inputs": ["image", "text"],
                  "towers": [{"modality": "image", "source": "toy-cnn", "projection_dim": 32}],
                  "fusion": {"kind": "toy-max"},
                  "heads": {"shape": {"kind": "toy-temperature"}}},
        "data": {"manifest": str(shapes), "batch_size": 16, "label_columns": ["shape"], "image": {"size": 32}},
        "objective": {"kind": "toy-focal", "gamma": 1.5},
        "train": {"epochs": 2, "lr": 3e-3, "log_every": 1, "progress": False, "mixed_precision": "no",
                  "early_stopping_metric": "val/accuracy"},
    })
    assert isinstance(cfg.objective, FocalConfig) and cfg.objective.gamma == 1.5
    result = train(cfg, tmp_path / "run")
    assert result.steps > 0 and "val/shape/accuracy" in result.final_metrics  # the declared validation ran
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    focal = [e["focal"] for e in events if e["event"] == "train"]
    assert focal and all(isinstance(v, float) for v in focal)  # the objective's metric reached the log
    model = polymodal.load(str(tmp_path / "run" / "model"))  # rebuilt through the registries
    assert isinstance(model.heads["shape"], TemperatureHead) and isinstance(model.fusion, MaxFusion)
    assert float(model.heads["shape"].log_t.detach()) != 0.0  # the head's own parameter trained and was saved


def test_unknown_kinds_fail_listing_what_is_registered(registered) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"objective: unknown objective kind 'nope' \(registered: .*toy-focal"):
        config_from_dict({"objective": {"kind": "nope"}})
    with pytest.raises(ConfigError, match=r"objective.gamma: unknown key"):
        config_from_dict({"objective": {"kind": "contrastive", "gamma": 2.0}})
    from polymodal.models.heads import build_head

    with pytest.raises(ModelError, match=r"unknown head kind 'nope' \(registered: classification, .*toy-temperature"):
        build_head(config_from_dict({"model": {"heads": {"x": {"kind": "nope"}}}}).model.heads["x"], 4, 2)


def test_registration_inputs_are_checked() -> None:
    with pytest.raises(ModelError, match="kind is 'toy-temperature'"):
        register_head("other-name", TemperatureHead)
    with pytest.raises(ModelError, match="not a polymodal.models.heads.Head"):
        register_head("plain", nn.Linear)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="defaults to 'toy-focal', not 'focal2'"):
        register_objective("focal2", build_focal, FocalConfig, uses_labels=True)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="already registered"):
        register_fusion("late", build_max)
    with pytest.raises(ModelError, match="modality must be"):
        register_tower_source("toy-x", build_small_cnn, "smell")
