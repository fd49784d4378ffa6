import json
import random

import numpy as np
import pytest
import torch
from helpers import TinyDual

from polymodal.config import TrainConfig
from polymodal.errors import TrainingError
from polymodal.train import checkpoint as ckpt
from polymodal.train.optim import build_optimizer, build_scheduler


def _trained(steps=3):
    torch.manual_seed(0)
    m = TinyDual()
    cfg = TrainConfig(lr=0.01)
    opt = build_optimizer(m, cfg)
    sched = build_scheduler(opt, cfg, 10)
    for _ in range(steps):
        x = {"image": torch.randn(4, 6), "text": torch.randn(4, 6)}
        sum(e.sum() for e in m(x).embeddings.values()).backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    return m, opt, sched


def test_round_trip_is_bitwise_and_uses_no_pickle(tmp_path):
    m, opt, sched = _trained()
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": ckpt.rng_state(),
             "misc": {"t": (1, 2.5, None), 3: "int key", "inf": float("inf")}}
    path = ckpt.save_checkpoint(tmp_path, 3, m, state)
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "model.safetensors",
                                                      "state.json", "state.safetensors"]
    expect = (random.random(), np.random.rand(), torch.rand(3))
    m2, opt2, sched2 = _trained(0)
    loaded = ckpt.load_checkpoint(path, m2)
    for (k, a), b in zip(m.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    opt2.load_state_dict(loaded["optimizer"])
    sched2.load_state_dict(loaded["scheduler"])
    for s1, s2 in zip(opt.state_dict()["state"].values(), opt2.state_dict()["state"].values(), strict=True):
        for key in s1:
            assert torch.equal(s1[key], s2[key]) and s1[key].dtype == s2[key].dtype
    assert sched2.state_dict() == sched.state_dict()
    assert loaded["misc"] == {"t": (1, 2.5, None), 3: "int key", "inf": float("inf")}
    ckpt.set_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand()) == expect[:2] and torch.equal(torch.rand(3), expect[2])


def test_latest_complete_skips_incomplete_and_corrupt(tmp_path):
    m, opt, _ = _trained(1)
    good = ckpt.save_checkpoint(tmp_path, 2, m, {"a": 1})
    corrupt = ckpt.save_checkpoint(tmp_path, 4, m, {"a": 2})
    (corrupt / "state.json").write_text(json.dumps({"__dict__": {"a": 3}}))
    unfinished = ckpt.save_checkpoint(tmp_path, 6, m, {"a": 4})
    (unfinished / "manifest.json").unlink()
    with pytest.warns(UserWarning) as record:
        assert ckpt.latest_complete(tmp_path) == good
    reasons = " ".join(str(w.message) for w in record)
    assert "step-00000006: no manifest" in reasons and "state.json does not match" in reasons
    with pytest.raises(TrainingError, match="not usable"):
        ckpt.load_checkpoint(corrupt, m)


def test_wrong_model_is_refused(tmp_path):
    m, _, _ = _trained(1)
    path = ckpt.save_checkpoint(tmp_path, 1, m, {})
    other = torch.nn.Linear(2, 2)
    with pytest.raises(TrainingError, match="does not fit"):
        ckpt.load_checkpoint(path, other)


def test_prune_keeps_last_n_and_best(tmp_path):
    m = torch.nn.Linear(2, 2)
    paths = [ckpt.save_checkpoint(tmp_path, s, m, {}) for s in (1, 2, 3, 4, 5)]
    ckpt.prune(tmp_path, keep_last=2, keep={paths[1]})
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [2, 4, 5]
