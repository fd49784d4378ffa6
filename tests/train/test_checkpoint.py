import json
import pickle
import random
import re

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


# ----------------------------------------------------------------- hostile files (issue 16, item 2)
class Payload:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('unpickled')",))


def _rehash(path):
    """What a writer who can plant files can also do: make the manifest match them."""
    files = {p.name: ckpt._sha256(p) for p in sorted(path.iterdir()) if p.name != ckpt.MANIFEST}
    (path / ckpt.MANIFEST).write_text(json.dumps({"step": 0, "files": files}), encoding="utf-8")


def test_files_outside_the_manifest_are_never_read(tmp_path):
    m, _, _ = _trained(1)
    path = ckpt.save_checkpoint(tmp_path / "ckpts", 2, m, {"a": 1})
    marker = tmp_path / "unpickled.marker"
    for name in ("extra.pt", "evil.pt"):  # extra.pt is a name the loader knows: still not in the manifest
        torch.save({"x": Payload(marker)}, path / name)
    assert ckpt.latest_complete(tmp_path / "ckpts") == path
    with pytest.warns(UserWarning, match="ignoring evil.pt, extra.pt \\(not in its manifest, never read\\)"):
        state = ckpt.load_checkpoint(path, _trained(0)[0])
    assert state == {"a": 1} and not marker.exists()


def _pickle_as_weights(path, marker):
    (path / "model.safetensors").write_bytes(pickle.dumps({"w": Payload(marker)}))


def _hostile_extra(path, marker):
    torch.save({"s.a": Payload(marker)}, path / "extra.pt")
    (path / "state.json").write_text(json.dumps({"__dict__": {"a": {"__extra__": "s.a"}}}), encoding="utf-8")


def _dangling_tensor(path, marker):
    (path / "state.json").write_text(json.dumps({"__dict__": {"a": {"__tensor__": "s.nope"}}}), encoding="utf-8")


def _truncated_state(path, marker):
    data = (path / "state.safetensors").read_bytes()
    (path / "state.safetensors").write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("plant,reason", [
    (_pickle_as_weights, "model.safetensors cannot be read safely"),
    (_hostile_extra, "extra.pt cannot be read safely"),
    (_dangling_tensor, "state.json names tensors state.safetensors lacks (s.nope)"),
    (_truncated_state, "state.safetensors cannot be read safely"),
])
def test_an_unreadable_checkpoint_falls_back_to_the_previous_good_one(tmp_path, plant, reason):
    m, opt, _ = _trained(1)
    good = ckpt.save_checkpoint(tmp_path, 2, m, {"optimizer": opt.state_dict()})
    bad = ckpt.save_checkpoint(tmp_path, 4, m, {"optimizer": opt.state_dict()})
    marker = tmp_path / "unpickled.marker"
    plant(bad, marker)
    _rehash(bad)  # the hashes match: only reading the files tells
    with pytest.warns(UserWarning, match="skipping checkpoint .*step-00000004: " + re.escape(reason)):
        assert ckpt.latest_complete(tmp_path) == good
    with pytest.raises(TrainingError, match="step-00000004 is not usable: " + re.escape(reason)):
        ckpt.load_checkpoint(bad, m)
    assert not marker.exists()
