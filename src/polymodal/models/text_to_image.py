"""TextToImageModel: a text tower conditioning a diffusion UNet that draws images.

``towers = {"text": Tower}``: the text tower is built from the same specs as any model (the
example locks the packaged MiniLM, so its token sequences are computed once per row by
``train.cache_frozen_features``). Its tokens reach diffusers' ``UNet2DConditionModel`` as
``encoder_hidden_states`` through cross-attention. The UNet denoises pixels folded into
``patch`` x ``patch`` cells (``pixel_unshuffle``): a 64 px image is a 16 x 16 grid of
48 channels, which costs what a 16 px UNet costs. The scenes are flat colours on a plain
background, so a 4 px cell loses little; at 64 px unfolded the smallest UNet measured ~2
samples/s here (docs/examples.md section 10).

Training (``forward``) adds DDPM noise at a random step and asks for the velocity back
(``prediction_type``: or the noise, or the clean image), each row weighed by min-SNR-gamma
(``DiffusionOutput``); a tenth of the rows see a learned empty condition instead of their text,
so sampling can use classifier-free guidance. With ``pooled_condition`` the tokens' masked mean
also joins the UNet's time embedding, so every ResNet block reads the prompt.
``generate(prompts)`` runs DDIM from the same noise schedule.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from polymodal.config import GeneratorSpec
from polymodal.errors import ModelError
from polymodal.models.hub import PretrainedMixin, register_model_class
from polymodal.models.outputs import DiffusionOutput
from polymodal.models.towers import Tower, tower_from_saved

MAX_PROMPT_CHARS = 500
# one call draws at most this many images: each costs sample_steps UNet passes
MAX_IMAGES_PER_CALL = 256


def _diffusers() -> Any:
    try:
        import diffusers
    except ImportError as exc:  # pragma: no cover - the generate extra installs it
        raise ModelError("text-to-image needs diffusers: pip install 'polymodal[generate]'") from exc
    return diffusers


def build_unet(spec: GeneratorSpec, text_dim: int) -> nn.Module:
    """The UNet a spec describes (the same call rebuilds it on load, so no UNet config is saved)."""
    if spec.image_size % spec.patch:
        raise ModelError(f"model.generator: image_size {spec.image_size} is not a multiple of patch {spec.patch}")
    if len(spec.cross_attention) != len(spec.block_out_channels):
        raise ModelError(f"model.generator: cross_attention has {len(spec.cross_attention)} entries for "
                         f"{len(spec.block_out_channels)} blocks")
    grid = spec.image_size // spec.patch
    if grid % 2 ** (len(spec.block_out_channels) - 1):
        raise ModelError(f"model.generator: a {grid}x{grid} grid cannot be halved {len(spec.block_out_channels) - 1} times")
    channels = 3 * spec.patch**2
    if spec.block_out_channels[0] < channels:
        # measured: [32, 64, 128] at patch 4 (48 channels a cell) drew noise after 2,400 steps; its noise
        # prediction kept only ~0.79 of the noise's std at every step (32 of 48 channels); [64, 64, 128] learned
        warnings.warn(f"model.generator: the UNet's first level has {spec.block_out_channels[0]} channels, fewer than "
                      f"the {channels} of a folded {spec.patch}x{spec.patch} cell; it cannot pass the noise through "
                      f"and will draw noise. Use block_out_channels[0] >= {channels} or a smaller patch.",
                      UserWarning, stacklevel=2)
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in spec.cross_attention)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(spec.cross_attention))
    pooled: dict[str, Any] = ({"class_embed_type": "projection", "projection_class_embeddings_input_dim": text_dim}
                              if spec.pooled_condition else {})
    unet: nn.Module = _diffusers().UNet2DConditionModel(
        sample_size=grid, in_channels=channels, out_channels=channels,
        block_out_channels=tuple(spec.block_out_channels), layers_per_block=spec.layers_per_block,
        down_block_types=down, up_block_types=up, cross_attention_dim=text_dim,
        attention_head_dim=spec.attention_head_dim, norm_num_groups=spec.norm_num_groups, **pooled)
    return unet


# what a model saved before these options existed was trained as (its config lacks them)
LEGACY_GENERATOR = {"prediction_type": "epsilon", "min_snr_gamma": None, "pooled_condition": False}


class TextToImageModel(PretrainedMixin, nn.Module):
    """``forward(batch) -> DiffusionOutput``; ``generate(prompts) -> list[PIL.Image]``."""

    # the UNet attends to the text tower's token sequence: cache tokens, not pooled vectors
    needs_tokens = True
    # what ``generate`` returns (tasks/registry.py tells image generators from text decoders by it)
    generates = "image"

    def __init__(self, text: Tower, spec: GeneratorSpec) -> None:
        super().__init__()
        if text.modality != "text":
            raise ModelError(f"a TextToImageModel needs a text tower, got a {text.modality} tower")
        self.spec = spec
        self.towers = nn.ModuleDict({"text": text})
        self.unet = build_unet(spec, text.hidden_dim)
        # the empty condition classifier-free guidance contrasts the text with
        self.null_condition = nn.Parameter(torch.zeros(1, 1, text.hidden_dim))
        self.card_info: dict[str, Any] = {}

    @property
    def text_tower(self) -> Tower:
        tower: Any = self.towers["text"]
        return tower  # type: ignore[no-any-return]

    @property
    def modalities(self) -> list[str]:
        return ["text", "image"]

    @property
    def processors(self) -> dict[str, Any]:
        return {"text": self.text_tower.preprocess, "image": self.pixels}

    @property
    def target_processors(self) -> dict[str, Any]:
        # images are what the model learns to draw, not a tower's input: the collate makes them pixels
        return {"image": self.pixels}

    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images -> (B, 3, S, S) floats in [-1, 1] at the generator's size."""
        size = self.spec.image_size
        arrays = [np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
                  for im in images]
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 127.5 - 1.0

    def scheduler(self, kind: str = "ddpm") -> Any:
        d = _diffusers()
        cls = d.DDPMScheduler if kind == "ddpm" else d.DDIMScheduler
        # clip_sample: each step's predicted clean image is clipped to [-1, 1]. Without it the first DDIM steps
        # divide the noise error by sqrt(alpha_bar) ~ 0.03 near t = 1000 under this schedule, and a model with
        # val noise MSE 0.086 drew pure noise (measured); training's add_noise does not use it
        return cls(num_train_timesteps=self.spec.train_timesteps, beta_schedule="squaredcos_cap_v2",
                   prediction_type=self.spec.prediction_type, clip_sample=True)

    def training_target(self, sched: Any, clean: torch.Tensor, noise: torch.Tensor,
                        steps: torch.Tensor) -> torch.Tensor:
        """What the UNet should output for ``clean`` noised with ``noise`` at ``steps``."""
        kind = self.spec.prediction_type
        if kind == "epsilon":
            return noise
        if kind == "v_prediction":
            return sched.get_velocity(clean, noise, steps)  # type: ignore[no-any-return]
        return clean

    def loss_weights(self, sched: Any, steps: torch.Tensor) -> torch.Tensor | None:
        """min-SNR-gamma per row, in the form each prediction type needs (diffusers' train_text_to_image:
        the clipped SNR over SNR for epsilon, over SNR + 1 for v, itself for the clean image)."""
        gamma = self.spec.min_snr_gamma
        if gamma is None:
            return None
        from diffusers.training_utils import compute_snr

        snr = compute_snr(sched, steps).float().clamp(min=1e-8)
        clipped = snr.clamp(max=gamma)
        kind = self.spec.prediction_type
        if kind == "epsilon":
            return clipped / snr
        if kind == "v_prediction":
            return clipped / (snr + 1)
        return clipped

    def condition(self, text: Any, drop: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The text tower's tokens (B, T, D) and mask; rows where ``drop`` is true get the empty condition."""
        tokens, mask = self.text_tower.forward_tokens(text)
        tokens = tokens.float()
        if drop is not None and bool(drop.any()):
            empty = torch.zeros_like(tokens)
            empty[:, :1] = self.null_condition.to(tokens.dtype)
            only_first = torch.zeros_like(mask)
            only_first[:, 0] = True
            keep = ~drop[:, None]
            tokens = torch.where(keep[..., None], tokens, empty)
            mask = torch.where(keep, mask.bool(), only_first.bool())
        return tokens, mask.bool()

    def fold(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(pixels, self.spec.patch) if self.spec.patch > 1 else pixels

    def unfold(self, folded: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(folded, self.spec.patch) if self.spec.patch > 1 else folded

    def denoise(self, noisy: torch.Tensor, steps: torch.Tensor, tokens: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        pooled = None
        if self.spec.pooled_condition:
            weights = mask.to(tokens.dtype)[..., None]
            pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        out: Any = self.unet(noisy, steps, encoder_hidden_states=tokens, encoder_attention_mask=mask.long(),
                             class_labels=pooled)
        return out.sample  # type: ignore[no-any-return]

    def forward(self, batch: dict[str, Any]) -> DiffusionOutput:
        for key in ("image", "text"):
            if key not in batch:
                raise ModelError(f"batch lacks {key!r}: a text-to-image model trains on images and their texts")
        clean = self.fold(batch["image"].float())
        n = clean.shape[0]
        # validation draws the same noise every time, so val/loss moves only when the model does
        generator = None if self.training else torch.Generator().manual_seed(0)
        noise = torch.randn(clean.shape, generator=generator).to(clean.device)
        steps = torch.randint(0, self.spec.train_timesteps, (n,), generator=generator).to(clean.device)
        drop = torch.rand(n, generator=generator) < self.spec.condition_dropout if self.training else None
        tokens, mask = self.condition(batch["text"], None if drop is None else drop.to(clean.device))
        sched = self.scheduler()
        noisy = sched.add_noise(clean, noise, steps)
        return DiffusionOutput(self.denoise(noisy, steps, tokens, mask), self.training_target(sched, clean, noise, steps),
                               self.loss_weights(sched, steps))

    # ------------------------------------------------------------------ generation
    def check_prompts(self, prompts: Sequence[str]) -> list[str]:
        """Each prompt non-empty, at most MAX_PROMPT_CHARS characters and ``max_prompt_tokens`` tokens."""
        if isinstance(prompts, str):
            prompts = [prompts]
        asks = [str(p) for p in prompts]
        if not asks:
            raise ModelError("generate: no prompts given")
        if len(asks) > MAX_IMAGES_PER_CALL:
            raise ModelError(f"generate: {len(asks)} prompts; one call draws at most {MAX_IMAGES_PER_CALL} images")
        for i, p in enumerate(asks):
            if not p.strip():
                raise ModelError(f"generate: prompt {i} is empty")
            if len(p) > MAX_PROMPT_CHARS:
                raise ModelError(f"generate: prompt {i} ({p[:40]!r}...) is {len(p)} characters; the limit is "
                                 f"{MAX_PROMPT_CHARS}")
        inputs = self.text_tower.preprocess(asks)
        if isinstance(inputs, dict) and "attention_mask" in inputs:
            lengths = inputs["attention_mask"].sum(1).tolist()
            cap = self.spec.max_prompt_tokens
            for i, n in enumerate(lengths):
                if n > cap:
                    raise ModelError(f"generate: prompt {i} ({asks[i][:40]!r}) is {int(n)} tokens; the limit is {cap}")
        return asks

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str] | str, *, steps: int | None = None,
                 guidance_scale: float | None = None, seed: int = 0, batch_size: int = 32) -> list[Image.Image]:
        """One image per prompt (DDIM, ``steps`` from the noise schedule, classifier-free guidance at
        ``guidance_scale``; 0 turns guidance off). Seeded: the same prompt and seed draw the same image,
        and the caller's RNG is left alone."""
        asks = self.check_prompts(prompts if not isinstance(prompts, str) else [prompts])
        n_steps = self.spec.sample_steps if steps is None else int(steps)
        if not 1 <= n_steps <= self.spec.train_timesteps:
            raise ModelError(f"generate: steps={steps} is outside 1..{self.spec.train_timesteps}")
        scale = self.spec.guidance_scale if guidance_scale is None else float(guidance_scale)
        was = self.training
        self.eval()
        device = next(self.unet.parameters()).device
        generator = torch.Generator().manual_seed(int(seed))
        grid = self.spec.image_size // self.spec.patch
        out: list[Image.Image] = []
        try:
            for k in range(0, len(asks), batch_size):
                chunk = asks[k:k + batch_size]
                tokens, mask = self.condition(_to(self.text_tower.preprocess(chunk), device))
                x = torch.randn((len(chunk), 3 * self.spec.patch**2, grid, grid), generator=generator).to(device)
                out.extend(self.to_images(self.sample_folded(x, tokens, mask, n_steps, scale)))
        finally:
            self.train(was)
        return out

    def sampling_timesteps(self, n_steps: int) -> torch.Tensor:
        sched = self.scheduler("ddim")
        sched.set_timesteps(n_steps)
        return sched.timesteps  # type: ignore[no-any-return]

    @torch.inference_mode()
    def sample_folded(self, x: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor, n_steps: int, scale: float,
                      start: int | None = None) -> torch.Tensor:
        """DDIM over ``n_steps`` of the schedule from ``x`` (folded); with ``start``, only the steps at or below it,
        so ``x`` must be an image noised to the first of those (benchmarks/text_to_image/diagnose.py)."""
        sched = self.scheduler("ddim")
        sched.set_timesteps(n_steps)
        empty_t, empty_m = self._empty(tokens.shape[0], tokens.shape[1], x.device)
        for t in sched.timesteps:
            if start is not None and int(t) > start:
                continue
            step = t.expand(x.shape[0]).to(x.device)
            pred = self.denoise(x, step, tokens, mask)
            if scale > 0:
                # guidance is linear in the prediction, so it holds for noise, velocity and clean image alike
                plain = self.denoise(x, step, empty_t, empty_m)
                pred = plain + scale * (pred - plain)
            x = sched.step(pred, t, x).prev_sample
        return x

    def to_images(self, folded: torch.Tensor) -> list[Image.Image]:
        pixels = self.unfold(folded).clamp(-1, 1)
        arrays = ((pixels + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(a) for a in arrays]

    def _empty(self, n: int, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.zeros(n, length, self.null_condition.shape[-1], device=device)
        tokens[:, :1] = self.null_condition.to(device)
        mask = torch.zeros(n, length, dtype=torch.bool, device=device)
        mask[:, 0] = True
        return tokens, mask

    # ------------------------------------------------------------------ save / load
    def get_config(self) -> dict[str, Any]:
        return {"towers": {"text": self.text_tower.spec()}, "generator": self.spec.model_dump()}

    def save_assets(self, folder: Path) -> None:
        self.text_tower.encoder.save_assets(folder / "towers" / "text")

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> TextToImageModel:
        text = tower_from_saved(config["towers"]["text"], folder / "towers" / "text")
        return cls(text, GeneratorSpec.model_validate({**LEGACY_GENERATOR, **config["generator"]}))


register_model_class(TextToImageModel)


def _to(inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, dict):
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    return inputs
