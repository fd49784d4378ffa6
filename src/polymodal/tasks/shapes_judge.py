"""Training and scoring of the ``shapes`` attribute classifier (``models/shapes_judge.py``): the
judge of what a text-to-image model drew.

A small CNN trained on real ``shapes`` images reads a 64 px scene and says the main (largest,
first-named) object's colour and shape, the second object's colour and shape, where the main
object sits relative to the second (above / below / left / right) and how many objects there
are. Its own accuracy on real test images is measured when it is trained (``train_judge``),
so a generator's score under it can be read against the judge's ceiling.

The judge is a registered model class (``models/shapes_judge.py``): it saves as safetensors +
config.json and loads through ``polymodal.load`` like any model.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from polymodal.data.builtin.shapes import RELATIONS
from polymodal.errors import DataError
from polymodal.metrics.captions import COLORS, SHAPES, parse_objects, read_caption
from polymodal.models.shapes_judge import COUNTS, HEADS, ShapesJudge

__all__ = ["HEADS", "JudgeTraining", "SceneTargets", "ShapesJudge", "judge_slots", "scene_targets", "train_judge"]


@dataclass(frozen=True)
class SceneTargets:
    """What a ``shapes`` row says its scene holds: objects in caption order and the relation."""

    objects: tuple[tuple[str, str], ...]
    relation: str | None

    def labels(self) -> dict[str, int]:
        """Class index per head, -1 where the scene has no such thing (one object: no second)."""
        out = {k: -1 for k in HEADS}
        if self.objects:
            out["main_color"] = COLORS.index(self.objects[0][0])
            out["main_shape"] = SHAPES.index(self.objects[0][1])
            out["count"] = min(len(self.objects), len(COUNTS)) - 1
        if len(self.objects) >= 2:
            out["second_color"] = COLORS.index(self.objects[1][0])
            out["second_shape"] = SHAPES.index(self.objects[1][1])
            if self.relation is not None:
                out["relation"] = RELATIONS.index(self.relation)
        return out


def scene_targets(row: dict[str, Any], where: str = "row") -> SceneTargets:
    """A row's objects (its ``objects`` column, else its caption) and relation (from the caption)."""
    text = str(row.get("text") or "")
    reading = read_caption(text)
    objects = tuple(parse_objects(row["objects"])) if row.get("objects") else reading.objects
    for color, shape in objects:
        if color not in COLORS or shape not in SHAPES:
            raise DataError(f"{where}: {color + ' ' + shape!r} is not a shapes colour and shape")
    if not objects:
        raise DataError(f"{where}: names no colour-shape object ({text!r})")
    return SceneTargets(tuple(objects), reading.relation if len(objects) >= 2 else None)




def judge_slots(reading: dict[str, str], truth: SceneTargets) -> tuple[int, int]:
    """(correct, total) attribute slots: the main object's colour and shape; with two or more
    objects also the second's colour and shape and the relation between them."""
    main = truth.objects[0]
    correct = int(reading["main_color"] == main[0]) + int(reading["main_shape"] == main[1])
    total = 2
    if len(truth.objects) >= 2:
        second = truth.objects[1]
        correct += int(reading["second_color"] == second[0]) + int(reading["second_shape"] == second[1])
        total += 2
        if truth.relation is not None:
            correct += int(reading["relation"] == truth.relation)
            total += 1
    return correct, total


@dataclass
class JudgeTraining:
    folder: Path
    test_accuracy: dict[str, float]  # head -> accuracy on real test images (rows that have the head)
    test_rows: int
    seconds: float


def _load(rows: Sequence[dict[str, Any]], root: Path) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    from polymodal.data.image import load_image

    images, labels = [], []
    for row in rows:
        images.append(load_image(root / str(row["image"])))
        labels.append(scene_targets(row, f"row {row.get('id')}").labels())
    targets = {h: torch.tensor([lab[h] for lab in labels]) for h in HEADS}
    return ShapesJudge.pixels(images), targets


def _loss(logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    losses = [F.cross_entropy(logits[h], targets[h], ignore_index=-1) for h in HEADS if bool((targets[h] >= 0).any())]
    return torch.stack(losses).sum()


def train_judge(manifest: str | Path, out: str | Path, *, epochs: int = 8, batch_size: int = 64, lr: float = 2e-3,
                width: int = 32, seed: int = 0, limit: int | None = None) -> JudgeTraining:
    """Train the judge on the manifest's train split (all splits' real images are ``shapes``
    scenes), report its per-head accuracy on the test split, and save it to ``out``."""
    import time

    from polymodal.data.sources import load_manifest

    start = time.perf_counter()
    m = load_manifest(manifest)
    train_rows = [r for r in m.rows if r.get("split") == "train"][:limit]
    test_rows = [r for r in m.rows if r.get("split") == "test"][:limit]
    if not train_rows or not test_rows:
        raise DataError(f"{manifest}: the judge needs train and test rows of a shapes manifest")
    x, y = _load(train_rows, m.root)
    xt, yt = _load(test_rows, m.root)
    torch.manual_seed(seed)
    model = ShapesJudge(width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    order_rng = random.Random(seed)
    model.train()
    for _ in range(epochs):
        order = list(range(len(x)))
        order_rng.shuffle(order)
        for k in range(0, len(order), batch_size):
            idx = torch.tensor(order[k:k + batch_size])
            # generated images are noisier than rendered ones: the judge sees some noise in training
            batch = x[idx] + 0.1 * torch.rand(()) * torch.randn_like(x[idx])
            loss = _loss(model(batch), {h: t[idx] for h, t in y.items()})
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.inference_mode():
        logits = {h: torch.cat(parts) for h, parts in _batched_logits(model, xt).items()}
    accuracy = {}
    for h in HEADS:
        seen = yt[h] >= 0
        if bool(seen.any()):
            accuracy[h] = float((logits[h].argmax(-1)[seen] == yt[h][seen]).float().mean())
    folder = Path(out)
    model.card_info = {"name": "shapes-judge", "metrics": {f"test/{h}/accuracy": v for h, v in accuracy.items()},
                       "training_data": str(manifest)}
    model.save_pretrained(str(folder))
    result = JudgeTraining(folder, accuracy, len(test_rows), time.perf_counter() - start)
    (folder / "judge.json").write_text(json.dumps({"test_accuracy": accuracy, "test_rows": len(test_rows),
                                                   "train_rows": len(train_rows), "epochs": epochs,
                                                   "seconds": round(result.seconds, 1)}, indent=2) + "\n",
                                       encoding="utf-8")
    return result


def _batched_logits(model: ShapesJudge, x: torch.Tensor, batch_size: int = 256) -> dict[str, list[torch.Tensor]]:
    out: dict[str, list[torch.Tensor]] = {h: [] for h in HEADS}
    for k in range(0, len(x), batch_size):
        for h, v in model(x[k:k + batch_size]).items():
            out[h].append(v)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m polymodal.tasks.shapes_judge MANIFEST OUT [--epochs N]``: train and save the judge."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m polymodal.tasks.shapes_judge", description=main.__doc__)
    parser.add_argument("manifest")
    parser.add_argument("out")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = train_judge(args.manifest, args.out, epochs=args.epochs, seed=args.seed)
    for head, acc in result.test_accuracy.items():
        print(f"{head}\t{acc:.4f}")
    print(f"saved {result.folder} ({result.test_rows} real test images, {result.seconds:.0f} s)")


if __name__ == "__main__":
    main()
