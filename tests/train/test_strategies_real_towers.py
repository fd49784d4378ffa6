"""Strategies on the models layer's real towers (tiny-dual: HF ViT + BERT, random init)."""

import torch

from polymodal.config import ModelConfig, TrainConfig
from polymodal.train.strategies import apply_strategy, find_towers, merge_lora


def _model():
    from polymodal.models import build_model

    torch.manual_seed(0)
    return build_model(ModelConfig(preset="tiny-dual"), {})


def test_lora_on_tiny_dual_merges_back_to_the_same_outputs():
    model = _model()
    keys = set(model.state_dict())
    rep = apply_strategy(model, TrainConfig(strategy="lora", lora={"r": 2, "alpha": 4}))
    assert set(rep.lora_towers) == set(find_towers(model)) == {"image", "text"}
    lora = [n for n in rep.names if "lora_" in n]
    assert lora and {n.split(".")[1] for n in lora} == {"image", "text"}
    assert all("lora_" in n or ".encoder." not in n for n in rep.names)  # encoders: adapters only
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2)
    model.eval()
    batch = {"text": model.towers["text"].preprocess(["a red circle", "two blue squares"]),
             "image": torch.rand(2, 3, 64, 64) * 2 - 1, "id": ["a", "b"]}
    before = model(batch).embeddings
    merge_lora(model)
    assert set(model.state_dict()) == keys
    after = model(batch).embeddings
    for m in before:
        torch.testing.assert_close(after[m], before[m], rtol=1e-4, atol=1e-5)


def test_top_k_on_tiny_dual_unfreezes_the_last_block_only():
    model = _model()
    rep = apply_strategy(model, TrainConfig(strategy="top_k", top_k=1))
    for modality, tower in find_towers(model).items():
        last = {id(p) for p in tower.blocks()[-1].parameters()}
        for p in tower.encoder.parameters():
            assert p.requires_grad == (id(p) in last), modality
    assert rep.trainable < rep.total
