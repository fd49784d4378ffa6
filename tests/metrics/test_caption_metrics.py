"""Caption metrics: shapes captions read back with the dataset's own vocabulary, BLEU-4 equal to
sacrebleu's corpus score, CIDEr from pycocoevalcap where Java runs."""

from __future__ import annotations

import random

import numpy as np
import pytest

from polymodal.data.builtin import shapes
from polymodal.metrics.captions import (
    bleu_statistic,
    cider_scores,
    corpus_bleu,
    java_available,
    read_caption,
    score_caption,
)


def test_every_wording_the_dataset_writes_reads_back_to_its_scene() -> None:
    held = shapes.heldout_combos(0)
    for i in range(300):
        rng = random.Random(i)
        objects = shapes.scene("test", held, rng)
        text = shapes.caption(objects, rng)
        said = read_caption(text)
        assert said.objects == tuple((o["color"], o["shape"]) for o in objects), text
        expected = shapes.relation(objects[0], objects[1]) if len(objects) > 1 else None
        assert said.relation == expected, text


def test_attribute_slots_count_colours_shapes_relation_and_hallucinations() -> None:
    truth = [("red", "circle"), ("blue", "square")]
    perfect = score_caption("a red circle above a blue square", truth, "above")
    assert (perfect.correct, perfect.total, perfect.exact) == (5, 5, True)
    wrong_colour = score_caption("a green circle above a blue square", truth, "above")
    assert (wrong_colour.correct, wrong_colour.total, wrong_colour.exact) == (4, 5, False)
    wrong_relation = score_caption("a red circle below a blue square", truth, "above")
    assert (wrong_relation.correct, wrong_relation.total) == (4, 5)
    assert (perfect.relation_right, wrong_relation.relation_right) == (True, False)
    assert score_caption("a red circle", [("red", "circle")], None).relation_right is None
    extra = score_caption("a red circle above a blue square, and a green star", truth, "above")
    assert (extra.correct, extra.total) == (5, 7)
    missing = score_caption("a red circle", truth, "above")
    assert (missing.correct, missing.total) == (2, 5)
    held = score_caption("a red circle above a blue square", truth, "above", frozenset({("blue", "square")}))
    assert (held.heldout_named, held.heldout_total) == (1, 1)
    held_wrong = score_caption("a red circle above a blue star", truth, "above", frozenset({("blue", "square")}))
    assert (held_wrong.heldout_named, held_wrong.heldout_total) == (0, 1)


def test_bleu_statistic_is_sacrebleus_corpus_bleu_on_any_subset() -> None:
    refs = [["a red circle above a blue square"], ["a green star", "a picture of a green star"],
            ["there is a yellow cross to the left of a purple triangle"], ["a blue circle on a plain background"]]
    hyps = ["a red circle above a blue square", "a green star", "a yellow cross to the left of a red star",
            "a blue square"]
    stat = bleu_statistic(hyps, refs)
    assert stat(np.arange(4)) == pytest.approx(corpus_bleu(hyps, refs))
    sub = np.array([2, 3, 3])
    assert stat(sub) == pytest.approx(corpus_bleu([hyps[i] for i in sub], [refs[i] for i in sub]))
    assert stat(np.array([0, 1])) == pytest.approx(100.0)
    assert 0 < stat(np.arange(4)) < 100


def test_cider_ranks_right_captions_above_wrong_ones_or_says_java_is_missing() -> None:
    refs = [["a red circle above a blue square"], ["a green star"], ["a yellow cross"], ["a purple triangle"]]
    scores = cider_scores(["a red circle above a blue square", "a green star", "a yellow cross", "a purple triangle"],
                          refs)
    if not java_available():
        assert scores is None
        pytest.skip("CIDEr needs Java for pycocoevalcap's tokenizer")
    assert scores is not None
    wrong = cider_scores(["a blue star", "a red square", "a green circle", "a yellow star"], refs)
    assert wrong is not None and scores.mean() > wrong.mean() + 1.0
