"""Save a run config's model at its seed initialisation: the "before" row of docs/examples.md section 6.

    python benchmarks/video_direction/save_init.py examples/text_video_alignment.yaml runs/video-init
"""

from __future__ import annotations

import sys

import torch

from polymodal.config import load_config
from polymodal.models import build_model


def main(config: str, out: str) -> None:
    cfg = load_config(config)
    torch.manual_seed(cfg.train.seed)
    build_model(cfg.model).save_pretrained(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
