"""Frozen towers' pooled features, computed once before training (``train.cache_frozen_features``).

A frozen tower whose inputs are not augmented and whose pooled output feeds the model gives
each sample the same features in every epoch. They are computed once, in inference mode,
before the first step. The datasets then hand out the stored features instead of reading the
file, so later epochs neither decode nor resize images: on CPU that decoding was what an
epoch of a linear probe on a 224 px tower cost, not the head.

A model that reads a tower's token sequence and says so (``needs_tokens``, a captioner) gets
the frozen tower's tokens cached instead (``tokens=True``; ``TokenFeatures``).

Not cached: towers that train (even through LoRA), augmented images, and towers whose token
sequence feeds a fusion (early / cross-attention fusion).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.config import DataConfig
from polymodal.data.builtin._common import progress as progress_bar
from polymodal.data.loader import MultimodalDataset, make_collate
from polymodal.models.towers import PooledFeatures, TokenFeatures, move

# features are kept in memory; past this many bytes per modality the run falls back to
# encoding every batch (the message says so)
MAX_CACHE_BYTES = 4 * 1024**3


def cacheable_modalities(
    model: nn.Module, towers: dict[str, Any], frozen: Sequence[nn.Module], augment_images: bool
) -> list[str]:
    """Modalities whose tower is fully frozen, un-augmented and read through its pooled output."""
    fusion = getattr(model, "fusion", None)
    if fusion is not None and getattr(fusion, "needs_tokens", False):
        return []
    out = []
    for modality, tower in towers.items():
        if modality == "image" and augment_images:
            continue
        encoder = getattr(tower, "encoder", None)
        if encoder is None or not hasattr(tower, "pooled"):
            continue
        if any(encoder is f for f in frozen) and not any(p.requires_grad for p in encoder.parameters()):
            out.append(modality)
    return out


def precompute_features(
    tower: Any,
    modality: str,
    rows: Sequence[dict[str, Any]],
    root: str | Path,
    data_cfg: DataConfig,
    *,
    batch_size: int,
    bf16: bool,
    progress: bool = False,
    tokens: bool = False,
) -> dict[str, Any] | None:
    """``{row id: float32 pooled features}`` (``tokens``: ``(tokens, mask)``) for ``rows``, or None when
    they would not fit in memory."""
    need = len(rows) * int(getattr(tower.encoder, "pooled_dim", 0) or 0) * 4
    if need > MAX_CACHE_BYTES:
        warnings.warn(f"train.cache_frozen_features: {modality} features of {len(rows)} rows need "
                      f"{need / 1024**3:.1f} GiB; encoding every batch instead", stacklevel=2)
        return None
    dataset = MultimodalDataset(rows, root, [modality], {}, data_cfg, augment=False)
    collate = make_collate({modality: tower.preprocess}, {})
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate,
                                         num_workers=data_cfg.num_workers)
    store: dict[str, Any] = {}
    was_training = tower.encoder.training
    tower.encoder.eval()
    device = next(tower.parameters()).device
    try:
        with progress_bar(len(rows) if progress else 0, f"caching {modality} features") as advance, \
                torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for batch in loader:
                if tokens:
                    values, mask = tower.encoder.forward_tokens(move(batch[modality], device))
                    if values[0].numel() * 4 * len(rows) > MAX_CACHE_BYTES:
                        warnings.warn(f"train.cache_frozen_features: {modality} token features of {len(rows)} rows "
                                      f"exceed {MAX_CACHE_BYTES / 1024**3:.0f} GiB; encoding every batch instead",
                                      stacklevel=2)
                        return None
                    store.update((rid, (v.float().cpu().clone(), m.cpu().clone()))
                                 for rid, v, m in zip(batch["id"], values, mask, strict=True))
                    advance(len(batch["id"]))
                    continue
                feats = tower.encoder(move(batch[modality], device)).float().cpu()
                # clones, not views: a view would keep (and pickle) its whole batch
                store.update((rid, row.clone()) for rid, row in zip(batch["id"], feats, strict=True))
                advance(len(batch["id"]))
    finally:
        tower.encoder.train(was_training)
    return store


def stack_features(raw: list[torch.Tensor]) -> PooledFeatures:
    """The collate step for a cached modality: the samples' stored features as one batch."""
    return PooledFeatures(torch.stack(raw))


def stack_tokens(raw: list[tuple[torch.Tensor, torch.Tensor]]) -> TokenFeatures:
    """The collate step for a modality whose token sequences are cached: an image grid has one
    length per tower, a text's length is its caching batch's longest, so shorter rows are padded
    (zeros, masked out) to the longest here."""
    longest = max(int(v.shape[0]) for v, _ in raw)
    values = torch.zeros((len(raw), longest, *raw[0][0].shape[1:]), dtype=raw[0][0].dtype)
    mask = torch.zeros((len(raw), longest), dtype=raw[0][1].dtype)
    for i, (v, m) in enumerate(raw):
        values[i, : v.shape[0]] = v
        mask[i, : m.shape[0]] = m
    return TokenFeatures(values, mask)
