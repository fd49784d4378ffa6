"""Small real modules shaped like the models layer's towers, for engine tests that do not
need the real towers (strategies, optimizer, checkpoints, the loop itself)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.models.outputs import EmbeddingOutput


class Block(nn.Module):
    def __init__(self, dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.drop(torch.relu(self.fc(x))))


class Encoder(nn.Module):
    def __init__(self, dim_in: int, dim: int, depth: int) -> None:
        super().__init__()
        self.embed = nn.Linear(dim_in, dim)
        self.layers = nn.ModuleList([Block(dim) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h)
        return h


class TinyTower(nn.Module):
    def __init__(self, modality: str, dim_in: int = 6, dim: int = 16, out: int = 8, depth: int = 3) -> None:
        super().__init__()
        self.modality = modality
        self.encoder = Encoder(dim_in, dim, depth)
        self.projection = nn.Linear(dim, out, bias=False)

    def blocks(self) -> list[nn.Module]:
        return list(self.encoder.layers)

    def lora_targets(self) -> list[str]:
        return ["fc"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.encoder(x))


class TinyDual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.towers = nn.ModuleDict({"image": TinyTower("image"), "text": TinyTower("text")})
        self.logit_scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        emb = {m: F.normalize(t(batch[m]), dim=-1) for m, t in self.towers.items()}
        return EmbeddingOutput(emb, self.logit_scale.exp())


@dataclass
class Result:
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


class InfoNCE:
    """CLIP's loss on TinyDual's output; declares retrieval validation like ContrastiveLoss."""

    validation = ("retrieval",)

    def __call__(self, out: EmbeddingOutput, batch: dict[str, Any]) -> Result:
        a, b = out.embeddings["image"], out.embeddings["text"]
        logits = out.logit_scale * a @ b.T
        target = torch.arange(a.shape[0])
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        return Result(loss)


info_nce = InfoNCE()


class PairSet(torch.utils.data.Dataset):
    """Paired random vectors: text = a fixed linear map of image + noise (learnable alignment)."""

    def __init__(self, n: int, seed: int = 0, nan_ids: set[str] | None = None) -> None:
        g = torch.Generator().manual_seed(seed)
        self.image = torch.randn(n, 6, generator=g)
        mix = torch.randn(6, 6, generator=g)
        self.text = self.image @ mix + 0.1 * torch.randn(n, 6, generator=g)
        self.nan_ids = nan_ids or set()

    def __len__(self) -> int:
        return len(self.image)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rid = f"r{i}"
        img = self.image[i].clone()
        if rid in self.nan_ids:
            img[0] = float("nan")
        return {"id": rid, "image": img, "text": self.text[i]}


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": [s["id"] for s in samples], "image": torch.stack([s["image"] for s in samples]),
            "text": torch.stack([s["text"] for s in samples])}
