"""Tiny planted encoders (helpers for tests/tasks) exposing the models layer's ``encode(modality, items)`` API.

Embeddings are looked up, not learned, so every metric a task reports can be worked out
by hand. They are ``nn.Module``s with the planted table as a buffer, so the real model
hash (state dict + config) covers them.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn


class PlantedEncoder(nn.Module):
    """``text``: the vector of the first key that occurs in the prompt (longest key first),
    plus a per-template offset on extra dimensions; media: the vector planted for the file name."""

    def __init__(self, text_vectors: dict[str, np.ndarray], media_vectors: dict[str, np.ndarray], extra_dims: int = 4):
        super().__init__()
        self.text_keys = sorted(text_vectors, key=len, reverse=True)
        dim = len(next(iter(text_vectors.values())))
        self.dim = dim + extra_dims
        self.text_vectors = text_vectors
        self.media_vectors = media_vectors
        table = np.stack([text_vectors[k] for k in sorted(text_vectors)] + [media_vectors[k] for k in sorted(media_vectors)])
        self.register_buffer("table", torch.tensor(table, dtype=torch.float32))
        self.config = {"kind": "planted", "dim": self.dim}
        self.calls: Counter[str] = Counter()

    def _pad(self, v: np.ndarray, slot: int | None = None) -> np.ndarray:
        out = np.zeros(self.dim, dtype=np.float32)
        out[: len(v)] = v
        if slot is not None and self.dim > len(v):
            out[len(v) + slot % (self.dim - len(v))] = 1.0
        return out

    def encode(self, modality: str, items: list[Any]) -> torch.Tensor:
        self.calls[modality] += len(items)
        rows = []
        for item in items:
            if modality == "text":
                key = next((k for k in self.text_keys if k in item), None)
                if key is None:
                    raise KeyError(f"no planted vector for text {item!r}")
                rows.append(self._pad(self.text_vectors[key], slot=zlib.crc32(item.replace(key, "{}").encode())))
            else:
                rows.append(self._pad(self.media_vectors[Path(item).name]))
        return torch.tensor(np.stack(rows))


def write_manifest(root: Path, rows: list[dict[str, Any]], touch_files: bool = True) -> Path:
    """Write rows as manifest.jsonl under ``root`` and create the media files they name."""
    root.mkdir(parents=True, exist_ok=True)
    if touch_files:
        for r in rows:
            for m in ("image", "audio", "video"):
                if r.get(m):
                    f = root / r[m]
                    f.parent.mkdir(parents=True, exist_ok=True)
                    if not f.exists():
                        # a real tiny image, so reports can draw it
                        Image.new("RGB", (4, 4), (len(f.name) * 37 % 256, 90, 160)).save(f, format="PNG")
    path = root / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
