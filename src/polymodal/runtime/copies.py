"""Inference copies the runtime keeps beside a model: bf16 (+ prepacked) encoders, device copies.

A copy is cached per (model, what) in a ``WeakKeyDictionary`` owned by the runtime, never on
the model: it is no submodule (so never in ``state_dict`` or ``save_pretrained``), and it
goes away with its model. Each entry carries the fingerprint of the weights it was built
from, ``(data_ptr, _version)`` per tensor: optimizer steps and ``load_state_dict`` bump
versions in place, new tensors move the pointer, so a stale copy is rebuilt on next use.
Each entry has its own lock: two threads asking for the same copy build it once, and a
thread building one copy does not hold up threads using another.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from polymodal.models.encoders.base import Encoder
from polymodal.models.towers import Tower
from polymodal.runtime.packing import pack_linears

Fingerprint = tuple[tuple[int, int], ...]


def fingerprint(tensors: Iterable[torch.Tensor]) -> Fingerprint:
    return tuple((t.data_ptr(), t._version) for t in tensors)


def to_bf16(inputs: Any) -> Any:
    """Floating-point input tensors in bf16 (token ids and masks stay as they are)."""
    if isinstance(inputs, torch.Tensor):
        return inputs.to(torch.bfloat16) if inputs.is_floating_point() else inputs
    if isinstance(inputs, dict):
        return {k: to_bf16(v) for k, v in inputs.items()}
    return inputs


def _shared_attributes(modules: Iterable[nn.Module]) -> dict[int, Any]:
    """deepcopy memo that shares the modules' tokenizers / processors / specs instead of copying
    them (slow to copy, never changed by inference); private attributes hold nn.Module's own
    ``_parameters`` / ``_modules`` and must be copied."""
    return {
        id(v): v for module in modules for k, v in vars(module).items()
        if not k.startswith("_") and not isinstance(v, nn.Module | torch.Tensor)
    }


def build_bf16_encoder(encoder: nn.Module) -> nn.Module:
    """An eval-mode bf16 copy of ``encoder`` with its plain linears prepacked, weights frozen."""
    fast = copy.deepcopy(encoder, memo=_shared_attributes([encoder])).to(torch.bfloat16).eval()
    for p in fast.parameters():
        p.requires_grad_(False)
    pack_linears(fast)
    return fast


def build_device_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """An eval-mode copy of ``model`` on ``device`` (the encoders' tokenizers / processors shared)."""
    encoders = [m for m in model.modules() if isinstance(m, Encoder)]
    moved = copy.deepcopy(model, memo=_shared_attributes(encoders)).to(device).eval()
    for p in moved.parameters():
        p.requires_grad_(False)
    return moved


class _Entry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: Fingerprint | None = None
        self.value: nn.Module | None = None


class CopyCache:
    """Copies of models, keyed by (model, name) and rebuilt when the model's weights change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: weakref.WeakKeyDictionary[nn.Module, dict[str, _Entry]] = weakref.WeakKeyDictionary()

    def get_or_build(self, model: nn.Module, name: str, key: Fingerprint, build: Callable[[], nn.Module]) -> nn.Module:
        with self._lock:
            entry = self._entries.setdefault(model, {}).setdefault(name, _Entry())
        with entry.lock:
            if entry.value is None or entry.key != key:
                entry.value = None  # drop the stale copy before building its successor
                entry.value, entry.key = build(), key
            return entry.value

    def peek(self, model: nn.Module, name: str) -> nn.Module | None:
        """The cached copy, if any (tests and tools look; nothing is built)."""
        with self._lock:
            entry = self._entries.get(model, {}).get(name)
        return None if entry is None else entry.value

    def clear(self, model: nn.Module | None = None) -> None:
        with self._lock:
            if model is None:
                self._entries = weakref.WeakKeyDictionary()
            else:
                self._entries.pop(model, None)

    # ------------------------------------------------------------------ the two kinds of copy
    def bf16_encoder(self, model: nn.Module, tower: Tower) -> nn.Module | None:
        """The bf16 copy of ``tower.encoder`` for inference, or None where it does not apply
        (the encoder is not ``bf16_weights``, or the tower's forward is not the plain one the
        runtime reproduces around the copy)."""
        enc = tower.encoder
        if not enc.bf16_weights or type(tower).forward is not Tower.forward:
            return None
        return self.get_or_build(model, f"bf16:{tower.modality}", fingerprint(enc.parameters()),
                                 lambda: build_bf16_encoder(enc))

    def on_device(self, model: nn.Module, device: torch.device) -> nn.Module:
        """An eval-mode copy of the whole model on ``device``."""
        tensors = [*model.parameters(), *model.buffers()]
        return self.get_or_build(model, f"device:{device}", fingerprint(tensors),
                                 lambda: build_device_copy(model, device))
