"""The shapes judge on the REAL test images of the rows the text-to-image task prompts with.

This is the judge's own ceiling: a generator drawing the scenes perfectly would score about this.

    python benchmarks/text_to_image/judge_ceiling.py data/shapes/manifest.jsonl runs/shapes-judge --limit 24
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

import polymodal
from polymodal.tasks.shapes_judge import judge_slots, scene_targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("judge", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="also report the first N rows per group")
    args = parser.parse_args()
    judge = polymodal.load(args.judge)
    root = args.manifest.parent
    rows = [json.loads(line) for line in args.manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] == "test"]
    singles = [r for r in rows if len(r["objects"]) == 1]
    relations = [r for r in rows if len(r["objects"]) >= 2]
    groups = [("single, all test rows", singles), ("relation, all test rows", relations)]
    if args.limit:
        groups += [(f"single, first {args.limit}", singles[:args.limit]),
                   (f"relation, first {args.limit}", relations[:args.limit])]
    for name, group in groups:
        reads = judge.predict([Image.open(root / r["image"]) for r in group])
        slots = np.array([judge_slots(p, scene_targets(r)) for p, r in zip(reads, group, strict=True)])
        held = np.array([bool(r["heldout"]) for r in group])

        def acc(mask: np.ndarray, slots: np.ndarray = slots) -> float:
            return float(slots[mask, 0].sum() / slots[mask, 1].sum()) if mask.any() else float("nan")

        print(f"{name}: n={len(group)} attribute_accuracy={acc(np.ones(len(group), bool)):.4f} "
              f"seen={acc(~held):.4f} (n={int((~held).sum())}) heldout={acc(held):.4f} (n={int(held.sum())})")


if __name__ == "__main__":
    main()
