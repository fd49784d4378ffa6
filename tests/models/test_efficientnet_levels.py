"""EfficientNet-Lite0's ``feature_levels`` / ``grid`` options, in a captioner on real shapes images.

One packaged ImageNet network at 64 px is shared by every encoder here (the options change which
outputs are read, not the weights; passes of a random-init network ran ~50x slower here, cause
not diagnosed): the default grid is the head's (unchanged),
a middle block's grid joins or replaces it, the locked grid is cached like any locked tower's,
the decoder trains on the cached grid, and the saved captioner reloads and captions alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import polymodal
from polymodal.config import DataConfig
from polymodal.errors import ModelError
from polymodal.models.captioner import CaptioningModel
from polymodal.models.decoder import TextDecoder, data_tokenizer
from polymodal.models.encoders.efficientnet_lite import EfficientNetLiteEncoder
from polymodal.models.towers import Tower, build_tower
from polymodal.objectives.captioning import CaptioningLoss
from polymodal.train.feature_cache import precompute_features, stack_tokens


def _sharing(net: Any, **options: Any) -> EfficientNetLiteEncoder:
    """An encoder with these options over an already loaded network: one weights load for the module."""
    spec = {"modality": "image", "source": "efficientnet-lite0", "options": {"image_size": 64, **options}}
    encoder = EfficientNetLiteEncoder(spec, pretrained=False)
    encoder.net = net
    return encoder.eval()


@pytest.fixture(scope="module")
def imagenet_net() -> Any:
    return build_tower({"modality": "image", "source": "efficientnet-lite0", "options": {"image_size": 64}}).encoder.net


@pytest.fixture(scope="module")
def rows(shapes_dir: Path) -> list[dict[str, Any]]:
    manifest = (shapes_dir / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line) for line in manifest[:4]]


def test_levels_build_the_grid_the_options_name(shapes_dir: Path, rows: list[dict[str, Any]], imagenet_net: Any) -> None:
    default = _sharing(imagenet_net)
    both, middle = _sharing(imagenet_net, feature_levels=[7, "head"]), _sharing(imagenet_net, feature_levels=[7])
    pixels = default.preprocess([str(shapes_dir / r["image"]) for r in rows[:2]])
    with torch.inference_mode():
        head, _ = default.forward_tokens(pixels)
        joined, _ = both.forward_tokens(pixels)
        own, _ = middle.forward_tokens(pixels)
    # 64 px: the head's grid is 2x2 of 1280; block 7 (80 channels, stride 16) is 4x4
    assert head.shape == (2, 4, 1280) and own.shape == (2, 16, 80) and middle.hidden_dim == 80
    assert joined.shape == (2, 4, 1360) and both.hidden_dim == 1360
    # joined: the head's grid unchanged beside block 7's, each 2x2 cell the mean of its four 4x4 cells
    torch.testing.assert_close(joined[..., 80:], head)
    cells = own.reshape(2, 2, 2, 2, 2, 80).mean((2, 4)).reshape(2, 4, 80)
    torch.testing.assert_close(joined[..., :80], cells)
    with pytest.raises(ModelError, match="feature_levels must be distinct block indices in 0..15"):
        _sharing(imagenet_net, feature_levels=[16])
    with pytest.raises(ModelError, match="feature_levels must be distinct"):
        _sharing(imagenet_net, feature_levels=[7, 7])
    with pytest.raises(ModelError, match="options.grid must be an integer"):
        _sharing(imagenet_net, feature_levels=[7], grid=0)


def test_a_multi_level_captioner_caches_trains_saves_and_captions(shapes_dir: Path, rows: list[dict[str, Any]],
                                                                  tmp_path: Path, find_pickles: Any,
                                                                  imagenet_net: Any) -> None:
    torch.manual_seed(0)
    image = Tower(_sharing(imagenet_net, feature_levels=[4, 7], grid=2))
    texts = [r["text"] for r in rows]
    decoder = TextDecoder.build("scratch", num_layers=1, hidden_dim=32, num_heads=2, max_length=24, dropout=0.0,
                                tokenizer=data_tokenizer(texts))
    model = CaptioningModel(image, decoder)
    assert model.bridge.num_tokens == 4 and image.hidden_dim == 40 + 80
    for p in image.parameters():
        p.requires_grad_(False)
    cache = precompute_features(image, "image", rows, shapes_dir, DataConfig(), batch_size=4, bf16=False, tokens=True)
    assert cache is not None and cache[rows[0]["id"]][0].shape == (4, 120)
    batch = {"image": stack_tokens([cache[r["id"]] for r in rows]), "text": decoder.preprocess(texts),
             "id": [r["id"] for r in rows]}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    loss_fn = CaptioningLoss()
    model.train()
    losses = []
    for _ in range(3):
        loss = loss_fn(model(batch), batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    model.eval()
    folder = model.save_pretrained(tmp_path / "levels-cap")
    loaded = polymodal.load(folder)
    assert isinstance(loaded, CaptioningModel) and loaded.image_tower.encoder.feature_levels == (4, 7)
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    paths = [str(shapes_dir / r["image"]) for r in rows[:2]]
    assert loaded.generate(paths, max_new_tokens=5) == model.generate(paths, max_new_tokens=5)
    assert find_pickles(folder) == []
