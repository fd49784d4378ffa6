"""What models return: dataclasses with a fixed field order, read by field, never by guessing.

The order is part of the contract (ONNX export flattens outputs in field order). Consumers
tell a dual encoder from a classifier by the output's type, not by which keys are present.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class EmbeddingOutput:
    """A dual encoder's (or single tower's) pass: L2-normalised float32 embeddings per modality,
    and, for dual encoders, the similarity scale exp(t) (+ SigLIP's bias)."""

    embeddings: dict[str, torch.Tensor]
    logit_scale: torch.Tensor | None = None
    logit_bias: torch.Tensor | None = None


@dataclass
class ClassifierOutput:
    """A fusion / classifier model's pass: logits per label column (the heads), the pooled
    tower outputs the fusion read (empty for token-level fusions) and the fused vector."""

    logits: dict[str, torch.Tensor]
    embeddings: dict[str, torch.Tensor] = field(default_factory=dict)
    fused: torch.Tensor | None = None


@dataclass
class CTCOutput:
    """A CTC model's pass: float32 log-probabilities per frame over the vocabulary (blank at 0),
    (B, T, V), and each clip's number of real frames (B,)."""

    log_probs: torch.Tensor
    lengths: torch.Tensor


@dataclass
class CaptionOutput:
    """A captioning model's teacher-forced pass: next-token logits (B, T, V) and the token each
    position should predict (B, T), -100 where nothing is predicted (padding, a prompt)."""

    logits: torch.Tensor
    targets: torch.Tensor


@dataclass
class DiffusionOutput:
    """A text-to-image model's training pass: the UNet's prediction for noised images and what it
    should have predicted (the added noise, the velocity or the clean image: ``GeneratorSpec.prediction_type``),
    both (B, C, H, W) in the UNet's folded pixel space; ``weight`` (B,) weighs each row's error (min-SNR)."""

    prediction: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor | None = None


ModelOutput = EmbeddingOutput | ClassifierOutput | CTCOutput | CaptionOutput | DiffusionOutput
