"""``swap-contrastive``: InfoNCE whose text negatives include each row's own caption with a word swapped.

With in-batch negatives alone a clip of "a red star moving left" is told apart from "a green
circle moving up" by colour and shape; the direction is rarely needed, so a text-video model
learns what moves and not where (docs/examples.md section 6). Here every caption is also
rewritten with the other words of its ``swap_words`` group ("... moving right", "... up",
"... down"), those rewrites are encoded by the model's own text tower, and they join the
in-batch captions as negatives of the row's clip (anchor -> text direction only):

    L = 1/2 [CE([s a_i.T^T, s a_i.S_i^T], i) + CE(s t_i.A^T, i)]

where S_i are the swaps of caption i (rows without a group word get none). The text -> anchor
half is CLIP's as is. ``swap_acc`` is the share of rows whose clip scores its own caption
above every swap of it: the training-side view of the ``motion`` task.

The raw captions come from the batch's ``text_raw`` (the collate keeps them next to the
tokens); the swaps run through ``model.embed`` outside the model's ``forward``, as the MLM
objective's token pass does: tested in one process, not under DDP.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.data.text import word_swaps
from polymodal.errors import ModelError
from polymodal.models.towers import move
from polymodal.objectives.base import Objective, ObjectiveResult, full_precision, gather_features, world
from polymodal.objectives.contrastive import _embedding_output, _pairs


def swap_logits(anchor: torch.Tensor, swapped: torch.Tensor, owner: torch.Tensor, width: int,
                scale: torch.Tensor) -> torch.Tensor:
    """(B, width) logits of each anchor row against its own swapped captions; -inf where a row has fewer."""
    out = torch.full((anchor.shape[0], width), float("-inf"), device=anchor.device, dtype=torch.float32)
    if swapped.shape[0]:
        # a row's swaps are consecutive (owner is sorted): number them 0..k-1 within the row
        slot = torch.arange(owner.numel(), device=owner.device) - torch.searchsorted(owner, owner)
        scores = full_precision(scale * (anchor[owner] * swapped).sum(-1))
        out[owner, slot] = scores
    return out


class SwapContrastiveLoss(Objective):
    """Symmetric InfoNCE with word-swapped captions as extra negatives of the non-text side."""

    validation = ("retrieval",)

    def __init__(self, model: nn.Module, swap_words: list[list[str]], pairs: list[tuple[str, str]] | None = None,
                 text_modality: str = "text", gather_with_grad: bool = True) -> None:
        super().__init__()
        if not callable(getattr(model, "embed", None)):
            raise ModelError("the swap-contrastive objective needs a dual encoder (model.kind: dual)")
        # a plain tuple, not a submodule: the model's weights are the model's (not objective state)
        self._model = (model,)
        self.swap_words = [list(g) for g in swap_words]
        self.pairs = pairs
        self.text_modality = text_modality
        self.gather_with_grad = gather_with_grad

    def _swaps(self, texts: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(normalised embeddings of every swap, the row each belongs to, most swaps of one row)."""
        captions: list[str] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            swaps = word_swaps(text, self.swap_words)
            captions += swaps
            owner += [i] * len(swaps)
        if not captions:
            return torch.empty(0, device=device), torch.empty(0, dtype=torch.long, device=device), 0
        model: Any = self._model[0]
        inputs = move(model.tower(self.text_modality).preprocess(captions), device)
        width = max(owner.count(i) for i in set(owner))
        return model.embed(self.text_modality, inputs), torch.tensor(owner, device=device), width

    def forward(self, outputs: Any, batch: dict[str, Any]) -> ObjectiveResult:
        out = _embedding_output(outputs, "swap-contrastive")
        emb, scale = out.embeddings, out.logit_scale
        assert scale is not None
        texts = batch.get(f"{self.text_modality}_raw")
        if not isinstance(texts, list):
            raise ModelError(f"the swap-contrastive objective needs the batch's raw {self.text_modality} "
                             f"({self.text_modality}_raw): a text column decoded as text, not precomputed "
                             "features (train.cache_frozen_features off for the text tower)")
        rank, _ = world()
        losses, metrics = [], {}
        swapped: tuple[torch.Tensor, torch.Tensor, int] | None = None
        for a, b in _pairs(self.pairs, emb):
            if self.text_modality not in (a, b):
                raise ModelError(f"swap-contrastive pair {(a, b)} has no {self.text_modality!r} side to swap words in")
            anchor_name = b if a == self.text_modality else a
            anchor, text = emb[anchor_name], emb[self.text_modality]
            if swapped is None:
                swapped = self._swaps([str(t) for t in texts], anchor.device)
            neg, owner, width = swapped
            target = torch.arange(anchor.shape[0], device=anchor.device) + rank * anchor.shape[0]
            all_anchor = gather_features(anchor, self.gather_with_grad)
            all_text = gather_features(text, self.gather_with_grad)
            in_batch = full_precision(scale * anchor @ all_text.T)
            hard = swap_logits(anchor, neg, owner, width, scale)
            loss_to_text = F.cross_entropy(torch.cat([in_batch, hard], 1), target)
            loss_to_anchor = F.cross_entropy(full_precision(scale * text @ all_anchor.T), target)
            loss = (loss_to_text + loss_to_anchor) / 2
            losses.append(loss)
            own = in_batch.gather(1, target.unsqueeze(1)).squeeze(1).detach()
            has = torch.isfinite(hard).any(1)
            beats = (own.unsqueeze(1) > hard.detach()).all(1)
            metrics[f"loss_{anchor_name}_{self.text_modality}"] = loss.detach()
            metrics[f"acc_{anchor_name}_to_{self.text_modality}"] = (in_batch.detach().argmax(-1) == target).float().mean()
            metrics[f"swap_acc_{anchor_name}"] = (beats[has].float().mean() if bool(has.any())
                                                  else torch.tensor(float("nan"), device=anchor.device))
        metrics["logit_scale"] = scale.detach()
        return ObjectiveResult(torch.stack(losses).mean(), metrics)
