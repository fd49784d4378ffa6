"""swap-contrastive on a tiny video-text model: each caption's direction-swapped rewrites are extra
text negatives, encoded by the model's own text tower; the loss is what a hand computation over
the runtime's embeddings gives, nearer swaps cost more, and the swaps' gradient reaches both towers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from polymodal.config import ModelConfig, SwapContrastiveConfig, objective_config
from polymodal.data.loader import make_collate
from polymodal.data.text import word_swaps
from polymodal.errors import ModelError
from polymodal.models import build_model
from polymodal.objectives import ContrastiveLoss, build_objective
from polymodal.objectives.swap_contrastive import swap_logits

DIRECTIONS = ["left", "right", "up", "down"]
CAPTIONS = ["a red star moving left", "a blue circle that moves up", "a square", "a green cross sliding down"]


@pytest.fixture(scope="module")
def model() -> Any:
    torch.manual_seed(0)
    video = {"modality": "video", "source": "builtin-cnn", "num_frames": 4, "temporal_pooling": "transformer",
             "frame_differences": True, "options": {"image_size": 32, "width": 8}}
    text = {"modality": "text", "source": "builtin-text", "options": {"dim": 16, "layers": 1, "heads": 2}}
    return build_model(ModelConfig(preset=None, kind="dual", towers=[video, text], embed_dim=16))


def _batch(model: Any) -> dict[str, Any]:
    """Through the training collate: it keeps the raw captions (``text_raw``) next to the tokens."""
    from PIL import Image

    rng = np.random.default_rng(1)
    samples = [{"id": str(i), "text": c,
                "video": [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(4)]}
               for i, c in enumerate(CAPTIONS)]
    batch = make_collate(model.processors, {})(samples)
    assert batch["text_raw"] == CAPTIONS
    return batch


def test_word_swaps_rewrite_the_first_group_word_and_skip_texts_without_one() -> None:
    assert word_swaps("a star moving left", [DIRECTIONS]) == ["a star moving right", "a star moving up",
                                                              "a star moving down"]
    assert word_swaps("a leftover square", [DIRECTIONS]) == []  # whole words only


def test_config_rejects_a_group_that_cannot_swap() -> None:
    with pytest.raises(ValidationError, match="two or more distinct"):
        objective_config({"kind": "swap-contrastive", "swap_words": [["left", "left"]]})


def test_loss_matches_a_hand_computation_over_the_swapped_captions(model: Any) -> None:
    model.eval()
    objective = build_objective(SwapContrastiveConfig(swap_words=[DIRECTIONS]), model)
    batch = _batch(model)
    with torch.no_grad():
        result = objective(model(batch), batch)
        plain = ContrastiveLoss()(model(batch), batch).loss
        video = model.embed("video", batch["video"])
        text = model.embed("text", batch["text"])
        scale = model.logit_scale.exp()
    swaps = [word_swaps(c, [DIRECTIONS]) for c in CAPTIONS]
    to_text = []
    for i, own in enumerate(swaps):  # each clip: in-batch captions, then its own swaps
        extra = model.encode_text(own, bf16=False) if own else torch.empty(0, 16)
        logits = scale * video[i] @ torch.cat([text, extra]).T
        to_text.append(F.cross_entropy(logits[None], torch.tensor([i])))
    to_video = F.cross_entropy(scale * text @ video.T, torch.arange(len(CAPTIONS)))
    expected = (torch.stack(to_text).mean() + to_video) / 2
    assert torch.allclose(result.loss, expected, atol=1e-4)
    assert float(result.loss) > float(plain)  # the swaps are negatives the plain loss never saw
    assert 0.0 <= float(result.metrics["swap_acc_video"]) <= 1.0


def test_nearer_swaps_cost_more() -> None:
    anchor = F.normalize(torch.randn(2, 8), dim=-1)
    owner = torch.tensor([0, 0, 1])
    scale = torch.tensor(10.0)
    in_batch = scale * anchor @ anchor.T  # each row's own caption at similarity 1
    target = torch.arange(2)

    def loss(swapped: torch.Tensor) -> float:
        hard = swap_logits(anchor, swapped, owner, 2, scale)
        assert torch.isinf(hard[1, 1])  # row 1 has one swap: its second slot stays empty
        return float(F.cross_entropy(torch.cat([in_batch, hard], 1), target))

    near, far = anchor[owner] * 0.95, -anchor[owner]
    assert loss(near) > loss(far) + 0.5


def test_swap_gradient_reaches_both_towers(model: Any) -> None:
    model.train()
    batch = _batch(model)
    objective = build_objective(SwapContrastiveConfig(swap_words=[DIRECTIONS]), model)
    grads = {}
    for name, loss_fn in (("swap", objective), ("plain", ContrastiveLoss())):
        model.zero_grad()
        loss_fn(model(batch), batch).loss.backward()
        grads[name] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    for tower in ("towers.video.", "towers.text."):
        names = [n for n in grads["swap"] if n.startswith(tower)]
        assert names and any(grads["swap"][n].abs().sum() > 0 for n in names)
        # the swapped captions change what each tower is pushed towards
        assert any(not torch.allclose(grads["swap"][n], grads["plain"][n]) for n in names)


def test_a_batch_without_raw_captions_is_a_clear_error(model: Any) -> None:
    objective = build_objective(SwapContrastiveConfig(swap_words=[DIRECTIONS]), model)
    batch = _batch(model)
    del batch["text_raw"]
    with torch.no_grad(), pytest.raises(ModelError, match="text_raw"):
        objective(model(batch), batch)
