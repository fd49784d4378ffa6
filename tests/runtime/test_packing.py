"""The runtime's CPU inference path: prepacked bf16 linears, token-count sorting, worker threads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from polymodal.models.dual import EmbeddingModel
from polymodal.models.towers import build_tower
from polymodal.runtime import packing, workers
from polymodal.runtime.engine import RUNTIME

needs_packing = pytest.mark.skipif(not packing.packed_linear_works(), reason="no prepacked bf16 linear on this CPU")


@pytest.fixture(scope="module")
def bert_model(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A tiny random-init BERT saved as a hub folder, loaded as a one-tower text model."""
    from transformers import AutoModel

    from polymodal.models.encoders.tiny import minilm_tokenizer, tiny_config

    folder = tmp_path_factory.mktemp("bert")
    torch.manual_seed(0)
    AutoModel.from_config(tiny_config("bert")).save_pretrained(folder)
    minilm_tokenizer().save_pretrained(folder)
    tower = build_tower({"modality": "text", "source": "hf", "name_or_path": str(folder)}, local_files_only=True)
    return EmbeddingModel({"text": tower})


SENTENCES = [
    "a red circle",
    "the quick brown fox jumps over the lazy dog near the river bank",
    "ok",
    "images and text in one space",
    "a much longer sentence that goes on and on about nothing in particular, just to pad a batch",
    "short one",
    "seven words are in this one here",
]


@needs_packing
def test_packed_linear_matches_linear_and_keeps_weight():
    torch.manual_seed(0)
    lin = nn.Linear(24, 40).to(torch.bfloat16)
    packed = packing.PackedLinear(lin)
    x = torch.randn(3, 7, 24).to(torch.bfloat16)
    with torch.inference_mode():
        torch.testing.assert_close(packed(x).float(), lin(x).float(), atol=0.05, rtol=0.02)
    assert packed.weight.dtype == torch.bfloat16 and packed.weight.shape == (40, 24)


@needs_packing
def test_pack_linears_replaces_plain_layers_but_not_lora_layers():
    from peft import LoraConfig, get_peft_model

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.query = nn.Linear(8, 8)
            self.out = nn.Sequential(nn.Linear(8, 8), nn.GELU())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.query(x))

    plain = Block().to(torch.bfloat16)
    assert packing.pack_linears(plain) == 2
    assert isinstance(plain.query, packing.PackedLinear) and isinstance(plain.out[0], packing.PackedLinear)

    lora = get_peft_model(Block(), LoraConfig(r=2, target_modules=["query"])).to(torch.bfloat16)
    assert packing.pack_linears(lora) == 1  # out.0 only; the LoRA-wrapped query keeps its layers
    with torch.inference_mode():
        assert lora(torch.randn(2, 8).to(torch.bfloat16)).shape == (2, 8)


def test_worker_plan():
    cpu, threads = torch.device("cpu"), torch.get_num_threads()
    assert workers.worker_plan(1, cpu) == (1, threads)
    assert workers.worker_plan(50, torch.device("cuda")) == (1, threads)
    count, each = workers.worker_plan(50, cpu)
    assert 1 <= count <= workers.MAX_WORKERS and count * each <= max(threads, 1)


def test_text_lengths_are_token_counts(bert_model):
    enc = bert_model.tower("text").encoder
    lengths = enc.item_lengths(SENTENCES)
    ids = enc.preprocess(SENTENCES)["attention_mask"].sum(dim=1).tolist()
    assert lengths == ids


@pytest.mark.parametrize("bf16", [False, True])
def test_threaded_encode_equals_one_batch_at_a_time(bert_model, monkeypatch, bf16):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert workers.worker_plan(4, torch.device("cpu"))[0] == 2
        threaded = bert_model.encode_text(SENTENCES, batch_size=2, bf16=bf16)
        monkeypatch.setattr(workers, "MAX_WORKERS", 1)
        sequential = bert_model.encode_text(SENTENCES, batch_size=2, bf16=bf16)
        assert torch.get_num_threads() == 2  # the workers' thread setting is undone
    finally:
        torch.set_num_threads(threads)
    one_by_one = torch.cat([bert_model.encode_text([s], bf16=bf16) for s in SENTENCES])
    torch.testing.assert_close(threaded, sequential, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(threaded, one_by_one, atol=2e-2 if bf16 else 1e-5, rtol=1e-3)


@needs_packing
def test_bf16_copy_is_packed_and_close_to_fp32(bert_model):
    fp32 = bert_model.encode_text(SENTENCES, bf16=False)
    fast = bert_model.encode_text(SENTENCES, bf16=True)
    copy = RUNTIME.bf16_copy(bert_model, "text")
    assert copy is not None
    assert any(isinstance(m, packing.PackedLinear) for m in copy.modules())
    assert not any(isinstance(m, packing.PackedLinear) for m in bert_model.modules())  # the model itself untouched
    assert torch.nn.functional.cosine_similarity(fp32, fast).min() >= 0.995
