"""Small towers trained from scratch: image CNN, image ViT, byte-level text transformer, log-mel audio CNN.

They need no downloaded files at all (the text tower tokenizes UTF-8 bytes, the audio tower
computes its own log-mel spectrogram with torch.stft), so they work on any offline machine.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.encoders.base import Encoder, as_pil, as_waveform, masked_mean


def image_tensor(img: Image.Image, size: int, mean: float | tuple[float, ...], std: float | tuple[float, ...]) -> torch.Tensor:
    """Resize the short side to ``size``, centre-crop a square, scale to [0,1], normalise."""
    img = TF.resize(img, [size], antialias=True)
    img = TF.center_crop(img, [size, size])
    t = TF.to_dtype(TF.to_image(img), torch.float32, scale=True)
    m = torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (t - m) / s


def _conv_stage(c_in: int, c_out: int) -> nn.Sequential:
    """conv 3x3 stride 2 -> BN -> GELU, with named parts (LoRA targets ``conv``)."""
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), bn=nn.BatchNorm2d(c_out), act=nn.GELU(),
    ))


class _ImageEncoder(Encoder):
    modality = "image"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self._spec = dict(spec)
        self.options = dict(spec.get("options") or {})
        self.image_size = int(self.options.get("image_size", 64))

    def preprocess(self, items: list[Any]) -> torch.Tensor:
        return torch.stack([image_tensor(as_pil(i), self.image_size, 0.5, 0.5) for i in items])

    def spec(self) -> dict[str, Any]:
        return dict(self._spec)


class BuiltinCNN(_ImageEncoder):
    """A plain conv net: stages of (conv 3x3 stride 2, BN, GELU); tokens are the final grid cells."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        width = int(self.options.get("width", 32))
        depth = int(self.options.get("depth", 4))
        chans = [3] + [width * min(2**i, 8) for i in range(depth)]
        self.stages = nn.ModuleList(_conv_stage(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True))
        self.hidden_dim = self.pooled_dim = chans[-1]

    def forward_tokens(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = inputs
        for stage in self.stages:
            x = stage(x)
        tokens = x.flatten(2).transpose(1, 2)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

    def blocks(self) -> list[nn.Module]:
        return list(self.stages)

    def lora_targets(self) -> list[str]:
        return ["conv"]  # the conv inside each stage (peft supports Conv2d)


def _transformer(dim: int, layers: int, heads: int, dropout: float) -> nn.ModuleList:
    return nn.ModuleList(
        nn.TransformerEncoderLayer(dim, heads, dim * 4, dropout, activation="gelu", batch_first=True, norm_first=True)
        for _ in range(layers)
    )


class BuiltinViT(_ImageEncoder):
    """A small ViT: conv patch embedding, learned positions, a CLS token, pre-norm blocks."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        dim = int(self.options.get("dim", 64))
        patch = int(self.options.get("patch_size", 8))
        n = (self.image_size // patch) ** 2
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.layers = _transformer(dim, int(self.options.get("layers", 2)), int(self.options.get("heads", 4)), 0.0)
        self.norm = nn.LayerNorm(dim)
        self.hidden_dim = self.pooled_dim = dim

    def forward_tokens(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.patch(inputs).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos[:, : x.shape[1] + 1]
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        return x, torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(inputs)[0][:, 0]

    def blocks(self) -> list[nn.Module]:
        return list(self.layers)

    def lora_targets(self) -> list[str]:
        return ["linear1", "linear2"]


class ByteTokenizer:
    """UTF-8 bytes as tokens: 0 pad, 1 begin, 2 end, 3..258 the byte values. Needs no files."""

    vocab_size = 259

    def __init__(self, max_length: int = 128) -> None:
        self.max_length = max_length

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        rows = [[1] + [b + 3 for b in t.encode("utf-8")[: self.max_length - 2]] + [2] for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        return {"input_ids": ids, "attention_mask": ids.ne(0).long()}


class BuiltinText(Encoder):
    """A small pre-norm transformer over UTF-8 bytes, mean-pooled."""

    modality = "text"
    bf16_safe = True

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self._spec = dict(spec)
        opts = dict(spec.get("options") or {})
        dim = int(opts.get("dim", 64))
        self.tokenizer = ByteTokenizer(int(opts.get("max_length", 128)))
        self.embed = nn.Embedding(ByteTokenizer.vocab_size, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.randn(1, self.tokenizer.max_length, dim) * 0.02)
        self.layers = _transformer(dim, int(opts.get("layers", 2)), int(opts.get("heads", 4)), 0.0)
        self.norm = nn.LayerNorm(dim)
        self.hidden_dim = self.pooled_dim = dim

    def preprocess(self, items: list[Any]) -> dict[str, torch.Tensor]:
        return self.tokenizer([str(t) for t in items])

    def forward_tokens(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = inputs["input_ids"], inputs["attention_mask"].bool()
        x = self.embed(ids) + self.pos[:, : ids.shape[1]]
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        return self.norm(x), mask

    def blocks(self) -> list[nn.Module]:
        return list(self.layers)

    def lora_targets(self) -> list[str]:
        return ["linear1", "linear2"]

    def spec(self) -> dict[str, Any]:
        return dict(self._spec)

    def item_length(self, item: Any) -> int:
        return len(str(item))


class BuiltinAudio(Encoder):
    """Log-mel spectrogram (torch.stft + a mel filter bank) into a small 2-D CNN; tokens over time."""

    modality = "audio"
    mel: torch.Tensor
    window: torch.Tensor

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        from transformers.audio_utils import mel_filter_bank

        self._spec = dict(spec)
        opts = dict(spec.get("options") or {})
        self.sample_rate = int(opts.get("sample_rate", 16000))
        self.n_fft, self.hop = int(opts.get("n_fft", 400)), int(opts.get("hop_length", 160))
        n_mels = int(opts.get("n_mels", 64))
        bank = mel_filter_bank(
            num_frequency_bins=self.n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=20.0,
            max_frequency=self.sample_rate / 2, sampling_rate=self.sample_rate, norm="slaney", mel_scale="slaney",
        )
        self.register_buffer("mel", torch.from_numpy(np.asarray(bank, dtype=np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        width, self.depth = int(opts.get("width", 32)), int(opts.get("depth", 3))
        chans = [1] + [width * 2**i for i in range(self.depth)]
        self.stages = nn.ModuleList(_conv_stage(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True))
        # "flatten" keeps where in the spectrum a feature sits (speech recognition needs it);
        # "mean" averages the mel bins away (enough for telling clips apart)
        self.freq_pool = str(opts.get("freq_pool", "mean"))
        if self.freq_pool not in ("mean", "flatten"):
            raise ModelError(f"builtin-audio: options.freq_pool must be 'mean' or 'flatten', got {self.freq_pool!r}")
        bins = n_mels
        for _ in range(self.depth):
            bins = (bins + 1) // 2
        self.hidden_dim = self.pooled_dim = chans[-1] * (bins if self.freq_pool == "flatten" else 1)

    def preprocess(self, items: list[Any]) -> dict[str, torch.Tensor]:
        waves = [torch.from_numpy(as_waveform(w)) for w in items]
        longest = max(max(len(w) for w in waves), self.n_fft)
        batch = torch.zeros(len(waves), longest)
        for i, w in enumerate(waves):
            batch[i, : len(w)] = w
        # zero padding (not stft's reflect) so a clip's frames are the same alone or padded in a batch
        batch = torch.nn.functional.pad(batch, (self.n_fft // 2, self.n_fft // 2))
        spec = torch.stft(batch, self.n_fft, self.hop, window=self.window, center=False, return_complex=True).abs().pow(2)
        logmel = torch.log(torch.clamp(self.mel.T @ spec, min=1e-10))  # (B, mels, frames)
        frames = torch.tensor([len(w) // self.hop + 1 for w in waves])
        mask = torch.arange(logmel.shape[-1])[None, :] < frames[:, None]
        return {"input_features": logmel, "attention_mask": mask.long()}

    def forward_tokens(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        feats, mask = inputs["input_features"], inputs["attention_mask"].bool()
        # per-utterance normalisation over the valid frames keeps loud and quiet clips comparable
        m = mask[:, None, :].to(feats.dtype)
        mean = (feats * m).sum((1, 2), keepdim=True) / (m.sum((1, 2), keepdim=True) * feats.shape[1]).clamp_min(1)
        var = (((feats - mean) * m) ** 2).sum((1, 2), keepdim=True) / (m.sum((1, 2), keepdim=True) * feats.shape[1]).clamp_min(1)
        x = ((feats - mean) / (var.sqrt() + 1e-5) * m).unsqueeze(1)
        for stage in self.stages:
            mask = mask[:, ::2]
            # padded frames are zeroed after every stage so they cannot leak into valid ones
            x = stage(x) * mask[:, None, None, :].to(x.dtype)
        pooled = x.mean(2) if self.freq_pool == "mean" else x.flatten(1, 2)  # (B, C or C*bins, frames')
        tokens = pooled.transpose(1, 2)
        return tokens, mask[:, : tokens.shape[1]]

    def output_frames(self, num_samples: int) -> int:
        """Token frames ``forward_tokens`` gives a clip of ``num_samples`` samples (each stage halves, rounding up)."""
        frames = num_samples // self.hop + 1
        for _ in range(self.depth):
            frames = (frames + 1) // 2
        return frames

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens, mask = self.forward_tokens(inputs)
        return masked_mean(tokens, mask)

    def blocks(self) -> list[nn.Module]:
        return list(self.stages)

    def lora_targets(self) -> list[str]:
        return ["conv"]

    def spec(self) -> dict[str, Any]:
        return dict(self._spec)

    def item_length(self, item: Any) -> int:
        return int(math.prod(np.shape(item)))


BUILTIN = {"builtin-cnn": BuiltinCNN, "builtin-vit": BuiltinViT, "builtin-text": BuiltinText, "builtin-audio": BuiltinAudio}
