"""Embedding models: one tower (``EmbeddingModel``) or N >= 2 towers in one space (``DualEncoder``).

``encode(modality, items)`` is the fast inference path: inference mode, items sorted by
length so batches carry little padding (order restored afterwards), and bf16 where
``runtime.precision.decide_precision`` finds it fast (a measured CPU probe, or a GPU with
bf16), for towers whose encoder is ``bf16_safe`` (measured within cosine 0.999 of fp32); ``bf16=False`` or ``model.encode_bf16 = False`` turns it off. Encoders marked
``bf16_weights`` run from a cached bf16 copy of their weights (autocast re-casts every
activation and gained nothing on MiniLM; real bf16 weights ran ~2.5x faster); the others run
under bf16 autocast.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.cpu_fast import pack_linears, worker_plan
from polymodal.models.hub import PretrainedMixin, register_model_class
from polymodal.models.outputs import EmbeddingOutput
from polymodal.models.towers import Tower, move, tower_from_saved
from polymodal.runtime.precision import decide_precision

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp: temperature never below 0.01


def to_bf16(inputs: Any) -> Any:
    """Floating-point input tensors in bf16 (token ids and masks stay as they are)."""
    if isinstance(inputs, torch.Tensor):
        return inputs.to(torch.bfloat16) if inputs.is_floating_point() else inputs
    if isinstance(inputs, dict):
        return {k: to_bf16(v) for k, v in inputs.items()}
    return inputs


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
        # modality -> (weights fingerprint, bf16 copy of the encoder); a plain dict, so the
        # copies are not submodules and never reach state_dict or save_pretrained
        self._bf16_copies: dict[str, tuple[tuple[tuple[int, int], ...], nn.Module]] = {}

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

    def _bf16_encoder(self, tower: Tower) -> nn.Module | None:
        """A bf16 copy of ``tower.encoder`` for inference, rebuilt whenever its weights change."""
        enc = tower.encoder
        if not enc.bf16_weights or type(tower).forward is not Tower.forward:
            return None
        # optimizer steps and load_state_dict bump tensor versions in place; new tensors move data_ptr
        key = tuple((p.data_ptr(), p._version) for p in enc.parameters())
        hit = self.__dict__.setdefault("_bf16_copies", {}).get(tower.modality)
        if hit is not None and hit[0] == key:
            return hit[1]
        # the tokenizer / processor are shared, not copied (slow to copy, never changed here);
        # private attributes hold nn.Module's own _parameters/_modules and must be copied
        shared = {
            id(v): v for k, v in vars(enc).items() if not k.startswith("_") and not isinstance(v, nn.Module | torch.Tensor)
        }
        fast = copy.deepcopy(enc, memo=shared).to(torch.bfloat16).eval()
        for p in fast.parameters():
            p.requires_grad_(False)
        pack_linears(fast)
        self._bf16_copies[tower.modality] = (key, fast)
        return fast

    def encode(
        self, modality: str, items: Sequence[Any], batch_size: int = 64, bf16: bool | None = None,
        device: str | torch.device | None = None,
    ) -> torch.Tensor:
        """(n, D) float32 embeddings of raw items (texts, PIL images or paths, waveforms, frame lists)."""
        tower = self.tower(modality)
        items = list(items)
        dev = torch.device(device) if device is not None else next(self.parameters()).device
        if device is not None:
            self.to(dev)
        if bf16 is None:  # the one precision decision (a CPU probe, or the GPU's support)
            bf16 = self.encode_bf16 and tower.encoder.bf16_safe and decide_precision("auto", dev).bf16
        fast = self._bf16_encoder(tower) if bf16 and dev.type == "cpu" else None
        out = torch.empty(len(items), tower.output_dim)
        lengths = tower.encoder.item_lengths(items)
        order = sorted(range(len(items)), key=lambda i: -lengths[i])
        batches = [order[start : start + batch_size] for start in range(0, len(items), batch_size)]
        use_autocast = bool(bf16) and fast is None

        def run(idx: list[int], inputs: Any) -> None:
            # inference mode and autocast are per thread, so each worker enters them itself
            autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_autocast)
            with torch.inference_mode(), autocast:
                if fast is None:
                    z = self.embed(modality, inputs)
                else:  # Tower.forward in eval mode, the encoder in bf16, the rest in float32
                    z = tower.projection(fast(to_bf16(inputs)).float())
                    z = F.normalize(z, dim=-1) if self.normalize_embeddings else z
                out[idx] = z.float().cpu()

        workers, threads_each = worker_plan(len(batches), dev)
        threads_before = torch.get_num_threads()
        was_training = self.training
        self.eval()
        try:
            if workers == 1:
                for idx in batches:
                    run(idx, move(tower.preprocess([items[i] for i in idx]), dev))
            else:
                # preprocessing stays on this thread (fast tokenizers are not thread-safe) and
                # overlaps the workers' forward passes; at most 2 batches wait per worker
                torch.set_num_threads(threads_each)
                with ThreadPoolExecutor(workers, thread_name_prefix="polymodal-encode") as pool:
                    pending: deque[Future[None]] = deque()
                    for idx in batches:
                        inputs = tower.preprocess([items[i] for i in idx])
                        pending.append(pool.submit(run, idx, inputs))
                        while len(pending) > 2 * workers:
                            pending.popleft().result()
                    while pending:
                        pending.popleft().result()
        finally:
            torch.set_num_threads(threads_before)
            self.train(was_training)
        return out

    def encode_text(self, items: Sequence[str], **kw: Any) -> torch.Tensor:
        return self.encode("text", items, **kw)

    def encode_image(self, items: Sequence[Any], **kw: Any) -> torch.Tensor:
        return self.encode("image", items, **kw)

    def encode_audio(self, items: Sequence[Any], **kw: Any) -> torch.Tensor:
        return self.encode("audio", items, **kw)

    def encode_video(self, items: Sequence[Any], **kw: Any) -> torch.Tensor:
        return self.encode("video", items, **kw)

    @staticmethod
    def similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Cosine similarity matrix (n_a, n_b) of two embedding sets."""
        return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T

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
