"""``shapes``: synthetic scenes of one to three coloured shapes, with captions and QA.

Each 96x96 image holds 1-3 shapes on a light background, placed in distinct cells of a
3x3 grid. The *main* object is drawn largest and named first in the caption.

Columns: ``image``, ``text`` (caption, a few wordings), ``text_zh`` (the same caption in
Chinese, ``shapes_zh.py``), ``label`` (the main object as
"colour shape", e.g. "red circle"), ``shape`` / ``color`` (main object), ``count``
("1".."3"), ``objects`` (every object as "colour shape", caption order), ``question`` /
``answer`` / ``question_type`` (+ ``question_zh`` / ``answer_zh`` in Chinese) and ``heldout``.

Questions need both modalities: "what colour is the triangle?" and "what shape is the
red object?" are only asked about scenes with two or more objects (so the image alone
does not say which object is meant), and "is there a red circle?" is yes half the time.
Held-out colour-shape combinations (one per colour, listed in ``dataset.json``) never
appear in train scenes; val/test rows containing one are marked ``heldout: true``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from polymodal.data.builtin import _common as common
from polymodal.data.builtin import _draw as draw
from polymodal.data.builtin import shapes_zh as zh_words

NAME = "shapes"
DEFAULT_N = 1000
IMAGE_SIZE = 96
GRID = 3
FILES_DIR = "images"
RELATIONS = ("above", "below", "to the left of", "to the right of")


def heldout_combos(seed: int) -> list[tuple[str, str]]:
    """One (colour, shape) pair per colour, every shape used at least once (seeded)."""
    rng = random.Random(f"{seed}-shapes-heldout")
    colors = sorted(draw.COLORS)
    shapes = list(draw.SHAPES)
    rng.shuffle(shapes)
    shapes += rng.sample(draw.SHAPES, len(colors) - len(shapes))
    return sorted(zip(colors, shapes, strict=True))


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _phrase(obj: dict[str, Any]) -> str:
    name = f"{obj['color']} {obj['shape']}"
    return f"{article(name)} {name}"


def relation(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Where ``a`` sits relative to ``b``, judged on grid cells (vertical wins ties)."""
    drow, dcol = a["row"] - b["row"], a["col"] - b["col"]
    if drow != 0 and abs(drow) >= abs(dcol):
        return "above" if drow < 0 else "below"
    return "to the left of" if dcol < 0 else "to the right of"


def captions(objects: list[dict[str, Any]], rng: random.Random) -> tuple[str, str]:
    """The scene's caption in English and in Chinese: one template slot, drawn once, in both languages."""
    first = _phrase(objects[0])
    if len(objects) == 1:
        en, zh = rng.choice(zh_words.ONE_OBJECT)
        return en.format(a=first), zh.format(n=zh_words.name_of(objects[0]))
    where = relation(objects[0], objects[1])
    pair = f"{first} {where} {_phrase(objects[1])}"
    pair_zh = zh_words.pair(objects[0], where, objects[1])
    if len(objects) == 2:
        en, zh = rng.choice(zh_words.TWO_OBJECTS)
        return en.format(p=pair), zh.format(p=pair_zh)
    en, zh = rng.choice(zh_words.THREE_OBJECTS)
    return en.format(p=pair, c=_phrase(objects[2])), zh.format(p=pair_zh, c=zh_words.name_of(objects[2]))


def caption(objects: list[dict[str, Any]], rng: random.Random) -> str:
    return captions(objects, rng)[0]


