"""Towers from HF folders (the real from_pretrained path), built-in towers, video towers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polymodal.errors import ModelError
from polymodal.models.towers import build_tower


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Tiny random-init BERT / ViT / ConvNeXt / wav2vec2 saved like any hub model folder."""
    from transformers import AutoModel, ViTImageProcessor, Wav2Vec2FeatureExtractor

    from polymodal.models.encoders.tiny import minilm_tokenizer, tiny_config

    root = tmp_path_factory.mktemp("hf")
    out = {}
    for family in ("bert", "vit", "convnext", "wav2vec2"):
        folder = root / family
        torch.manual_seed(0)
        AutoModel.from_config(tiny_config(family)).save_pretrained(folder)
        if family == "bert":
            minilm_tokenizer().save_pretrained(folder)
        elif family == "wav2vec2":
            Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True).save_pretrained(folder)
        else:
            ViTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
        out[family] = str(folder)
    return out


def _waves() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (4000, 9000, 16000)]


@pytest.mark.parametrize("pooling", ["mean", "cls", "pooler"])
def test_hf_text_tower_pooling(hf_folders, texts, pooling):  # type: ignore[no-untyped-def]
    tower = build_tower({"modality": "text", "source": "hf", "name_or_path": hf_folders["bert"], "pooling": pooling,
                         "projection_dim": 8}, local_files_only=True)
    inputs = tower.preprocess(texts)
    pooled = tower(inputs)
    tokens, mask = tower.forward_tokens(inputs)
    assert pooled.shape == (5, 8) and tokens.shape[:2] == mask.shape and tokens.shape[-1] == tower.hidden_dim == 32
    if pooling == "cls":  # CLS pooling is the first token, before the projection
        torch.testing.assert_close(tower.encoder(inputs), tokens[:, 0])
    assert len(tower.blocks()) == 2 and tower.lora_targets() == ["query", "value"]


@pytest.mark.parametrize("family", ["vit", "convnext"])
def test_hf_vision_towers(hf_folders, images, family):  # type: ignore[no-untyped-def]
    tower = build_tower({"modality": "image", "source": "hf", "name_or_path": hf_folders[family]}, local_files_only=True)
    x = tower.preprocess(images)
    assert x.shape == (5, 3, 64, 64)
    tokens, mask = tower.forward_tokens(x)
    assert tokens.shape[0] == 5 and tokens.shape[-1] == tower.hidden_dim and bool(mask.all())
    assert tower(x).shape == (5, tower.output_dim)
    assert tower.blocks()


def test_hf_audio_tower_masks_padding(hf_folders):  # type: ignore[no-untyped-def]
    tower = build_tower({"modality": "audio", "source": "hf", "name_or_path": hf_folders["wav2vec2"]}, local_files_only=True).eval()
    waves = _waves()
    inputs = tower.preprocess(waves)
    _, mask = tower.forward_tokens(inputs)
    assert mask.sum(1).tolist()[0] < mask.sum(1).tolist()[2]  # the short clip has fewer valid frames
    with torch.no_grad():
        alone = tower(tower.preprocess(waves[:1]))
        padded = tower(inputs)[:1]
    torch.testing.assert_close(alone, padded, atol=1e-4, rtol=1e-3)


def test_remote_code_needs_pinned_revision(hf_folders):  # type: ignore[no-untyped-def]
    # a hub name's code is pinned by a commit; a local folder's code is the code on disk
    with pytest.raises(ModelError, match="needs a pinned revision"):
        build_tower({"modality": "text", "source": "hf", "name_or_path": "org/model", "trust_remote_code": True},
                    local_files_only=True)
    tower = build_tower({"modality": "text", "source": "hf", "name_or_path": hf_folders["bert"], "trust_remote_code": True},
                        local_files_only=True)
    assert tower.output_dim == 32


