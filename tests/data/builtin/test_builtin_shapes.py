"""shapes: determinism, schema, held-out combinations, and QA that needs both modalities."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from PIL import Image

from polymodal.data.builtin import make_dataset, shapes


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    manifest = make_dataset("shapes", out, n=300, seed=3)
    return out, manifest


def test_same_seed_same_bytes_other_seed_differs(tmp_path, tree_of):
    a = make_dataset("shapes", tmp_path / "a", n=40, seed=7).parent
    b = make_dataset("shapes", tmp_path / "b", n=40, seed=7).parent
    c = make_dataset("shapes", tmp_path / "c", n=40, seed=8).parent
    assert tree_of(a) == tree_of(b)
    assert tree_of(a)["manifest.jsonl"] != tree_of(c)["manifest.jsonl"]


def test_schema_and_splits(made, rows_of, schema):
    out, manifest = made
    rows = rows_of(manifest)
    assert len(rows) == 300
    schema(rows, out, "image")
    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")}
    assert counts == {"train": 240, "val": 30, "test": 30}
    for row in rows:
        assert row["label"] == f"{row['color']} {row['shape']}" == row["objects"][0]
        assert row["count"] == str(len(row["objects"])) and 1 <= len(row["objects"]) <= 3
        assert row["text"].startswith(("a ", "an ", "there is", "a picture"))
        assert row["label"] in row["text"]  # the main object is named in the caption
        assert isinstance(row["heldout"], bool)


def test_images_decode_to_96px_rgb(made, rows_of):
    out, manifest = made
    for row in rows_of(manifest)[:10]:
        with Image.open(out / row["image"]) as im:
            assert im.size == (96, 96) and im.mode == "RGB"
            # there is something drawn: not a flat background
            lo, hi = im.convert("L").getextrema()
            assert hi - lo > 60


def test_heldout_combos_never_in_train_and_present_in_eval(made, rows_of):
    out, manifest = made
    held = set(json.loads((out / "dataset.json").read_text())["builtin"]["heldout_combos"])
    assert len(held) == 6
    rows = rows_of(manifest)
    for row in rows:
        has_held = bool(held & set(row["objects"]))
        assert row["heldout"] == has_held
        if row["split"] == "train":
            assert not has_held, row["id"]
    eval_held = [r for r in rows if r["split"] != "train" and r["label"] in held]
    assert len(eval_held) >= 10
    # every colour and every shape is still seen in train (only the combination is new)
    train = [r for r in rows if r["split"] == "train"]
    assert {r["color"] for r in train} == set(shapes.draw.COLORS)
    assert {r["shape"] for r in train} == set(shapes.draw.SHAPES)


def test_answers_are_correct_for_the_scene(made, rows_of):
    _, manifest = made
    for row in rows_of(manifest):
        objects = [tuple(o.split(" ")) for o in row["objects"]]
        q, a = row["question"], row["answer"]
        if row["question_type"] == "color":
            assert len(objects) >= 2
            shape = q.rstrip("?").split(" ")[-1]
            assert (a, shape) in objects
        elif row["question_type"] == "shape":
            assert len(objects) >= 2
            color = next(c for c in shapes.draw.COLORS if f" {c} " in f" {q.rstrip('?')} ")
            assert (color, a) in objects
        else:
            color, shape = q.rstrip("?").split(" ")[-2:]
            assert a == ("yes" if (color, shape) in objects else "no")


def test_question_alone_does_not_decide_the_answer(made, rows_of):
    _, manifest = made
    answers = defaultdict(set)
    for row in rows_of(manifest):
        answers[row["question"]].add(row["answer"])
    repeated = [q for q in answers if sum(1 for r in rows_of(manifest) if r["question"] == q) >= 3]
    assert repeated
    ambiguous = [q for q in repeated if len(answers[q]) > 1]
    assert len(ambiguous) >= 0.8 * len(repeated)
    # yes/no questions are balanced enough that "always yes" is a poor guess
    yes_no = [r["answer"] for r in rows_of(manifest) if r["question_type"] == "exists"]
    assert 0.3 < yes_no.count("yes") / len(yes_no) < 0.7


def test_image_alone_does_not_decide_the_answer(made, rows_of):
    _, manifest = made
    for row in rows_of(manifest):
        objects = [dict(zip(("color", "shape"), o.split(" "), strict=True)) for o in row["objects"]]
        by_type = defaultdict(set)
        for kind, _, answer in shapes.all_questions(objects):
            by_type[kind].add(answer)
        # the same image answers differently depending on the question asked
        assert by_type["exists"] == {"yes", "no"}
        if len(objects) >= 2:
            assert len(by_type["color"]) == len(objects) and len(by_type["shape"]) == len(objects)
        else:
            assert row["question_type"] == "exists"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 1), (2, 1), "above"),
        ((2, 0), (0, 0), "below"),
        ((1, 0), (1, 2), "to the left of"),
        ((1, 2), (1, 1), "to the right of"),
        ((0, 0), (1, 1), "above"),  # diagonal: the vertical relation is named
    ],
)
def test_relation(a, b, expected):
    obj = lambda rc: {"row": rc[0], "col": rc[1]}  # noqa: E731
    assert shapes.relation(obj(a), obj(b)) == expected
