"""Whole CLIP-like models wrapped as DualEncoders give the original model's logits."""

from __future__ import annotations

import pytest
import torch

import polymodal
from polymodal.errors import ModelError
from polymodal.models.wrapped import WrappedDualEncoder


def _tiny(kind: str, folder):  # type: ignore[no-untyped-def]
    import transformers as tf

    from polymodal.models.encoders.tiny import minilm_tokenizer

    common = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 2}
    text = {**common, "vocab_size": 30522, "max_position_embeddings": 64}
    vision = {**common, "image_size": 32, "patch_size": 8}
    torch.manual_seed(0)
    if kind == "clip":
        # BERT's [SEP] (102) ends every text, so CLIP pools there
        cfg = tf.CLIPConfig(text_config={**text, "eos_token_id": 102}, vision_config=vision, projection_dim=16)
        model = tf.CLIPModel(cfg)
        proc = tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    elif kind == "siglip":
        model = tf.SiglipModel(tf.SiglipConfig(text_config=text, vision_config=vision))
        proc = tf.SiglipImageProcessor(size={"height": 32, "width": 32})
    else:
        cfg = tf.ChineseCLIPConfig(text_config={**text, "type_vocab_size": 2}, vision_config=vision, projection_dim=16)
        model = tf.ChineseCLIPModel(cfg)
        proc = tf.ChineseCLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    model.save_pretrained(folder)
    minilm_tokenizer().save_pretrained(folder)
    proc.save_pretrained(folder)
    return type(model).from_pretrained(folder).eval()


@pytest.mark.parametrize("kind", ["clip", "siglip", "chinese_clip"])
def test_wrapped_logits_equal_hf_model(kind, tmp_path, images, texts, find_pickles):  # type: ignore[no-untyped-def]
    reference = _tiny(kind, tmp_path / kind)
    wrapped = polymodal.load(str(tmp_path / kind))
    assert isinstance(wrapped, WrappedDualEncoder)
    batch = {"image": wrapped.towers["image"].preprocess(images), "text": wrapped.towers["text"].preprocess(texts)}
    with torch.no_grad():
        out = wrapped(batch)
        expected = reference(
            input_ids=batch["text"]["input_ids"],
            attention_mask=None if kind == "siglip" else batch["text"]["attention_mask"],
            pixel_values=batch["image"],
        ).logits_per_image
        ours = out.logit_scale * out.embeddings["image"] @ out.embeddings["text"].T
        if kind == "siglip":
            ours = ours + out.logit_bias
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(wrapped.logits(out.embeddings["image"], out.embeddings["text"]), expected, rtol=1e-5, atol=1e-5)

    saved = wrapped.save_pretrained(tmp_path / "saved")
    assert find_pickles(saved) == []
    again = polymodal.load(str(saved))
    for modality, items in (("image", images), ("text", texts)):
        assert torch.equal(again.encode(modality, items, bf16=False), wrapped.encode(modality, items, bf16=False))


@pytest.mark.parametrize("preset", ["clip-vit-b32", "siglip-base", "vit-base-in21k"])
def test_hub_only_preset_offline_fails_cleanly(preset, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: nothing downloaded before
    with pytest.raises(ModelError) as info:
        polymodal.load(preset, local_files_only=True)
    msg = str(info.value)
    assert "not available offline" in msg and "local folder" in msg
    from polymodal.models.presets import get_preset

    p = get_preset(preset)
    assert (p.hf_model or p.towers[0]["name_or_path"]) in msg
    assert "\n" not in msg and "Traceback" not in msg
