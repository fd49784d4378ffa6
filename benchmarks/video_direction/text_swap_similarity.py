"""Does a model's text tower tell direction words apart? For each test caption of a moving-shapes
manifest: mean cosine with its own direction swaps ("... left" -> "... right / up / down"), and
mean cosine with captions of other shapes moving the same way (docs/examples.md section 6).

    python benchmarks/video_direction/text_swap_similarity.py data/moving/manifest.jsonl runs/video-init runs/video
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

import polymodal
from polymodal.data.text import word_swaps

DIRECTIONS = [["left", "right", "up", "down"]]


def main(manifest: str, models: list[str]) -> None:
    torch.set_num_threads(1)
    with open(manifest, encoding="utf-8") as f:
        rows = [r for r in map(json.loads, f) if r["split"] == "test"]
    captions = [r["text"] for r in rows]
    same_direction_other_shape = np.array([[a["direction"] == b["direction"] and a["shape"] != b["shape"]
                                            for b in rows] for a in rows])
    for path in models:
        model = polymodal.load(path)
        own = model.encode_text(captions, convert_to_numpy=True, bf16=False)
        swaps = model.encode_text([s for c in captions for s in word_swaps(c, DIRECTIONS)],
                                  convert_to_numpy=True, bf16=False).reshape(len(captions), 3, -1)
        to_swaps = float(np.einsum("nd,nkd->nk", own, swaps).mean())
        to_others = float((own @ own.T)[same_direction_other_shape].mean())
        print(f"{path}: cos(caption, its direction swaps) {to_swaps:.3f}; "
              f"cos(caption, other shape same direction) {to_others:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
