"""Video = a frame (image) encoder applied to each sampled frame + temporal pooling.

Temporal pooling is a mean over frames, or a small transformer over the frame embeddings
(with learned frame positions) followed by a mean. ``frame_differences`` feeds the frame
tower frame 0 and then each frame minus the one before: a moving shape leaves a signed pair
(where it arrived, where it left), so which way it moved is a local pattern any conv or patch
can see, and a clip played backwards gives other inputs even to the mean (measured:
docs/examples.md section 6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.encoders.base import Encoder


def sample_frames(frames: list[Any], n: int) -> list[Any]:
    """Exactly ``n`` frames: evenly spaced when there are more, the last repeated when fewer."""
    if not frames:
        raise ModelError("a video with no frames cannot be encoded")
    if len(frames) >= n:
        step = len(frames) / n
        return [frames[int(i * step)] for i in range(n)]
    return list(frames) + [frames[-1]] * (n - len(frames))


class VideoEncoder(Encoder):
    modality = "video"

    def __init__(self, frame: Encoder, spec: dict[str, Any]) -> None:
        super().__init__()
        if frame.modality != "image":
            raise ModelError(f"a video tower needs an image frame encoder, got a {frame.modality} one")
        self.frame = frame
        self._spec = dict(spec)
        self.num_frames = int(spec.get("num_frames", 8))
        self.temporal_pooling = spec.get("temporal_pooling", "mean")
        self.frame_differences = bool(spec.get("frame_differences", False))
        self.hidden_dim = self.pooled_dim = frame.pooled_dim
        self.bf16_safe = frame.bf16_safe
        self.image_size = getattr(frame, "image_size", None)
        self.temporal: nn.Module | None = None
        if self.temporal_pooling == "transformer":
            d = self.hidden_dim
            heads = next(h for h in (8, 4, 2, 1) if d % h == 0)
            # not zeros: with equal positions a transformer + mean is blind to frame order, and
            # "moving left" and "moving right" of one object would start out as the same clip
            self.frame_pos = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, self.num_frames, d), std=0.02))
            layer = nn.TransformerEncoderLayer(d, heads, d * 2, 0.0, activation="gelu", batch_first=True, norm_first=True)
            self.temporal = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)

    def preprocess(self, items: list[Any]) -> torch.Tensor:
        clips = [self.frame.preprocess(sample_frames(list(v), self.num_frames)) for v in items]
        return torch.stack(clips)  # (B, T, 3, H, W)

    def forward_tokens(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = inputs.shape[:2]
        if self.frame_differences:
            inputs = torch.cat([inputs[:, :1], inputs[:, 1:] - inputs[:, :-1]], 1)
        per_frame = self.frame(inputs.flatten(0, 1)).view(b, t, -1)
        if self.temporal is not None:
            per_frame = self.temporal(per_frame + self.frame_pos[:, :t])
        return per_frame, torch.ones(b, t, dtype=torch.bool, device=per_frame.device)

    def blocks(self) -> list[nn.Module]:
        return self.frame.blocks() + ([self.temporal] if self.temporal is not None else [])

    def lora_targets(self) -> list[str]:
        return self.frame.lora_targets()

    def spec(self) -> dict[str, Any]:
        return {**self._spec, "frame": self.frame.spec()}

    def save_assets(self, folder: Path) -> None:
        self.frame.save_assets(folder)
