"""Training speed of the text-to-image UNet at 64 px: one AdamW step of batch 64 on random inputs,
for the folded (patch 4) and unfolded layouts. Prints samples/s per configuration.

    python benchmarks/text_to_image/unet_speed.py
"""

from __future__ import annotations

import time

import torch

from polymodal.config import GeneratorSpec
from polymodal.models.text_to_image import build_unet

CONFIGS = [  # (patch, block_out_channels, cross-attention per block)
    (4, [32, 64, 128], [False, True, True]),
    (4, [64, 128, 256], [False, True, True]),
    (1, [32, 64, 128], [False, False, True]),
]


def main(batch: int = 64, text_tokens: int = 12, text_dim: int = 384) -> None:
    torch.set_num_threads(2)
    for patch, channels, attention in CONFIGS:
        spec = GeneratorSpec(patch=patch, block_out_channels=channels, cross_attention=attention)
        unet = build_unet(spec, text_dim)
        opt = torch.optim.AdamW(unet.parameters(), 1e-3)
        grid = spec.image_size // patch
        x = torch.randn(batch, 3 * patch * patch, grid, grid)
        text = torch.randn(batch, text_tokens, text_dim)
        steps = torch.randint(0, 1000, (batch,))
        for i in range(3):  # the first step warms up; the next two are timed
            if i == 1:
                start = time.perf_counter()
            out = unet(x, steps, encoder_hidden_states=text).sample  # type: ignore[operator]
            out.pow(2).mean().backward()
            opt.step()
            opt.zero_grad()
        rate = 2 * batch / (time.perf_counter() - start)
        params = sum(p.numel() for p in unet.parameters()) / 1e6
        print(f"patch {patch} channels {channels} attention {attention}: {params:.2f}M params, {rate:.1f} samples/s",
              flush=True)


if __name__ == "__main__":
    main()
