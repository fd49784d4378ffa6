"""Can a linear probe read each object's colour and shape from one cell of an image tower's token grid?

The captioner's decoder sees the image only through that grid, so if a logistic-regression probe
on the cell an object sits in cannot name its colour and shape, no decoder can: the encoder is
the bottleneck. Held-out colour-shape pairs (never in a training scene) are scored separately:
a probe trained on seen pairs that still reads them shows colour and shape are represented apart.

    python benchmarks/captioning/probe_grid.py data/shapes --tower efficientnet-lite0 --image-size 96
    python benchmarks/captioning/probe_grid.py data/shapes --levels 7 --grid 3   # block 7's grid, pooled to 3x3
    python benchmarks/captioning/probe_grid.py data/shapes --model runs/captioning   # a trained captioner's tower

Object positions are not in the manifest; they are re-drawn from the dataset's seed with
shapes.py's own scene(), which consumes the row RNG first, so they match the rendered image.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression

from polymodal.data.builtin import _common as common
from polymodal.data.builtin import shapes
from polymodal.models.towers import Tower, build_tower


def scene_objects(data: Path, rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    seed = int(json.loads((data / "dataset.json").read_text())["builtin"]["seed"])
    held = shapes.heldout_combos(seed)
    out = []
    for row in rows:
        index = int(row["id"].rsplit("-", 1)[1])
        objects = shapes.scene(row["split"], held, common.row_rng(seed, shapes.NAME, index))
        if [f"{o['color']} {o['shape']}" for o in objects] != row["objects"]:
            raise SystemExit(f"{row['id']}: re-drawn scene {objects} does not match the manifest's objects")
        out.append(objects)
    return out


@torch.inference_mode()
def grids(tower: Tower, data: Path, rows: list[dict[str, Any]], batch: int = 64) -> np.ndarray:
    tower.eval()
    parts = []
    for k in range(0, len(rows), batch):
        images = [Image.open(data / r["image"]).convert("RGB") for r in rows[k:k + batch]]
        tokens, _ = tower.forward_tokens(tower.preprocess(images))
        parts.append(tokens.float().numpy())
    return np.concatenate(parts)


def cell_table(feats: np.ndarray, scenes: list[list[dict[str, Any]]], side: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One row per object: the token of the grid cell its centre falls in."""
    xs, objs = [], []
    for f, objects in zip(feats, scenes, strict=True):
        for o in objects:
            # shapes' 3x3 layout onto the tower's side x side grid: the cell under the object's centre
            r, c = int((o["row"] + 0.5) * side / shapes.GRID), int((o["col"] + 0.5) * side / shapes.GRID)
            xs.append(f[r * side + c])
            objs.append(o)
    return np.stack(xs), objs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--tower", default="efficientnet-lite0")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--levels", nargs="*", default=None,
                    help="options.feature_levels: block indices and/or 'head', joined per cell")
    ap.add_argument("--grid", type=int, default=None, help="options.grid: pool every level to grid x grid")
    ap.add_argument("--model", type=Path, default=None, help="a saved captioner; probes its image tower")
    ap.add_argument("--train-rows", type=int, default=1200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [json.loads(line) for line in (args.data / "manifest.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"][: args.train_rows]
    test = [r for r in rows if r["split"] == "test"]
    if args.model:
        import polymodal

        tower = polymodal.load(args.model).towers["image"]
    else:
        options: dict[str, Any] = {"image_size": args.image_size}
        if args.levels:
            options["feature_levels"] = [v if v == "head" else int(v) for v in args.levels]
        if args.grid:
            options["grid"] = args.grid
        tower = build_tower({"modality": "image", "source": args.tower, "options": options})
    start = time.perf_counter()
    ftr, fte = grids(tower, args.data, train), grids(tower, args.data, test)
    side = int(round(ftr.shape[1] ** 0.5))
    xtr, otr = cell_table(ftr, scene_objects(args.data, train), side)
    xte, ote = cell_table(fte, scene_objects(args.data, test), side)
    mean, std = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    held = {tuple(c.split()) for c in json.loads((args.data / "dataset.json").read_text())["builtin"]["heldout_combos"]}
    is_held = np.array([(o["color"], o["shape"]) in held for o in ote])
    result: dict[str, Any] = {"source": str(args.model or args.tower), "levels": args.levels, "grid": f"{side}x{side}", "dim": int(xtr.shape[1]),
                              "train_objects": len(otr), "test_objects": len(ote), "heldout_objects": int(is_held.sum())}
    for attr in ("color", "shape"):
        probe = LogisticRegression(max_iter=2000, C=1.0).fit(xtr, [o[attr] for o in otr])
        right = probe.predict(xte) == np.array([o[attr] for o in ote])
        result[attr] = {"seen": float(right[~is_held].mean()), "heldout": float(right[is_held].mean())}
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
