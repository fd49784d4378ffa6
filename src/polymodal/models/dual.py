"""Embedding models: one tower (``EmbeddingModel``) or N >= 2 towers in one space (``DualEncoder``).

``encode(modality, items)`` is the fast inference path; it is run by ``polymodal.runtime``
(decoding, length sorting, the bf16 decision and inference copies, worker threads), which
keeps the model a plain module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack, overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.hub import PretrainedMixin, register_model_class
from polymodal.models.outputs import EmbeddingOutput
from polymodal.models.towers import Tower, tower_from_saved

if TYPE_CHECKING:
    from polymodal.predict import Prediction

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp: temperature never below 0.01


class EncodeOptions(TypedDict, total=False):
    """``encode``'s keyword options besides ``convert_to_numpy`` (sentence-transformers' names)."""

    normalize: bool | None  # L2-normalise; None: the model's choice (on)
    show_progress_bar: bool


class EncodeKwargs(EncodeOptions, total=False):
    """What ``encode_text`` / ``encode_image`` / ... pass on to ``encode``."""

    batch_size: int
    bf16: bool | None
    device: str | torch.device | None


class EmbeddingModel(PretrainedMixin, nn.Module):
    """Towers that each map items of one modality to an embedding. One tower is allowed here."""

    normalize_embeddings = True

    def __init__(self, towers: dict[str, Tower]) -> None:
        super().__init__()
        if not towers:
            raise ModelError("a model needs at least one tower")
        for key, tower in towers.items():
            if key != tower.modality:
                raise ModelError(f"tower under key {key!r} is a {tower.modality} tower")
        self.towers = nn.ModuleDict(towers)
        self.encode_bf16 = True
        self.card_info: dict[str, Any] = {}

    @property
    def modalities(self) -> list[str]:
        return list(self.towers.keys())

    @property
    def processors(self) -> dict[str, Callable[[list[Any]], Any]]:
        return {m: self.tower(m).preprocess for m in self.towers}

    @property
    def embed_dim(self) -> int:
        return self.tower(next(iter(self.towers))).output_dim

    def tower(self, modality: str) -> Tower:
        if modality not in self.towers:
            raise ModelError(f"this model has no {modality} tower (it has: {', '.join(self.towers)})")
        tower: Any = self.towers[modality]
        return tower  # type: ignore[no-any-return]

    def embed(self, modality: str, inputs: Any) -> torch.Tensor:
        # embeddings leave in float32 (normalising in bf16 leaves norms ~0.3% off unit)
        z = self.tower(modality)(inputs).float()
        return F.normalize(z, dim=-1) if self.normalize_embeddings else z

    def forward(self, batch: dict[str, Any]) -> EmbeddingOutput:
        return EmbeddingOutput({m: self.embed(m, batch[m]) for m in self.towers if m in batch})

    @overload
    def encode(
        self, modality: str, items: Any, batch_size: int = ..., bf16: bool | None = ...,
        device: str | torch.device | None = ..., *, convert_to_numpy: Literal[False] = ..., **kw: Unpack[EncodeOptions],
    ) -> torch.Tensor: ...
    @overload
    def encode(
        self, modality: str, items: Any, batch_size: int = ..., bf16: bool | None = ...,
        device: str | torch.device | None = ..., *, convert_to_numpy: Literal[True], **kw: Unpack[EncodeOptions],
    ) -> np.ndarray: ...
    @overload
    def encode(
        self, modality: str, items: Any, batch_size: int = ..., bf16: bool | None = ...,
        device: str | torch.device | None = ..., *, convert_to_numpy: bool, **kw: Unpack[EncodeOptions],
    ) -> torch.Tensor | np.ndarray: ...
    def encode(
        self, modality: str, items: Any, batch_size: int = 64, bf16: bool | None = None,
        device: str | torch.device | None = None, *, convert_to_numpy: bool = False, **kw: Unpack[EncodeOptions],
    ) -> torch.Tensor | np.ndarray:
        """float32 embeddings of raw items (texts, images, waveforms, clips, or their files).

        sentence-transformers' convention: one item (a string, one path / image / waveform /
        clip) gives a (D,) embedding, a list gives (n, D). A torch tensor by default, a numpy
        array with ``convert_to_numpy=True``; ``normalize`` (default: on) L2-normalises;
        ``show_progress_bar`` draws a bar on stderr. Runs through ``polymodal.runtime``.
        """
        from polymodal.runtime.engine import encode  # the runtime imports the models layer

        return encode(self, modality, items, batch_size=batch_size, bf16=bf16, device=device,
                      convert_to_numpy=convert_to_numpy, **kw)

    @overload
    def encode_text(self, items: str | Iterable[str], *, convert_to_numpy: Literal[False] = ...,
                    **kw: Unpack[EncodeKwargs]) -> torch.Tensor: ...
    @overload
    def encode_text(self, items: str | Iterable[str], *, convert_to_numpy: Literal[True],
                    **kw: Unpack[EncodeKwargs]) -> np.ndarray: ...
    def encode_text(self, items: str | Iterable[str], *, convert_to_numpy: bool = False,
                    **kw: Unpack[EncodeKwargs]) -> torch.Tensor | np.ndarray:
        """``encode("text", ...)``: a string gives one (D,) embedding, a list of strings (n, D)."""
        return self.encode("text", items, convert_to_numpy=convert_to_numpy, **kw)

    @overload
    def encode_image(self, items: Any, *, convert_to_numpy: Literal[False] = ...,
                     **kw: Unpack[EncodeKwargs]) -> torch.Tensor: ...
    @overload
    def encode_image(self, items: Any, *, convert_to_numpy: Literal[True], **kw: Unpack[EncodeKwargs]) -> np.ndarray: ...
    def encode_image(self, items: Any, *, convert_to_numpy: bool = False,
                     **kw: Unpack[EncodeKwargs]) -> torch.Tensor | np.ndarray:
        """``encode("image", ...)``: one path / bytes / PIL image / array gives (D,), a list (n, D)."""
        return self.encode("image", items, convert_to_numpy=convert_to_numpy, **kw)

    @overload
    def encode_audio(self, items: Any, *, convert_to_numpy: Literal[False] = ...,
                     **kw: Unpack[EncodeKwargs]) -> torch.Tensor: ...
    @overload
    def encode_audio(self, items: Any, *, convert_to_numpy: Literal[True], **kw: Unpack[EncodeKwargs]) -> np.ndarray: ...
    def encode_audio(self, items: Any, *, convert_to_numpy: bool = False,
                     **kw: Unpack[EncodeKwargs]) -> torch.Tensor | np.ndarray:
        """``encode("audio", ...)``: one path / 1-d waveform / (waveform, rate) gives (D,), a list (n, D)."""
        return self.encode("audio", items, convert_to_numpy=convert_to_numpy, **kw)

    @overload
    def encode_video(self, items: Any, *, convert_to_numpy: Literal[False] = ...,
                     **kw: Unpack[EncodeKwargs]) -> torch.Tensor: ...
    @overload
    def encode_video(self, items: Any, *, convert_to_numpy: Literal[True], **kw: Unpack[EncodeKwargs]) -> np.ndarray: ...
    def encode_video(self, items: Any, *, convert_to_numpy: bool = False,
                     **kw: Unpack[EncodeKwargs]) -> torch.Tensor | np.ndarray:
        """``encode("video", ...)``: one path / list of frames / (T, H, W, 3) array gives (D,), a list of clips (n, D)."""
        return self.encode("video", items, convert_to_numpy=convert_to_numpy, **kw)

    def predict(self, items: Any, **kw: Any) -> Prediction | list[Prediction]:
        """Class names and probabilities from the model's heads (``polymodal.predict.predict``): one
        ``Prediction`` for one item, a list for a list. A model without heads (a dual encoder)
        raises a ``ModelError`` pointing to zero-shot classification."""
        from polymodal.predict import predict  # the library function imports the models layer

        return predict(self, items, **kw)

    @staticmethod
    def similarity(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Cosine similarity matrix (n_a, n_b) of two embedding sets (tensors or ``convert_to_numpy`` arrays)."""
        ta, tb = torch.as_tensor(a).float(), torch.as_tensor(b).float()
        return F.normalize(ta, dim=-1) @ F.normalize(tb, dim=-1).T

    # ------------------------------------------------------------------ save / load
    def get_config(self) -> dict[str, Any]:
        return {"towers": {m: self.tower(m).spec() for m in self.towers}}

    @classmethod
    def _towers_from_config(cls, config: dict[str, Any], folder: Path) -> dict[str, Tower]:
        return {m: tower_from_saved(s, folder / "towers" / m) for m, s in config["towers"].items()}

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> EmbeddingModel:
        return cls(cls._towers_from_config(config, folder))


