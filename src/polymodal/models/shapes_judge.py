"""``ShapesJudge``: a small CNN that reads a 64 px ``shapes`` scene (the text-to-image task's judge).

Heads: the main (largest) object's colour and shape, the second object's colour and shape, where the
main object sits relative to the second, and the object count. Training and scoring live in
``tasks/shapes_judge.py``; this module holds only the model, so loading any saved folder (which
imports every built-in model class) does not pull in the task layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from polymodal.data.builtin import _draw as draw
from polymodal.data.builtin.shapes import RELATIONS
from polymodal.models.hub import PretrainedMixin, register_model_class

IMAGE_SIZE = 64
COLORS: tuple[str, ...] = tuple(sorted(draw.COLORS))
SHAPES: tuple[str, ...] = tuple(draw.SHAPES)
COUNTS = ("1", "2", "3")
# head -> class names; the second object and the relation exist only in scenes of two or more
HEADS: dict[str, tuple[str, ...]] = {"main_color": COLORS, "main_shape": SHAPES, "second_color": COLORS,
                                     "second_shape": SHAPES, "relation": RELATIONS, "count": COUNTS}


class ShapesJudge(PretrainedMixin, nn.Module):
    """Four stride-2 conv blocks (64 -> 4 px) flattened, so the heads keep where things are."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = int(width)
        w = self.width
        layers: list[nn.Module] = []
        for c_in, c_out in ((3, w), (w, 2 * w), (2 * w, 2 * w), (2 * w, 4 * w)):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.features = nn.Sequential(*layers, nn.Flatten(), nn.Linear(4 * w * 16, 256), nn.ReLU())
        self.readers = nn.ModuleDict({k: nn.Linear(256, len(v)) for k, v in HEADS.items()})
        self.card_info: dict[str, Any] = {}

    def forward(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(pixels)
        return {k: head(h) for k, head in self.readers.items()}

    @staticmethod
    def pixels(images: Sequence[Image.Image]) -> torch.Tensor:
        arrays = [np.asarray(im.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC),
                             dtype=np.uint8) for im in images]
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    @torch.inference_mode()
    def predict(self, images: Sequence[Image.Image], batch_size: int = 128) -> list[dict[str, str]]:
        """Per image: the class name each head picks."""
        was = self.training
        self.eval()
        out: list[dict[str, str]] = []
        try:
            for k in range(0, len(images), batch_size):
                logits = self(self.pixels(images[k:k + batch_size]))
                picks = {h: v.argmax(-1).tolist() for h, v in logits.items()}
                out += [{h: HEADS[h][picks[h][i]] for h in HEADS} for i in range(len(picks["count"]))]
        finally:
            self.train(was)
        return out

    def get_config(self) -> dict[str, Any]:
        return {"width": self.width, "heads": {k: list(v) for k, v in HEADS.items()}}

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> ShapesJudge:
        return cls(int(config["width"]))


register_model_class(ShapesJudge)