def all_questions(objects: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Every (type, question, answer) the scene supports in canonical wording.

    Colour/shape questions only exist for scenes with two or more objects.
    """
    out: list[tuple[str, str, str]] = []
    if len(objects) >= 2:
        for obj in objects:
            out.append(("color", f"what colour is the {obj['shape']}?", obj["color"]))
            out.append(("shape", f"what shape is the {obj['color']} object?", obj["shape"]))
    present = {(o["color"], o["shape"]) for o in objects}
    for color in sorted(draw.COLORS):
        for shape in draw.SHAPES:
            answer = "yes" if (color, shape) in present else "no"
            out.append(("exists", f"is there {article(color)} {color} {shape}?", answer))
    return out


def bilingual_question(objects: list[dict[str, Any]], rng: random.Random) -> tuple[str, str, str, str]:
    """One question for the scene: (type, question, answer, the question in Chinese)."""
    kinds = ["exists"] if len(objects) == 1 else ["color", "color", "shape", "shape", "exists"]
    kind = rng.choice(kinds)
    if kind == "exists":
        target = rng.choice(objects)
        if rng.random() < 0.5:
            color, shape, answer = target["color"], target["shape"], "yes"
        else:
            # a near miss: keep one attribute, change the other, so neither side alone decides
            present = {(o["color"], o["shape"]) for o in objects}
            misses = [(c, target["shape"]) for c in draw.COLORS] + [(target["color"], s) for s in draw.SHAPES]
            color, shape = rng.choice(sorted(m for m in misses if m not in present))
            answer = "no"
        zh = zh_words.EXISTS_QUESTION_ZH.format(n=zh_words.object_name(color, shape))
        return kind, f"is there {article(color)} {color} {shape}?", answer, zh
    target = rng.choice(objects)
    if kind == "color":
        en, zh = rng.choice(zh_words.COLOR_QUESTIONS)
        shape = target["shape"]
        return kind, en.format(s=shape), target["color"], zh.format(s=zh_words.SHAPES_ZH[shape])
    en, zh = rng.choice(zh_words.SHAPE_QUESTIONS)
    color = target["color"]
    return kind, en.format(c=color), target["shape"], zh.format(c=zh_words.COLORS_ZH[color])


def question(objects: list[dict[str, Any]], rng: random.Random) -> tuple[str, str, str]:
    """One question for the scene: (type, question, answer)."""
    return bilingual_question(objects, rng)[:3]


def scene(split: str, heldout: list[tuple[str, str]], rng: random.Random) -> list[dict[str, Any]]:
    """Objects with distinct colours and distinct shapes; train scenes avoid held-out combos."""
    count = rng.choice([1, 2, 2, 3, 3])
    banned = set(heldout) if split == "train" else set()
    cells = rng.sample(range(GRID * GRID), count)
    objects: list[dict[str, Any]] = []
    for k in range(count):
        used_colors = {o["color"] for o in objects}
        used_shapes = {o["shape"] for o in objects}
        if k == 0 and split != "train" and rng.random() < 0.5:
            # half of val/test scenes centre on an unseen combination (compositional zero-shot)
            options = list(heldout)
        else:
            options = [
                (c, s)
                for c in sorted(draw.COLORS)
                for s in draw.SHAPES
                if c not in used_colors and s not in used_shapes and (c, s) not in banned
            ]
        color, shape = rng.choice(options)
        row, col = divmod(cells[k], GRID)
        objects.append({"color": color, "shape": shape, "row": row, "col": col, "main": k == 0})
    return objects


def render(objects: list[dict[str, Any]], rng: random.Random) -> Any:
    tone = rng.randint(232, 255)
    image, handle = draw.new_canvas(IMAGE_SIZE, (tone, tone, tone))
    cell = IMAGE_SIZE * draw.SUPERSAMPLE / GRID
    for obj in objects:
        radius = rng.uniform(10, 12) if obj["main"] else rng.uniform(6.5, 8.5)
        cx = (obj["col"] + 0.5) * cell + rng.uniform(-3, 3) * draw.SUPERSAMPLE
        cy = (obj["row"] + 0.5) * cell + rng.uniform(-3, 3) * draw.SUPERSAMPLE
        angle = 0.0 if obj["shape"] == "circle" else rng.uniform(-0.25, 0.25)
        fill = draw.jitter_color(obj["color"], rng)
        draw.draw_shape(handle, obj["shape"], fill, (cx, cy), radius * draw.SUPERSAMPLE, angle)
    return draw.finish(image, IMAGE_SIZE)


def make(out_dir: str | Path, n: int | None = None, seed: int = 0) -> Path:
    common.check_n(NAME, n)
    total = DEFAULT_N if n is None else n
    out = common.prepare_out_dir(out_dir, FILES_DIR)
    (out / FILES_DIR).mkdir()
    held = heldout_combos(seed)
    held_set = set(held)
    splits = common.split_sequence(total)
    random.Random(f"{seed}-shapes-splits").shuffle(splits)
    rows: list[dict[str, Any]] = []
    with common.progress(total, "shapes") as advance:
        for i, split in enumerate(splits):
            rng = common.row_rng(seed, NAME, i)
            objects = scene(split, held, rng)
            row_id = f"shapes-{i:05d}"
            rel = f"{FILES_DIR}/{row_id}.png"
            render(objects, rng).save(out / rel, format="PNG")
            kind, text, answer, text_zh = bilingual_question(objects, rng)
            main = objects[0]
            caption_en, caption_zh = captions(objects, rng)
            rows.append(
                {
                    "id": row_id,
                    "split": split,
                    "image": rel,
                    "text": caption_en,
                    "text_zh": caption_zh,
                    "label": f"{main['color']} {main['shape']}",
                    "shape": main["shape"],
                    "color": main["color"],
                    "count": str(len(objects)),
                    "objects": [f"{o['color']} {o['shape']}" for o in objects],
                    "question": text,
                    "answer": answer,
                    "question_type": kind,
                    "question_zh": text_zh,
                    "answer_zh": zh_words.answer(answer),
                    "heldout": any((o["color"], o["shape"]) in held_set for o in objects),
                }
            )
            advance(1)
    info = {
        "name": NAME,
        "seed": seed,
        "image_size": IMAGE_SIZE,
        "label": "colour and shape of the main (largest, first-named) object",
        "heldout_combos": [f"{c} {s}" for c, s in held],
        "shapes": list(draw.SHAPES),
        "colors": sorted(draw.COLORS),
    }
    combos = [f"{c} {s}" for c in draw.COLORS for s in draw.SHAPES]
    labels = {
        "label": combos,
        "shape": list(draw.SHAPES),
        "color": list(draw.COLORS),
        "count": ["1", "2", "3"],
        "objects": combos,
        "answer": [*draw.COLORS, *draw.SHAPES, "yes", "no"],
    }
    return common.write_manifest(out, rows, info, FILES_DIR, labels)
