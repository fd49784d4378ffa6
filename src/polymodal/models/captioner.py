"""CaptioningModel: an image tower feeding a text decoder through cross-attention.

``towers = {"image": Tower, "text": TextDecoder}``: the image tower is built from the same tower
specs as any model (so ``locked``, LoRA, ``top_k`` and full fine-tuning apply to it), its token
grid is mapped into the decoder's width by a small bridge (linear + learned position per grid cell
+ a mean-pooled global token, layer-normed), and the decoder attends to it. The same model
captions (``generate(images)``) and answers questions as text (``generate(images, prompts)``,
trained on "question [SEP] answer" texts).

``generate`` calls transformers' ``GenerationMixin.generate`` on the decoder with the image
tokens as ``encoder_hidden_states``: greedy, beam search and sampling come from there, and
the length is capped by the decoder's ``max_length``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.decoder import TextDecoder
from polymodal.models.hub import PretrainedMixin, register_model_class
from polymodal.models.outputs import CaptionOutput
from polymodal.models.towers import Tower, tower_from_saved

Strategy = Literal["greedy", "beam", "sample"]
STRATEGIES: tuple[str, ...] = ("greedy", "beam", "sample")
MAX_PROMPT_CHARS = 500


class ImageBridge(nn.Module):
    """Image tokens (B, N, C) -> decoder-width memory (B, N + 1, H): a global mean token first.

    The position table gives each grid cell its own vector: relations ("left of") need to know
    where a token sits, and a convolutional grid only hints at it.
    """

    def __init__(self, in_dim: int, out_dim: int, num_tokens: int) -> None:
        super().__init__()
        self.num_tokens = int(num_tokens)
        self.proj = nn.Linear(in_dim, out_dim)
        self.position = nn.Parameter(torch.zeros(1, self.num_tokens + 1, out_dim))
        nn.init.normal_(self.position, std=0.02)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tokens.shape[1] != self.num_tokens:
            raise ModelError(f"the image tower gave {tokens.shape[1]} tokens; this model was built for "
                             f"{self.num_tokens} (another image size?)")
        weights = mask.to(tokens.dtype).unsqueeze(-1)
        pooled = (tokens * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp(min=1.0)
        memory = self.proj(torch.cat([pooled, tokens], 1)) + self.position
        full = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)
        return self.norm(memory), full


def count_image_tokens(tower: Tower) -> tuple[int, int]:
    """(tokens, width) of the image tower's grid, from one blank image at its own size."""
    from PIL import Image

    size = int(getattr(tower.encoder, "image_size", 224))
    was = tower.training
    tower.eval()
    with torch.inference_mode():
        tokens, _ = tower.forward_tokens(tower.preprocess([Image.new("RGB", (size, size), (255, 255, 255))]))
    tower.train(was)
    return int(tokens.shape[1]), int(tokens.shape[2])


