"""Pruning tiny-dual: structured MLP channels really removed (and rebuilt on load), magnitude zeros."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import polymodal
from polymodal.compress.api import CompressOptions, compress
from polymodal.errors import ModelError


def _params(model) -> int:  # type: ignore[no-untyped-def]
    return sum(p.numel() for p in model.parameters())


def test_structured_prune_narrows_mlps_and_reloads(tiny_folder: Path, tmp_path: Path, texts: list[str], shapes: Path) -> None:
    from polymodal.tasks import evaluate

    res = compress(str(tiny_folder), "prune", tmp_path / "p", CompressOptions(sparsity=0.3))
    fp32, pruned = polymodal.load(tiny_folder), polymodal.load(res.folder)
    widths = res.transforms[0]["mlp_widths"]
    assert widths and all(w < fp32.get_submodule(name).out_features for name, w in widths.items())
    for name, w in widths.items():
        assert pruned.get_submodule(name).out_features == w
    assert _params(pruned) < _params(fp32)
    again = compress(str(tiny_folder), "prune", tmp_path / "p2", CompressOptions(sparsity=0.3)).folder
    assert torch.equal(pruned.encode_text(texts), polymodal.load(again).encode_text(texts))
    assert F.cosine_similarity(fp32.encode_text(texts), pruned.encode_text(texts)).min() < 0.99999
    assert 0.0 <= evaluate(str(res.folder), "zeroshot-classification", shapes, bootstrap=0).metrics["acc@1"].value <= 1


def test_magnitude_prune_zeroes_weights(tiny_folder: Path, tmp_path: Path) -> None:
    res = compress(str(tiny_folder), "prune", tmp_path / "m", CompressOptions(sparsity=0.5, structured=False))
    model = polymodal.load(res.folder)
    w = model.tower("text").encoder.model.encoder.layer[0].intermediate.dense.weight
    assert 0.49 <= float((w == 0).float().mean()) <= 0.51
    with pytest.raises(ModelError, match="between 0 and 1"):
        compress(str(tiny_folder), "prune", tmp_path / "bad", CompressOptions(sparsity=1.0))


def test_recovery_fine_tune_trains_the_pruned_model_and_it_still_loads_narrow(
        tiny_folder: Path, tmp_path: Path, texts: list[str], shapes: Path) -> None:
    plain = compress(str(tiny_folder), "prune", tmp_path / "p", CompressOptions(sparsity=0.5))
    res = compress(str(tiny_folder), "prune", tmp_path / "r", CompressOptions(sparsity=0.5, data=shapes, steps=3))
    kinds = [t["kind"] for t in res.transforms]
    assert kinds == ["pruned", "pruned_recovered"], kinds
    record = res.transforms[1]
    assert record["steps"] == 3 and "val/loss" in record and "recovered with 3 contrastive steps" in res.summary
    recovered, pruned = polymodal.load(res.folder), polymodal.load(plain.folder)
    for name, width in res.transforms[0]["mlp_widths"].items():  # still narrow after training and reload
        assert recovered.get_submodule(name).out_features == width
    # the fine-tune moved the weights: the recovered model embeds differently from the pruned one
    assert not torch.allclose(recovered.encode_text(texts), pruned.encode_text(texts))
    with pytest.raises(ModelError, match="needs --data"):
        compress(str(tiny_folder), "prune", tmp_path / "s", CompressOptions(sparsity=0.5, steps=3))
    with pytest.raises(ModelError, match="refill"):
        compress(str(tiny_folder), "prune", tmp_path / "u", CompressOptions(sparsity=0.5, structured=False, data=shapes))
