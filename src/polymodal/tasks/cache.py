"""On-disk embedding cache keyed by (model hash, data hash, modality).

Embeddings are stored as ``.npy`` (loaded with ``allow_pickle=False``) under
``$POLYMODAL_CACHE`` or ``~/.cache/polymodal/embeddings``. The model hash covers every
tensor in the state dict plus the model's config, so a fine-tuned model never reads its
base model's embeddings. The data hash covers the ordered items and, for files, their
size and modification time, so editing a file or the manifest invalidates the entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def default_cache_dir() -> Path:
    env = os.environ.get("POLYMODAL_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "polymodal" / "embeddings"


def _config_json(model: Any) -> str:
    get_config = getattr(model, "get_config", None)
    cfg = get_config() if callable(get_config) else getattr(model, "config", None)
    if cfg is None:
        return ""
    if hasattr(cfg, "model_dump"):
        cfg = cfg.model_dump(mode="json")
    elif hasattr(cfg, "to_dict"):
        cfg = cfg.to_dict()
    try:
        return json.dumps(cfg, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(cfg)


def model_hash(model: Any) -> str:
    """blake2b over the class name, config and every state-dict tensor (name, dtype, shape, bytes)."""
    h = hashlib.blake2b(digest_size=20)
    h.update(type(model).__qualname__.encode())
    h.update(_config_json(model).encode())
    state_dict = getattr(model, "state_dict", None)
    if callable(state_dict):
        import torch

        for name, tensor in sorted(state_dict().items()):
            if not isinstance(tensor, torch.Tensor):
                continue
            t = tensor.detach().cpu().contiguous().reshape(-1)
            h.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
    else:
        # objects without weights (plain encoders) hash what they expose for the purpose
        h.update(str(getattr(model, "cache_key", id(model))).encode())
    return h.hexdigest()


def data_hash(items: Sequence[Any], modality: str) -> str:
    """Hash of the ordered items; files add their size and mtime (content changes invalidate)."""
    h = hashlib.blake2b(digest_size=20)
    h.update(modality.encode())
    for item in items:
        h.update(b"\x00")
        text = item if isinstance(item, str) else json.dumps(item, sort_keys=True, default=str)
        h.update(text.encode("utf-8", "surrogatepass"))
        if modality != "text":
            try:
                st = os.stat(text)
                h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
            except OSError:
                h.update(b"|missing")
    return h.hexdigest()


class EmbeddingCache:
    """Get-or-compute cache; ``hits`` and ``misses`` count lookups (tests and logs read them)."""

    def __init__(self, root: str | Path | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def path_for(self, model_key: str, data_key: str, modality: str) -> Path:
        return self.root / model_key[:24] / f"{modality}-{data_key[:24]}.npy"

    def get_or_compute(
        self,
        model_key: str,
        items: Sequence[Any],
        modality: str,
        compute: Callable[[], np.ndarray],
    ) -> np.ndarray:
        if not self.enabled:
            self.misses += 1
            return np.asarray(compute(), dtype=np.float32)
        path = self.path_for(model_key, data_hash(items, modality), modality)
        if path.is_file():
            try:
                arr = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                arr = None  # a truncated or foreign file: recompute and overwrite
            if arr is not None and arr.shape[0] == len(items):
                self.hits += 1
                return arr
        self.misses += 1
        arr = np.asarray(compute(), dtype=np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, arr, allow_pickle=False)
        os.replace(tmp, path)
        return arr


Progress = Callable[[str, int, int], None]  # (modality, done, total)


def encode_items(
    model: Any, modality: str, items: Sequence[Any], batch_size: int = 64, progress: Progress | None = None
) -> np.ndarray:
    """``model.encode(modality, chunk)`` over chunks -> float32 (n, d) array in input order."""
    from polymodal.runtime.decode import DecodeError
    from polymodal.tasks.data import decode_media

    parts: list[np.ndarray] = []
    for start in range(0, len(items), batch_size):
        # decoded chunk by chunk: a whole dataset of waveforms or clips need not fit in memory
        try:
            out = model.encode(modality, decode_media(model, modality, list(items[start : start + batch_size])))
        except DecodeError as exc:  # name the item by its position in the whole list
            raise exc.at(start + exc.index) from None
        if hasattr(out, "detach"):
            out = out.detach().float().cpu().numpy()
        parts.append(np.asarray(out, dtype=np.float32))
        if progress is not None:
            progress(modality, min(start + batch_size, len(items)), len(items))
    if not parts:
        raise ValueError(f"no {modality} items to encode")
    return np.concatenate(parts, axis=0)


def normalize(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


class Encoder:
    """A model plus its cache: ``embed(modality, items)`` returns raw (unnormalised) embeddings."""

    def __init__(
        self, model: Any, cache: EmbeddingCache | None = None, batch_size: int = 64, progress: Progress | None = None
    ) -> None:
        self.model = model
        self.cache = cache if cache is not None else EmbeddingCache(enabled=False)
        self.batch_size = batch_size
        self.progress = progress
        self._key: str | None = None

    @property
    def key(self) -> str:
        if self._key is None:
            self._key = model_hash(self.model)
        return self._key

    def embed(self, modality: str, items: Sequence[Any]) -> np.ndarray:
        if self.cache.enabled:
            return self.cache.get_or_compute(
                self.key, items, modality, lambda: self._encode(modality, items)
            )
        return self._encode(modality, items)

    def _encode(self, modality: str, items: Sequence[Any]) -> np.ndarray:
        was_training = bool(getattr(self.model, "training", False))
        if hasattr(self.model, "eval"):
            self.model.eval()
        try:
            import torch

            with torch.inference_mode():
                return encode_items(self.model, modality, items, self.batch_size, self.progress)
        finally:
            if was_training and hasattr(self.model, "train"):
                self.model.train()
