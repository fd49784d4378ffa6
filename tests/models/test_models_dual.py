from __future__ import annotations

import json

import pytest
import torch

import polymodal
from polymodal.config import ModelConfig, TowerSpec
from polymodal.errors import ModelError
from polymodal.models.build import build_model
from polymodal.models.dual import DualEncoder, EmbeddingModel


def test_tiny_dual_forward_is_normalised_and_scaled(tiny_dual, images, texts):
    batch = {"image": tiny_dual.towers["image"].preprocess(images), "text": tiny_dual.towers["text"].preprocess(texts)}
    out = tiny_dual(batch)
    for m in ("image", "text"):
        emb = out.embeddings[m]
        assert emb.shape == (5, 32)
        torch.testing.assert_close(emb.norm(dim=-1), torch.ones(5))
    assert out.logit_scale is not None and out.logit_scale.item() == pytest.approx(1 / 0.07, rel=1e-5)


def test_logit_scale_is_clamped_like_clip(tiny_dual):
    model = build_model(ModelConfig(preset="tiny-dual"))
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert model.scale().item() == pytest.approx(100.0, rel=1e-5)


def test_encode_restores_order_after_length_sorting(tiny_dual, texts):
    together = tiny_dual.encode_text(texts, batch_size=2, bf16=False)
    one_by_one = torch.cat([tiny_dual.encode_text([t], bf16=False) for t in texts])
    torch.testing.assert_close(together, one_by_one, atol=1e-5, rtol=1e-4)
    assert together.dtype == torch.float32 and together.shape == (5, 32)


def test_encode_bf16_close_to_fp32(tiny_dual, images, texts):
    for modality, items in (("text", texts), ("image", images)):
        fp32 = tiny_dual.encode(modality, items, bf16=False)
        bf16 = tiny_dual.encode(modality, items, bf16=True)
        assert torch.nn.functional.cosine_similarity(fp32, bf16).min() > 0.99


def test_save_load_round_trip_is_bitwise_and_pickle_free(tiny_dual, images, texts, tmp_path, find_pickles):
    folder = tiny_dual.save_pretrained(tmp_path / "m", card={"training_data": "none", "metrics": {"r@1": 0.5}})
    assert {p.name for p in folder.iterdir()} >= {"config.json", "model.safetensors", "README.md", "towers"}
    assert find_pickles(folder) == []
    assert "r@1" in (folder / "README.md").read_text()
    loaded = polymodal.load(str(folder))
    assert type(loaded) is DualEncoder
    for modality, items in (("text", texts), ("image", images)):
        a = tiny_dual.encode(modality, items, bf16=False)
        b = loaded.encode(modality, items, bf16=False)
        assert torch.equal(a, b)
    assert torch.equal(loaded.logit_scale, tiny_dual.logit_scale)


def test_run_dir_loads_its_model_folder(tiny_dual, tmp_path):
    tiny_dual.save_pretrained(tmp_path / "run" / "model")
    assert isinstance(polymodal.load(tmp_path / "run"), DualEncoder)


def test_build_model_merges_tower_overrides():
    cfg = ModelConfig(preset="minilm", towers=[TowerSpec(modality="image", source="builtin-cnn")], embed_dim=16)
    model = build_model(cfg)
    assert isinstance(model, DualEncoder) and model.modalities == ["text", "image"] and model.embed_dim == 16


def test_single_tower_preset_cannot_be_dual():
    with pytest.raises(ModelError, match="two towers"):
        build_model(ModelConfig(preset="minilm", kind="dual"))


def test_unknown_preset_and_bad_folder(tmp_path):
    with pytest.raises(ModelError, match="neither a known preset"):
        polymodal.load("no-such-preset")
    (tmp_path / "config.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ModelError, match="not a polymodal model folder"):
        polymodal.load(tmp_path)


def test_single_tower_model_has_no_temperature():
    model = polymodal.load("minilm")
    assert type(model) is EmbeddingModel and not hasattr(model, "logit_scale")