register_model_class(EmbeddingModel)


class DualEncoder(EmbeddingModel):
    """N >= 2 towers projected into one ``embed_dim`` space with a learnable temperature."""

    def __init__(
        self,
        towers: dict[str, Tower],
        embed_dim: int | None = None,
        init_temperature: float = 0.07,
        learn_temperature: bool = True,
        logit_bias: float | None = None,
    ) -> None:
        if len(towers) < 2:
            raise ModelError(f"a DualEncoder needs at least two towers, got {list(towers)}")
        super().__init__(towers)
        if embed_dim is not None:
            for tower in towers.values():
                if tower.output_dim != embed_dim:
                    tower.set_projection(embed_dim)
        dims = {m: t.output_dim for m, t in towers.items()}
        if len(set(dims.values())) != 1:
            raise ModelError(f"towers end in different widths {dims}; give embed_dim to add projections")
        scale = torch.tensor(math.log(1.0 / init_temperature))
        self.logit_scale = nn.Parameter(scale, requires_grad=learn_temperature)
        self.logit_bias: nn.Parameter | None = None
        if logit_bias is not None:
            self.add_logit_bias(logit_bias)

    def add_logit_bias(self, init: float = -10.0) -> None:
        """The learnable bias SigLIP's sigmoid loss needs (kept with the model for inference)."""
        if self.logit_bias is None:
            self.logit_bias = nn.Parameter(torch.tensor(float(init)))

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    def forward(self, batch: dict[str, Any]) -> EmbeddingOutput:
        out = super().forward(batch)
        out.logit_scale = self.scale()
        out.logit_bias = self.logit_bias
        return out

    def logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Scaled (+bias) similarity logits between two embedding sets, as the model was trained."""
        z = self.similarity(a, b) * self.scale().detach().float()
        return z + self.logit_bias.detach().float() if self.logit_bias is not None else z

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "learn_temperature": bool(self.logit_scale.requires_grad),
            "logit_bias": self.logit_bias is not None,
        }

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> DualEncoder:
        model = cls(cls._towers_from_config(config, folder), None, learn_temperature=config.get("learn_temperature", True))
        if config.get("logit_bias"):
            model.add_logit_bias()
        return model


register_model_class(DualEncoder)