class CaptioningModel(PretrainedMixin, nn.Module):
    """``forward(batch) -> CaptionOutput(logits, targets)`` (teacher-forced next-token logits)."""

    # the decoder reads the image tower's token grid: pooled-feature caching would starve it
    needs_tokens = True

    def __init__(self, image: Tower, decoder: TextDecoder, num_image_tokens: int | None = None) -> None:
        super().__init__()
        if image.modality != "image":
            raise ModelError(f"a CaptioningModel needs an image tower, got a {image.modality} tower")
        n, width = (num_image_tokens, image.hidden_dim) if num_image_tokens else count_image_tokens(image)
        self.towers = nn.ModuleDict({"image": image, "text": decoder})
        self.bridge = ImageBridge(width, decoder.hidden_dim, n)
        self.card_info: dict[str, Any] = {}

    @property
    def image_tower(self) -> Tower:
        tower: Any = self.towers["image"]
        return tower  # type: ignore[no-any-return]

    @property
    def decoder(self) -> TextDecoder:
        decoder: Any = self.towers["text"]
        return decoder  # type: ignore[no-any-return]

    @property
    def modalities(self) -> list[str]:
        return ["image", "text"]

    @property
    def processors(self) -> dict[str, Any]:
        return {"image": self.image_tower.preprocess, "text": self.decoder.preprocess}

    def memory(self, pixels: Any) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, mask = self.image_tower.forward_tokens(pixels)
        return self.bridge(tokens, mask)

    def forward(self, batch: dict[str, Any]) -> CaptionOutput:
        for key in ("image", "text"):
            if key not in batch:
                raise ModelError(f"batch lacks {key!r}: a captioning model trains on images and their texts")
        text = batch["text"]
        memory, memory_mask = self.memory(batch["image"])
        logits = self.decoder(text["input_ids"], text["attention_mask"], memory, memory_mask.long())
        ids = text["input_ids"][:, 1:]
        targets = torch.where(text["target_mask"][:, 1:].bool(), ids, torch.full_like(ids, -100))
        return CaptionOutput(logits[:, :-1], targets)

    # ------------------------------------------------------------------ generation
    @torch.inference_mode()
    def generate(self, images: Sequence[Any], prompts: Sequence[str | None] | str | None = None, *,
                 strategy: Strategy = "greedy", max_new_tokens: int | None = None, num_beams: int = 4,
                 temperature: float = 1.0, top_k: int = 50, top_p: float = 1.0, seed: int = 0,
                 batch_size: int = 32) -> list[str]:
        """One text per image (paths, bytes, PIL images or arrays): a caption, or with
        ``prompts`` (one string for all, or one per image) the decoder's continuation of each
        prompt (an answer to a question). ``strategy``: greedy, beam (``num_beams``) or sample
        (``temperature``, ``top_k``, ``top_p``; seeded)."""
        from polymodal.runtime.decode import decode_items

        items = list(images)
        if not items:
            raise ModelError("generate: no images given")
        asks = _prompts(prompts, len(items))
        config = self._generation_config(strategy, max_new_tokens, num_beams, temperature, top_k, top_p)
        wanted = int(config.max_new_tokens)
        decoded = decode_items(self, "image", items)
        out: list[str] = [""] * len(items)
        # rows with the same prompt length share a batch: BERT's absolute positions forbid left padding
        groups: dict[int, list[int]] = {}
        starts = [self.decoder.prompt_ids(p) for p in asks]
        for i, ids in enumerate(starts):
            if len(ids) >= self.decoder.max_length:
                raise ModelError(f"prompt {i} ({asks[i]!r}) is {len(ids)} tokens; the decoder's limit is "
                                 f"{self.decoder.max_length} tokens, answer included")
            groups.setdefault(len(ids), []).append(i)
        was = self.training
        self.eval()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # sampling is reproducible; the caller's RNG is put back below
        try:
            device = next(self.parameters()).device
            for length, rows in groups.items():
                cap = min(wanted, self.decoder.max_length - length)
                for k in range(0, len(rows), batch_size):
                    chunk = rows[k:k + batch_size]
                    pixels = self.image_tower.preprocess([decoded[i] for i in chunk])
                    pixels = pixels.to(device) if isinstance(pixels, torch.Tensor) else pixels
                    memory, mask = self.memory(pixels)
                    start = torch.tensor([starts[i] for i in chunk], device=device)
                    config.max_new_tokens = cap
                    seqs = self.decoder.encoder.generate(  # type: ignore[operator]
                        input_ids=start, attention_mask=torch.ones_like(start), encoder_hidden_states=memory,
                        encoder_attention_mask=mask.long(), generation_config=config,
                        cache=_cross_attention_cache())
                    for i, seq in zip(chunk, seqs, strict=True):
                        out[i] = self.decoder.decode(seq[length:])
        finally:
            torch.random.set_rng_state(generator_state)
            self.train(was)
        return out

    def _generation_config(self, strategy: str, max_new_tokens: int | None, num_beams: int, temperature: float,
                           top_k: int, top_p: float) -> Any:
        from transformers import GenerationConfig

        if strategy not in STRATEGIES:
            raise ModelError(f"generate: strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
        cap = self.decoder.max_length - 1
        new = cap if max_new_tokens is None else int(max_new_tokens)
        if not 1 <= new <= cap:
            raise ModelError(f"generate: max_new_tokens={max_new_tokens} is outside 1..{cap} "
                             f"(the decoder's max_length {self.decoder.max_length}, minus the start token)")
        if strategy == "beam" and num_beams < 2:
            raise ModelError(f"generate: beam search needs num_beams >= 2, got {num_beams}")
        if strategy == "sample" and temperature <= 0:
            raise ModelError(f"generate: temperature must be > 0, got {temperature}")
        tok = self.decoder.tokenizer
        return GenerationConfig(
            max_new_tokens=new, do_sample=strategy == "sample", num_beams=num_beams if strategy == "beam" else 1,
            temperature=temperature if strategy == "sample" else None, top_k=top_k if strategy == "sample" else None,
            top_p=top_p if strategy == "sample" else None,
            eos_token_id=int(tok.sep_token_id), pad_token_id=int(tok.pad_token_id),
            bos_token_id=int(tok.cls_token_id))

    # ------------------------------------------------------------------ save / load
    def get_config(self) -> dict[str, Any]:
        return {"towers": {"image": self.image_tower.spec()}, "decoder": self.decoder.spec(),
                "num_image_tokens": self.bridge.num_tokens}

    def save_assets(self, folder: Path) -> None:
        self.image_tower.encoder.save_assets(folder / "towers" / "image")
        self.decoder.save_assets(folder / "towers" / "text")

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> CaptioningModel:
        image = tower_from_saved(config["towers"]["image"], folder / "towers" / "image")
        decoder = TextDecoder.from_saved(config["decoder"], folder / "towers" / "text")
        return cls(image, decoder, int(config["num_image_tokens"]))


register_model_class(CaptioningModel)


def _cross_attention_cache() -> Any:
    # generate() would make a self-attention-only cache for a decoder-only model; BERT's
    # cross-attention layers keep their keys and values in the second half of this one
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    return EncoderDecoderCache(DynamicCache(), DynamicCache())


def _prompts(prompts: Sequence[str | None] | str | None, n: int) -> list[str | None]:
    """One prompt per image, each checked: not empty, not over-long."""
    asks: list[str | None] = [prompts] * n if prompts is None or isinstance(prompts, str) else list(prompts)
    if len(asks) != n:
        raise ModelError(f"generate: {len(asks)} prompts for {n} images")
    for i, p in enumerate(asks):
        if p is None:
            continue
        if not str(p).strip():
            raise ModelError(f"generate: prompt {i} is empty")
        if len(p) > MAX_PROMPT_CHARS:
            raise ModelError(f"generate: prompt {i} is {len(p)} characters; the limit is {MAX_PROMPT_CHARS}")
    return asks
