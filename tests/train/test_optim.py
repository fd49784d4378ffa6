import math

import pytest
import torch
from helpers import TinyDual

from polymodal.config import TrainConfig
from polymodal.train.optim import build_optimizer, build_scheduler, lr_factor, param_groups


def test_weight_decay_skips_biases_norms_and_temperature_head_lr_applies_outside_encoders():
    m = TinyDual()
    groups = {g["group_name"]: g for g in param_groups(m, TrainConfig(lr=1e-3, head_lr=1e-2, weight_decay=0.1))}
    names = {id(p): n for n, p in m.named_parameters()}

    def members(key):
        return {names[id(p)] for p in groups[key]["params"]}

    assert groups["encoder/decay"]["weight_decay"] == 0.1 and groups["encoder/decay"]["lr"] == 1e-3
    assert groups["encoder/no_decay"]["weight_decay"] == 0.0
    assert groups["head/decay"]["lr"] == 1e-2
    assert all(n.endswith(("fc.weight", "embed.weight")) for n in members("encoder/decay"))
    assert {n.split(".")[-2] + "." + n.split(".")[-1] for n in members("encoder/no_decay")} >= {
        "norm.weight", "norm.bias", "fc.bias"}
    assert members("head/decay") == {"towers.image.projection.weight", "towers.text.projection.weight"}
    assert members("head/no_decay") == {"logit_scale"}
    total = sum(len(g["params"]) for g in groups.values())
    assert total == len(list(m.parameters()))


def test_frozen_parameters_are_left_out():
    m = TinyDual()
    for p in m.towers["image"].parameters():
        p.requires_grad_(False)
    opt = build_optimizer(m, TrainConfig(optimizer="sgd"))
    assert isinstance(opt, torch.optim.SGD)
    inside = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not inside & {id(p) for p in m.towers["image"].parameters()}


@pytest.mark.parametrize("kind", ["constant", "linear", "cosine"])
def test_schedules_with_warmup(kind):
    f = lr_factor(kind, total_steps=10, warmup=2)
    assert f(0) == pytest.approx(0.5) and f(1) == pytest.approx(1.0)
    if kind == "constant":
        assert f(9) == 1.0
    elif kind == "linear":
        assert f(6) == pytest.approx(1 - 4 / 8) and f(10) == 0.0
    else:
        assert f(6) == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 8))) and f(10) == pytest.approx(0.0)


def test_scheduler_drives_optimizer_lr():
    m = TinyDual()
    cfg = TrainConfig(lr=0.1, schedule="linear", warmup_steps=1)
    opt = build_optimizer(m, cfg)
    sched = build_scheduler(opt, cfg, total_steps=5)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1, 0.1, 0.075, 0.05, 0.025])
