"""``moving-shapes``: short clips of one coloured shape moving in a direction.

Each clip is a folder of 8 PNG frames (64x64, ``frame_000.png``...) under
``video/<id>/``; the ``video`` column points at that folder. A single still frame does
not tell the direction, only the order of frames does. Columns: ``video``, ``text``
("a green triangle moving left", a few wordings), ``label`` (= ``direction``),
``direction``, ``shape``, ``color``, ``meta.combo_seen``. Splits are stratified by direction,
except that five colour-shape combinations (``HELD_OUT_COMBOS``, one per shape) only ever occur in
test: a model told apart "a blue circle moving left" from "... moving right" on those has learned
direction, not a colour-shape pair it saw moving.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from polymodal.data.builtin import _common as common
from polymodal.data.builtin import _draw as draw

NAME = "moving-shapes"
DEFAULT_N = 400
FRAME_SIZE = 64
NUM_FRAMES = 8
FILES_DIR = "video"
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
# one colour per shape, never seen in train or val
HELD_OUT_COMBOS = frozenset({("blue", "circle"), ("orange", "square"), ("red", "triangle"), ("purple", "star"),
                             ("green", "cross")})
TEMPLATES = (
    "{a} {name} moving {d}",
    "{a} {name} that moves {d}",
    "{a} {name} sliding {d}",
    "a clip of {a} {name} moving {d}",
)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def render_clip(shape: str, color: str, direction: str, rng: random.Random) -> list[Any]:
    """Frames of one clip: the shape travels 24-36 px across a still background."""
    radius = rng.uniform(7, 10)
    travel = rng.uniform(24, 36)
    dx, dy = DIRECTIONS[direction]
    margin = radius * 1.25 + 2
    # choose a start so the whole path stays inside the frame
    lo_x = margin + (travel if dx < 0 else 0)
    hi_x = FRAME_SIZE - margin - (travel if dx > 0 else 0)
    lo_y = margin + (travel if dy < 0 else 0)
    hi_y = FRAME_SIZE - margin - (travel if dy > 0 else 0)
    x0, y0 = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
    angle = 0.0 if shape == "circle" else rng.uniform(-0.25, 0.25)
    fill = draw.jitter_color(color, rng)
    tone = rng.randint(232, 255)
    frames = []
    for t in range(NUM_FRAMES):
        step = travel * t / (NUM_FRAMES - 1)
        cx = (x0 + dx * step) * draw.SUPERSAMPLE
        cy = (y0 + dy * step) * draw.SUPERSAMPLE
        image, handle = draw.new_canvas(FRAME_SIZE, (tone, tone, tone))
        draw.draw_shape(handle, shape, fill, (cx, cy), radius * draw.SUPERSAMPLE, angle)
        frames.append(draw.finish(image, FRAME_SIZE))
    return frames


def make(out_dir: str | Path, n: int | None = None, seed: int = 0) -> Path:
    common.check_n(NAME, n)
    total = DEFAULT_N if n is None else n
    out = common.prepare_out_dir(out_dir, FILES_DIR)
    (out / FILES_DIR).mkdir()
    names = list(DIRECTIONS)
    # directions cycle so every direction gets the same share, then splits are stratified
    directions = [names[i % len(names)] for i in range(total)]
    splits = common.stratified_splits(directions, random.Random(f"{seed}-{NAME}-splits"))
    rows: list[dict[str, Any]] = []
    with common.progress(total * NUM_FRAMES, NAME) as advance:
        for i, (direction, split) in enumerate(zip(directions, splits, strict=True)):
            rng = common.row_rng(seed, NAME, i)
            shape = rng.choice(draw.SHAPES)
            color = rng.choice(sorted(draw.COLORS))
            row_id = f"moving-{i:05d}"
            rel = f"{FILES_DIR}/{row_id}"
            (out / rel).mkdir()
            for t, frame in enumerate(render_clip(shape, color, direction, rng)):
                frame.save(out / rel / f"frame_{t:03d}.png", format="PNG")
            advance(NUM_FRAMES)
            text = rng.choice(TEMPLATES).format(a=_article(color), name=f"{color} {shape}", d=direction)
            seen = (color, shape) not in HELD_OUT_COMBOS
            rows.append(
                {
                    "id": row_id,
                    "split": split if seen else "test",
                    "video": rel,
                    "text": text,
                    "label": direction,
                    "direction": direction,
                    "shape": shape,
                    "color": color,
                    "meta": {"combo_seen": seen},
                }
            )
    info = {
        "name": NAME,
        "seed": seed,
        "frame_size": FRAME_SIZE,
        "num_frames": NUM_FRAMES,
        "label": "direction of motion",
        "directions": names,
        "held_out_combos": sorted(f"{c} {s}" for c, s in HELD_OUT_COMBOS),
    }
    labels = {"label": names, "direction": names, "shape": list(draw.SHAPES), "color": list(draw.COLORS)}
    return common.write_manifest(out, rows, info, FILES_DIR, labels)
