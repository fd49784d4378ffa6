"""Locked towers remember pooled features per sample: same outputs, one encode per sample."""

from typing import Any

import torch

import polymodal


def _counting(tower: Any) -> list[int]:
    seen: list[int] = []

    def hook(_module: Any, args: Any, _out: Any) -> None:
        x = args[0]
        seen.append(int((x if isinstance(x, torch.Tensor) else x["input_ids"]).shape[0]))

    tower.encoder.register_forward_hook(hook)
    return seen


def _frozen_image_tower() -> Any:
    model = polymodal.load("tiny-dual")
    tower = model.towers["image"]
    for p in tower.encoder.parameters():
        p.requires_grad_(False)
    tower.encoder.eval()
    return tower


def test_memo_returns_identical_features_and_encodes_each_sample_once() -> None:
    tower = _frozen_image_tower()
    torch.manual_seed(0)
    x = torch.randn(6, 3, 64, 64)
    with torch.no_grad():
        expected = tower(x)
    tower.memoize_features(True)
    calls = _counting(tower)
    first = tower(x)
    again = tower(x)
    mixed_in = torch.cat([x[:2], torch.randn(3, 3, 64, 64), x[4:5]])
    mixed = tower(mixed_in)
    assert torch.allclose(first, expected, atol=1e-6)
    assert torch.equal(again, first)
    assert calls == [6, 3]  # the second call hit the memo; the third encoded only the 3 new rows
    with torch.no_grad():
        direct = tower.projection(tower.encoder(mixed_in))
    assert torch.allclose(mixed, direct, atol=1e-5)


def test_memo_is_bypassed_when_the_encoder_trains() -> None:
    tower = _frozen_image_tower()
    tower.memoize_features(True)
    calls = _counting(tower)
    x = torch.randn(2, 3, 64, 64)
    tower(x)
    for p in tower.encoder.parameters():
        p.requires_grad_(True)
    tower(x)
    tower(x)
    assert calls == [2, 2, 2]


def test_memo_keys_text_rows_by_ids_and_mask() -> None:
    model = polymodal.load("tiny-dual")
    tower = model.towers["text"]
    for p in tower.encoder.parameters():
        p.requires_grad_(False)
    tower.encoder.eval()
    tower.memoize_features(True)
    calls = _counting(tower)
    batch = tower.preprocess(["a red circle", "a blue square above a green star"])
    a = tower(batch)
    b = tower(batch)
    assert calls == [2]
    assert torch.equal(a, b)


def test_efficientnet_image_size_option_round_trips(tmp_path: Any) -> None:
    from PIL import Image

    from polymodal.models.towers import build_tower

    tower = build_tower({"modality": "image", "source": "efficientnet-lite0", "options": {"image_size": 96}})
    x = tower.preprocess([Image.new("RGB", (28, 28), "white")])
    assert x.shape == (1, 3, 96, 96)
    assert tower.encoder.spec()["options"]["image_size"] == 96


def test_preset_loads_are_identical() -> None:
    # lite-dual's projections are fresh (not pretrained): they must still come out the same
    a = polymodal.load("lite-dual").state_dict()
    b = polymodal.load("lite-dual").state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
