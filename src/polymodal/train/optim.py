"""Optimizer and learning-rate schedule from a :class:`TrainConfig`.

Weight decay skips biases, norm weights and other 1-d parameters (and the temperature):
decaying them pulls scales/offsets towards zero, which hurts more than it regularises.
``head_lr`` applies to everything outside the towers' encoders.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from polymodal.config import TrainConfig
from polymodal.train.strategies import find_towers

_NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
               nn.InstanceNorm1d, nn.InstanceNorm2d)


def _no_decay_names(model: nn.Module) -> set[str]:
    names: set[str] = set()
    for mod_name, mod in model.named_modules():
        is_norm = isinstance(mod, _NORM_TYPES) or "norm" in type(mod).__name__.lower()
        for p_name, p in mod.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if is_norm or p.ndim <= 1 or p_name.endswith("bias") or "logit_scale" in p_name \
                    or "temperature" in p_name:
                names.add(full)
    return names


def _encoder_param_ids(model: nn.Module) -> set[int]:
    return {id(p) for tower in find_towers(model).values() for p in tower.encoder.parameters()}


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """Up to four groups: (encoder | head) x (decay | no decay); only trainable parameters."""
    no_decay = _no_decay_names(model)
    in_encoder = _encoder_param_ids(model)
    head_lr = cfg.head_lr if cfg.head_lr is not None else cfg.lr
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    names: dict[tuple[bool, bool], list[str]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = (id(p) not in in_encoder, name not in no_decay)
        buckets.setdefault(key, []).append(p)
        names.setdefault(key, []).append(name)
    groups = []
    for (is_head, decay) in sorted(buckets):
        groups.append({
            "params": buckets[(is_head, decay)],
            "lr": head_lr if is_head else cfg.lr,
            "weight_decay": cfg.weight_decay if decay else 0.0,
            "group_name": f"{'head' if is_head else 'encoder'}/{'decay' if decay else 'no_decay'}",
        })
    return groups


def _fused_adamw_ok(groups: list[dict[str, Any]]) -> bool:
    params = [p for g in groups for p in g["params"]]
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


def build_optimizer(model: nn.Module, cfg: TrainConfig, extra: list[nn.Parameter] | None = None) -> torch.optim.Optimizer:
    """``extra``: learnable parameters the objective owns (e.g. uncertainty task weights)."""
    groups = param_groups(model, cfg)
    if extra:
        head_lr = cfg.head_lr if cfg.head_lr is not None else cfg.lr
        groups.append({"params": list(extra), "lr": head_lr, "weight_decay": 0.0, "group_name": "objective"})
    if cfg.optimizer == "adamw":
        # the fused kernel is elementwise and deterministic, so exact resume holds with it
        # (tests/train/test_resume_subprocess.py); it ran an AdamW step ~3x faster on CPU than
        # the per-parameter path. foreach=False where fused is not available: same path on
        # every run and every resume.
        fused = _fused_adamw_ok(groups)
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay,
                                 foreach=False, fused=fused or None)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                           foreach=False)


def warmup_steps(cfg: TrainConfig, total_steps: int) -> int:
    return cfg.warmup_steps if cfg.warmup_steps else int(cfg.warmup_ratio * total_steps)


def lr_factor(kind: str, total_steps: int, warmup: int) -> Callable[[int], float]:
    """Multiplier of the base lr at optimizer step ``step`` (0-based): linear warm-up then decay."""
    total = max(total_steps, 1)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(total - warmup, 1))
        if kind == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    fn = lr_factor(cfg.schedule, total_steps, warmup_steps(cfg, total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
