"""Self-supervised objectives: learn from items without labels.

- ``SimCLRLoss`` (Chen et al. 2020): each image arrives as several augmented views
  (``data.image.views: 2``; the collate stacks them view-major), the tower embeds every view,
  a projection head owned by the objective maps them to ``projection_dim``, and the views of
  one image are pulled together with the symmetric InfoNCE of ``contrastive.infonce`` at a
  fixed temperature, the other images of the batch as negatives. The head is dropped after
  training (SimCLR's finding: the representation before it transfers better); it lives in
  checkpoints, so a resumed run keeps it.
- ``MaskedLMLoss`` (domain-adaptive MLM, Gururangan et al. 2020): the text tower's token
  batch is masked by transformers' ``DataCollatorForLanguageModeling`` (15%: 80% [MASK], 10%
  random, 10% kept) and transformers' ``BertPredictionHeadTransform`` + a decoder tied to the
  tower's input embeddings (as ``BertForMaskedLM`` ties them) predicts the masked tokens.
  The packaged MiniLM ships no MLM head, so the transform and bias start fresh; the encoder
  is what the run saves. The mask of a batch is drawn from a seed of its row ids, so a
  resumed run masks exactly as the first one did and an epoch's reshuffle masks anew.

Both read the model's towers through ``model.tower(modality)``, so ``train.strategy`` (full,
LoRA, top-k) applies to the tower as for any objective. The MLM loss runs the tower's token
pass itself, outside the model's ``forward``: tested in one process, not under DDP.
"""

from __future__ import annotations

import zlib
from itertools import combinations
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.outputs import EmbeddingOutput
from polymodal.objectives.base import Objective, ObjectiveResult, full_precision
from polymodal.objectives.contrastive import _accuracy, infonce


class SimCLRLoss(Objective):
    """InfoNCE between the augmented views of each item, through an MLP projection head."""

    def __init__(self, modality: str, in_dim: int, hidden_dim: int, projection_dim: int, temperature: float) -> None:
        super().__init__()
        self.modality = modality
        self.temperature = temperature
        self.head = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, projection_dim))

    def forward(self, outputs: Any, batch: dict[str, Any]) -> ObjectiveResult:
        views = int(batch.get("views") or 1)
        if views < 2:
            raise ModelError("the simclr objective needs two or more views of each image: set data.image.views: 2")
        if not isinstance(outputs, EmbeddingOutput) or self.modality not in outputs.embeddings:
            raise ModelError(f"the simclr objective needs {self.modality} embeddings, got {type(outputs).__name__}")
        z = F.normalize(full_precision(self.head(outputs.embeddings[self.modality].float())), dim=-1)
        chunks = z.chunk(views)
        scale = torch.tensor(1.0 / self.temperature, device=z.device)
        losses, accs = [], []
        for a, b in combinations(range(views), 2):
            loss, logits = infonce(chunks[a], chunks[b], scale)
            losses.append(loss)
            accs.append(_accuracy(logits.detach()))
        total = torch.stack(losses).mean()
        return ObjectiveResult(total, {"loss_views": total.detach(), "acc_view_match": torch.stack(accs).mean()})


def _hf_model(tower: Any) -> Any:
    """The transformers model inside a text tower (through a LoRA wrapper, when the strategy added one)."""
    encoder = tower.encoder
    if hasattr(encoder, "get_base_model"):  # peft's PeftModel around the encoder
        encoder = encoder.get_base_model()
    return getattr(encoder, "model", None), encoder


def _text_parts(model: nn.Module) -> tuple[Any, Any, Any]:
    """(text tower, its tokenizer, its transformers config); a clear error where MLM cannot run."""
    tower_of = getattr(model, "tower", None)
    if not callable(tower_of):
        raise ModelError("the mlm objective needs a model with towers (model.kind: embedding, dual or classifier)")
    tower = tower_of("text")
    hf, encoder = _hf_model(tower)
    tokenizer = getattr(encoder, "tokenizer", None)
    config = getattr(hf, "config", None)
    if tokenizer is None or config is None or getattr(tokenizer, "mask_token", None) is None:
        raise ModelError(f"the mlm objective needs a transformers text tower with a mask token; "
                         f"{type(encoder).__name__} ({encoder.spec().get('source', '?')}) has none")
    for key in ("hidden_size", "hidden_act", "layer_norm_eps", "vocab_size"):
        if not hasattr(config, key):
            raise ModelError(f"the mlm objective needs a BERT-like text tower; its config ({config.model_type}) has no {key}")
    return tower, tokenizer, config


class MaskedLMLoss(Objective):
    """Cross-entropy on masked tokens of the text tower (domain-adaptive MLM)."""

    def __init__(self, model: nn.Module, mlm_probability: float, seed: int = 0) -> None:
        super().__init__()
        from transformers import DataCollatorForLanguageModeling
        from transformers.models.bert.modeling_bert import BertPredictionHeadTransform

        tower, tokenizer, config = _text_parts(model)
        # a plain tuple, not a submodule: the model's weights are the model's (not objective state)
        self._tower = (tower,)
        self.transform = BertPredictionHeadTransform(config)
        self.bias = nn.Parameter(torch.zeros(int(config.vocab_size)))
        self.collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
        self.seed = seed

    def _mask(self, input_ids: torch.Tensor, ids: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        seed = zlib.crc32("\x00".join(ids).encode("utf-8")) ^ self.seed
        self.collator.generator = torch.Generator().manual_seed(seed)
        # the collator reads the mask token and the special tokens (padding included) from the tokenizer
        masked, labels = self.collator.torch_mask_tokens(input_ids.detach().cpu().clone())
        return masked.to(input_ids.device), labels.to(input_ids.device)

    def forward(self, outputs: Any, batch: dict[str, Any]) -> ObjectiveResult:
        text = batch.get("text")
        if not isinstance(text, dict) or "input_ids" not in text:
            raise ModelError("the mlm objective needs tokenized text in the batch (a text column and a text tower)")
        tower = self._tower[0]
        masked, labels = self._mask(text["input_ids"], [str(i) for i in batch.get("id", [])])
        tokens, _ = tower.forward_tokens({**text, "input_ids": masked})
        picked = labels != -100
        if not bool(picked.any()):  # a batch of very short texts can draw no mask at all
            zero = tokens.sum() * 0.0
            return ObjectiveResult(zero, {"mlm_loss": zero.detach(), "mlm_accuracy": zero.detach()})
        embedding = _hf_model(tower)[0].get_input_embeddings().weight
        hidden = self.transform(tokens[picked].to(self.bias.dtype))
        logits = full_precision(F.linear(hidden, embedding.to(hidden.dtype), self.bias))
        loss = F.cross_entropy(logits, labels[picked])
        acc = (logits.detach().argmax(-1) == labels[picked]).float().mean()
        return ObjectiveResult(loss, {"mlm_loss": loss.detach(), "mlm_accuracy": acc})
