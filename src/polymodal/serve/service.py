"""What the server does, without HTTP: a model, its batchers, an optional index.

Every model call goes through a :class:`DynamicBatcher` per modality, so concurrent requests
share forward passes; each request still gets exactly the row it would have got alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from polymodal.serve.batcher import DynamicBatcher
from polymodal.serve.limits import Limits
from polymodal.tasks.templates import GENERIC, class_prompt_name

LABEL_CACHE = 4096  # label prompts' embeddings kept (labels repeat across /classify calls)


class Service:
    def __init__(self, model: Any, *, index: Any = None, limits: Limits | None = None, model_name: str = "") -> None:
        self.model = model
        self.index = index
        self.limits = limits or Limits()
        self.model_name = model_name
        self.modalities = [m for m in ("text", "image") if m in getattr(model, "modalities", ["text"])]
        self.ready = threading.Event()
        self.warmup_error: str | None = None
        self.batchers: dict[str, DynamicBatcher[Any, np.ndarray]] = {
            m: DynamicBatcher(self._encoder(m), max_batch=self.limits.max_batch,
                              window_s=self.limits.batch_window_ms / 1000, max_pending=self.limits.max_queue, name=m)
            for m in self.modalities
        }
        self._labels: OrderedDict[str, np.ndarray] = OrderedDict()
        self._labels_lock = threading.Lock()
        scale = getattr(model, "scale", None)
        self.logit_scale = float(scale().detach()) if callable(scale) else 100.0
        if index is not None and int(index.dim) != int(getattr(model, "embed_dim", index.dim)):
            raise ValueError(f"the index holds {index.dim}-d embeddings of {index.model}, the model gives "
                             f"{model.embed_dim}-d; serve the index with its own model")

    def _encoder(self, modality: str) -> Any:
        def encode(items: list[Any]) -> list[np.ndarray]:
            out = self.model.encode(modality, items, batch_size=self.limits.max_batch, convert_to_numpy=True)
            return list(np.asarray(out, dtype=np.float32))

        return encode

    def warm_up(self) -> None:
        """One text and one image through the batchers (and a search); then ready."""
        from PIL import Image

        try:
            if "text" in self.batchers:
                vec = self.batchers["text"].submit("warm-up").result()
                if self.index is not None:
                    self.index.search(vec[None, :], 1)
            if "image" in self.batchers:
                self.batchers["image"].submit(Image.new("RGB", (64, 64), (127, 127, 127))).result()
        except Exception as exc:  # noqa: BLE001 - reported by /readyz, the server stays up to say so
            self.warmup_error = f"{type(exc).__name__}: {exc}"
            return
        self.ready.set()

    def cached_label(self, label: str) -> np.ndarray | None:
        with self._labels_lock:
            vec = self._labels.get(label)
            if vec is not None:
                self._labels.move_to_end(label)
            return vec

    def store_label(self, label: str, vec: np.ndarray) -> None:
        with self._labels_lock:
            self._labels[label] = vec
            while len(self._labels) > LABEL_CACHE:
                self._labels.popitem(last=False)

    @staticmethod
    def prompts(label: str) -> list[str]:
        """The CLIP recipe: several templates per label, averaged (as the zero-shot task does)."""
        name = class_prompt_name(label)
        return [t.format(name) for t in GENERIC]

    def rank_labels(self, image_vec: np.ndarray, labels: list[str], label_vecs: list[np.ndarray]) -> list[dict[str, Any]]:
        sims = np.stack(label_vecs) @ image_vec
        logits = sims * self.logit_scale
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        order = np.argsort(-probs, kind="stable")
        return [{"label": labels[i], "score": float(probs[i]), "similarity": float(sims[i])} for i in order]

    def stop(self) -> None:
        for b in self.batchers.values():
            b.stop()