def test_missing_local_folder_is_a_clean_error(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(ModelError, match="not available offline"):
        build_tower({"modality": "text", "source": "hf", "name_or_path": "nobody/no-such-model"}, local_files_only=True)


@pytest.mark.parametrize("source,modality", [("builtin-cnn", "image"), ("builtin-vit", "image"), ("builtin-text", "text"), ("builtin-audio", "audio")])
def test_builtin_towers(source, modality, images, texts):  # type: ignore[no-untyped-def]
    tower = build_tower({"modality": modality, "source": source, "projection_dim": 16}).eval()
    items = {"image": images, "text": texts, "audio": _waves()}[modality]
    inputs = tower.preprocess(items)
    out = tower(inputs)
    assert out.shape == (len(items), 16) and torch.isfinite(out).all()
    tokens, mask = tower.forward_tokens(inputs)
    assert tokens.shape[:2] == mask.shape and tower.blocks()
    if modality in ("text", "audio"):  # padding must not change a short item's embedding
        with torch.no_grad():
            torch.testing.assert_close(tower(tower.preprocess(items[:1]))[0], out[0].detach(), atol=1e-4, rtol=1e-3)


def test_source_modality_mismatch():
    with pytest.raises(ModelError, match="text tower"):
        build_tower({"modality": "image", "source": "minilm"})


@pytest.mark.parametrize("pooling", ["mean", "transformer"])
def test_video_tower(images, pooling):  # type: ignore[no-untyped-def]
    tower = build_tower({"modality": "video", "source": "builtin-cnn", "num_frames": 3, "temporal_pooling": pooling})
    clips = [images[:2], images, images[:1]]  # 2, 5 and 1 frames -> all sampled/padded to 3
    x = tower.preprocess(clips)
    assert x.shape == (3, 3, 3, 64, 64)
    tokens, mask = tower.forward_tokens(x)
    assert tokens.shape == (3, 3, tower.hidden_dim) and tower(x).shape == (3, tower.output_dim)


@pytest.mark.parametrize("spec", [
    {"modality": "text", "source": "tiny", "name_or_path": "bert"},
    {"modality": "image", "source": "tiny", "name_or_path": "vit"},
    {"modality": "image", "source": "builtin-cnn"},
    {"modality": "audio", "source": "builtin-audio"},
    {"modality": "text", "source": "builtin-text"},
])
def test_lora_targets_work_with_peft(spec, images, texts):  # type: ignore[no-untyped-def]
    from peft import LoraConfig, get_peft_model

    tower = build_tower(spec).eval()
    items = {"image": images[:2], "text": texts[:2], "audio": _waves()[:2]}[spec["modality"]]
    x = tower.preprocess(items)
    with torch.no_grad():
        before = tower(x)
    tower.encoder = get_peft_model(tower.encoder, LoraConfig(r=2, lora_alpha=4, target_modules=tower.lora_targets()))
    trainable = [n for n, p in tower.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():  # LoRA starts as a no-op (B = 0)
        torch.testing.assert_close(tower(x), before)


def _save(folder, model, processor):  # type: ignore[no-untyped-def]
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


def test_more_hf_audio_families(tmp_path):  # type: ignore[no-untyped-def]
    """Whisper (encoder only, 30 s windows, masked), AST and HuBERT through the same hf path."""
    import transformers as tf

    torch.manual_seed(0)
    small = {"num_attention_heads": 2, "intermediate_size": 64, "hidden_size": 32, "num_hidden_layers": 1}
    folders = {
        "whisper": _save(tmp_path / "w", tf.WhisperModel(tf.WhisperConfig(
            d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=64, decoder_ffn_dim=64)), tf.WhisperFeatureExtractor()),
        "ast": _save(tmp_path / "a", tf.ASTModel(tf.ASTConfig(max_length=128, num_mel_bins=64, **small)),
                     tf.ASTFeatureExtractor(max_length=128, num_mel_bins=64)),
        "hubert": _save(tmp_path / "h", tf.HubertModel(tf.HubertConfig(
            conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2, **small)), tf.Wav2Vec2FeatureExtractor(return_attention_mask=True)),
    }
    for name, folder in folders.items():
        tower = build_tower({"modality": "audio", "source": "hf", "name_or_path": folder}, local_files_only=True).eval()
        inputs = tower.preprocess(_waves()[:2])
        with torch.no_grad():
            tokens, mask = tower.forward_tokens(inputs)
            pooled = tower(inputs)
        assert pooled.shape == (2, 32) and torch.isfinite(pooled).all(), name
        if name == "whisper":  # 30 s window -> 1500 positions, only ~0.25 s / 0.56 s of them valid
            assert tokens.shape[1] == 1500 and 0 < int(mask[0].sum()) < int(mask[1].sum()) < 100


def test_repeated_token_sequences_run_once_with_the_same_result_and_gradients() -> None:
    """A batch with repeats runs each distinct sequence once; outputs and gradients equal the
    plain pass (eval mode; in training, repeats would share a dropout mask)."""
    from polymodal.models.build import build_preset

    tower = build_preset("tiny-dual").tower("text")
    texts = ["a red circle", "two blue squares on the left", "a red circle", "x", "two blue squares on the left"]
    inputs = tower.preprocess(texts)
    calls: list[int] = []
    tower.encoder.register_forward_hook(lambda _m, args, _o: calls.append(int(args[0]["input_ids"].shape[0])))
    tower.eval()
    grads = {}
    outs = {}
    weight = None
    for dedupe in (False, True):
        tower.dedupe_inputs = dedupe
        tower.zero_grad()
        out = tower(inputs)
        if weight is None:  # a fixed random readout, so every output row gets its own gradient
            weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
        (out * weight).sum().backward()
        outs[dedupe] = out.detach()
        grads[dedupe] = {n: p.grad.clone() for n, p in tower.named_parameters() if p.grad is not None}
    assert calls == [5, 3]  # the second pass ran the three distinct sequences only
    torch.testing.assert_close(outs[True], outs[False], atol=1e-6, rtol=1e-5)
    assert grads[True].keys() == grads[False].keys() and grads[True]
    for name in grads[True]:
        torch.testing.assert_close(grads[True][name], grads[False][name], atol=1e-5, rtol=1e-4)


def test_unique_rows_keep_batch_order_and_trim_padding() -> None:
    from polymodal.models.towers import unique_token_rows

    ids = torch.tensor([[1, 5, 2, 0], [1, 7, 8, 2], [1, 5, 2, 0], [1, 5, 2, 0]])
    mask = (ids != 0).long()
    found = unique_token_rows({"input_ids": ids, "attention_mask": mask})
    assert found is not None
    sub, index = found
    assert sub["input_ids"].tolist() == [[1, 5, 2, 0], [1, 7, 8, 2]]
    assert index.tolist() == [0, 1, 0, 0]
    found = unique_token_rows({"input_ids": ids[[0, 2]], "attention_mask": mask[[0, 2]]})
    assert found is not None and found[0]["input_ids"].tolist() == [[1, 5, 2]]  # padding column trimmed
    assert unique_token_rows({"input_ids": ids[:2], "attention_mask": mask[:2]}) is None  # nothing repeats
