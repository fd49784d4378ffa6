"""Which parameters train: full, linear probe, top-k blocks, LoRA (peft), locked towers.

A "tower" is any submodule with ``modality`` and ``encoder`` attributes (the models
layer's ``Tower``). Everything outside the towers' encoders -- projections, heads, fusion,
temperature -- is "head" territory and stays trainable under every strategy except that a
*locked* tower has its encoder frozen (LiT locks its image tower); its projection still trains.

BatchNorm follows its own parameters under every strategy: a BatchNorm layer whose affine
weights train normalises with batch statistics and updates its running statistics with a
momentum of at least ``FINETUNE_BN_MOMENTUM``; one whose weights are frozen (linear probe,
locked towers, the frozen blocks of top-k, LoRA's frozen base) stays in eval mode, so its
running statistics are used and kept, exactly as at inference.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from polymodal.config import TrainConfig
from polymodal.errors import TrainingError

# Why 0.1 (PyTorch's default): TensorFlow-trained nets such as the packaged EfficientNet-Lite0
# keep 0.01 (TF's decay 0.99), tuned for ~350k ImageNet steps. A fine-tune of a few hundred
# steps then ends with running statistics still mostly ImageNet's, which the model never saw
# in training: on 1,438 digit images (2 epochs, 44 steps) test accuracy was 0.461 at 0.01 and
# 0.872 at 0.1. Recomputing the statistics on the train images after training (a separate
# recalibration pass) gave 0.878 for either run, so the momentum alone is enough: no pass.
FINETUNE_BN_MOMENTUM = 0.1


@dataclass
class StrategyReport:
    """What :func:`apply_strategy` left trainable."""

    strategy: str
    trainable: int
    total: int
    names: list[str]
    frozen_modules: list[nn.Module] = field(default_factory=list, repr=False)
    lora_towers: list[str] = field(default_factory=list)
    # BatchNorm layers kept in eval mode while training (their weights are frozen)
    frozen_norms: list[nn.Module] = field(default_factory=list, repr=False)
    # BatchNorm layers that train (batch statistics; running statistics updated)
    training_norms: int = 0

    def summary(self) -> str:
        pct = 100.0 * self.trainable / max(self.total, 1)
        return f"strategy {self.strategy}: {self.trainable:,} of {self.total:,} parameters trainable ({pct:.2f}%)"


def find_towers(model: nn.Module) -> dict[str, Any]:
    """Towers by modality: ``model.towers`` when it is a ModuleDict, else any submodule shaped like one."""
    towers = getattr(model, "towers", None)
    if isinstance(towers, nn.ModuleDict):
        return {str(k): v for k, v in towers.items()}
    found: dict[str, Any] = {}
    for _, mod in model.named_modules():
        if hasattr(mod, "modality") and isinstance(getattr(mod, "encoder", None), nn.Module):
            found.setdefault(str(mod.modality), mod)
    return found


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def _inject_lora(tower: Any, modality: str, cfg: TrainConfig) -> None:
    from peft import LoraConfig, get_peft_model

    targets = (cfg.lora.target_modules or {}).get(modality)
    if targets is None:
        lora_targets = getattr(tower, "lora_targets", None)
        targets = list(lora_targets()) if callable(lora_targets) else None
    if not targets:
        raise TrainingError(
            f"strategy lora: no target modules for the {modality} tower; "
            f"set train.lora.target_modules.{modality}"
        )
    lcfg = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(targets), bias="none")
    try:
        tower.encoder = get_peft_model(tower.encoder, lcfg)
    except ValueError as exc:  # peft names the missing target modules
        raise TrainingError(f"strategy lora on the {modality} tower: {exc}") from None


def apply_strategy(model: nn.Module, cfg: TrainConfig) -> StrategyReport:
    """Freeze/unfreeze (and inject LoRA into) ``model`` in place according to ``cfg.strategy``."""
    towers = find_towers(model)
    unknown = [t for t in cfg.locked_towers if t not in towers]
    if unknown:
        raise TrainingError(f"train.locked_towers names {unknown}, but the model's towers are {sorted(towers)}")
    _set_requires_grad(model, True)
    frozen: list[nn.Module] = []
    lora_towers: list[str] = []
    strategy = cfg.strategy
    if strategy in ("linear_probe", "top_k", "lora"):
        if not towers:
            raise TrainingError(f"strategy {strategy} needs a model with towers (none found)")
        for tower in towers.values():
            _set_requires_grad(tower.encoder, False)
    if strategy == "linear_probe":
        frozen += [t.encoder for t in towers.values()]
    elif strategy == "top_k":
        chosen = cfg.top_k_towers or [m for m in towers if m not in cfg.locked_towers]
        for modality in chosen:
            if modality not in towers:
                raise TrainingError(f"train.top_k_towers names {modality!r}; towers are {sorted(towers)}")
            blocks = list(towers[modality].blocks())
            if not blocks:
                raise TrainingError(f"strategy top_k: the {modality} tower exposes no blocks")
            for block in blocks[-cfg.top_k:]:
                _set_requires_grad(block, True)
    elif strategy == "lora":
        chosen = cfg.lora.towers or [m for m in towers if m not in cfg.locked_towers]
        for modality in chosen:
            if modality not in towers:
                raise TrainingError(f"train.lora.towers names {modality!r}; towers are {sorted(towers)}")
            if modality in cfg.locked_towers:
                raise TrainingError(f"tower {modality!r} is both locked and a LoRA target")
            _inject_lora(towers[modality], modality, cfg)
            lora_towers.append(modality)
        # peft freezes the wrapped encoder except its adapters; the rest of the model stays as set
    elif strategy == "locked" and not cfg.locked_towers:
        raise TrainingError("strategy locked needs train.locked_towers (e.g. [image])")
    for modality in cfg.locked_towers:
        # LiT locks the pretrained encoder; a projection into the shared space still learns
        # (it is usually fresh), so only the encoder is frozen
        _set_requires_grad(towers[modality].encoder, False)
        frozen.append(towers[modality].encoder)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    if trainable == 0:
        raise TrainingError(f"strategy {strategy} leaves no trainable parameters")
    frozen_norms, training_norms = _batchnorm_plan(model)
    return StrategyReport(strategy, trainable, total, names, frozen, lora_towers, frozen_norms, training_norms)


def _batchnorm_plan(model: nn.Module) -> tuple[list[nn.Module], int]:
    """(BatchNorm layers to keep in eval mode, how many train), per the module docstring's rule.

    A layer without affine weights follows the module that holds it: it trains when anything
    in that module trains.
    """
    frozen: list[nn.Module] = []
    training = 0
    for parent in model.modules():
        for child in parent.children():
            if not isinstance(child, _BatchNorm):
                continue
            own = list(child.parameters())
            trains = any(p.requires_grad for p in (own or parent.parameters()))
            if not trains:
                frozen.append(child)
                continue
            training += 1
            if child.momentum is not None and child.momentum < FINETUNE_BN_MOMENTUM:
                child.momentum = FINETUNE_BN_MOMENTUM
    return frozen, training


def set_train_mode(model: nn.Module, report: StrategyReport) -> None:
    """``model.train()`` but frozen modules and frozen BatchNorm layers stay in eval mode
    (no dropout, running statistics used and kept)."""
    model.train()
    for module in [*report.frozen_modules, *report.frozen_norms]:
        module.eval()


def _peft_model_class() -> Any:
    """peft's ``PeftModel`` if peft is loaded; else no module can be one (importing peft costs ~3 s)."""
    peft = sys.modules.get("peft")
    return getattr(peft, "PeftModel", None) if peft is not None else None


def save_adapters(model: nn.Module, out_dir: str | Path) -> list[Path]:
    """Save each LoRA-wrapped encoder's adapter (peft format) under ``out_dir/<modality>``."""
    peft_model = _peft_model_class()
    saved: list[Path] = []
    if peft_model is None:
        return saved
    for modality, tower in find_towers(model).items():
        if isinstance(tower.encoder, peft_model):
            path = Path(out_dir) / modality
            tower.encoder.save_pretrained(str(path))
            saved.append(path)
    return saved


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA adapter into its base weights; the model becomes a plain one again."""
    peft_model = _peft_model_class()
    if peft_model is None:
        return model
    for tower in find_towers(model).values():
        if isinstance(tower.encoder, peft_model):
            tower.encoder = tower.encoder.merge_and_unload()
    return model
