import pytest
import torch
from helpers import TinyDual

from polymodal.config import TrainConfig
from polymodal.errors import TrainingError
from polymodal.train.strategies import apply_strategy, merge_lora


def _trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _all(model):
    return {n for n, _ in model.named_parameters()}


def test_full_trains_everything():
    m = TinyDual()
    rep = apply_strategy(m, TrainConfig(strategy="full"))
    assert _trainable(m) == _all(m)
    assert rep.trainable == rep.total == sum(p.numel() for p in m.parameters())


def test_linear_probe_trains_only_projections_and_temperature():
    m = TinyDual()
    rep = apply_strategy(m, TrainConfig(strategy="linear_probe"))
    assert _trainable(m) == {"towers.image.projection.weight", "towers.text.projection.weight", "logit_scale"}
    assert rep.trainable == 2 * 16 * 8 + 1
    assert set(rep.names) == _trainable(m)


def test_top_k_unfreezes_last_blocks_of_chosen_towers():
    m = TinyDual()
    apply_strategy(m, TrainConfig(strategy="top_k", top_k=2, top_k_towers=["text"]))
    enc = {n for n in _trainable(m) if ".encoder." in n}
    expected = {f"towers.text.encoder.layers.{i}.{p}" for i in (1, 2)
                for p in ("fc.weight", "fc.bias", "norm.weight", "norm.bias")}
    assert enc == expected
    assert "towers.image.projection.weight" in _trainable(m)


def test_locked_tower_freezes_its_encoder_and_trains_its_projection():
    m = TinyDual()
    apply_strategy(m, TrainConfig(strategy="locked", locked_towers=["image"]))
    image_trainable = {n for n in _trainable(m) if n.startswith("towers.image.")}
    assert image_trainable == {"towers.image.projection.weight"}
    assert {n for n in _all(m) if n.startswith("towers.text.")} <= _trainable(m)


def test_locked_without_towers_is_an_error():
    with pytest.raises(TrainingError, match="locked_towers"):
        apply_strategy(TinyDual(), TrainConfig(strategy="locked"))


def test_lora_text_only_with_locked_image_lit_style():
    m = TinyDual()
    cfg = TrainConfig(strategy="lora", locked_towers=["image"], lora={"r": 2, "alpha": 4})
    rep = apply_strategy(m, cfg)
    names = _trainable(m)
    lora = {n for n in names if "lora_" in n}
    # A and B per targeted Linear (3 blocks x fc) in the text tower only
    assert len(lora) == 6 and all(n.startswith("towers.text.encoder.") for n in lora)
    assert names - lora == {"towers.text.projection.weight", "towers.image.projection.weight", "logit_scale"}
    assert rep.trainable == 3 * (2 * 16 + 16 * 2) + 2 * 16 * 8 + 1
    assert rep.lora_towers == ["text"]


def test_lora_merge_gives_plain_model_with_same_outputs():
    torch.manual_seed(0)
    m = TinyDual()
    apply_strategy(m, TrainConfig(strategy="lora", lora={"r": 4, "alpha": 8}))
    with torch.no_grad():  # make the adapters non-trivial (B starts at zero)
        for n, p in m.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    m.eval()
    x = {"image": torch.randn(5, 6), "text": torch.randn(5, 6)}
    before = m(x).embeddings
    merge_lora(m)
    assert not any("lora_" in n or "base_layer" in n for n in _all(m))
    assert _all(m) == _all(TinyDual())  # same keys as a model that never had LoRA
    after = m(x).embeddings
    for k in before:
        torch.testing.assert_close(after[k], before[k], rtol=1e-5, atol=1e-6)


def test_lora_unknown_target_is_a_clear_error():
    with pytest.raises(TrainingError, match="text tower"):
        apply_strategy(TinyDual(), TrainConfig(strategy="lora", lora={"target_modules": {"text": ["nope"]}}))
