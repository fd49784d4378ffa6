"""Retrieval metrics against hand-worked cases and a brute-force CLIP_benchmark-style reference."""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.metrics import (
    first_positive_rank,
    mean_rank,
    median_rank,
    recall_at_k,
    retrieval_statistics,
    top_k_indices,
)

# three queries over a gallery of four; worked out by hand below
SCORES = np.array(
    [
        [0.9, 0.1, 0.5, 0.3],  # positives {2, 3}: best positive 0.5, one negative (0.9) above -> rank 2
        [0.2, 0.2, 0.2, 0.2],  # positive {1}: all tied, ties go against the query -> rank 4
        [0.1, 0.8, 0.3, 0.0],  # positives {0, 1}: 0.8 is the top score -> rank 1
    ]
)
POS = np.array([[0, 0, 1, 1], [0, 1, 0, 0], [1, 1, 0, 0]], dtype=bool)


def test_ranks_by_hand() -> None:
    assert first_positive_rank(SCORES, POS).tolist() == [2, 4, 1]


def test_recall_at_k_by_hand_including_k_beyond_gallery() -> None:
    assert recall_at_k(SCORES, POS, 1) == pytest.approx(1 / 3)
    assert recall_at_k(SCORES, POS, 2) == pytest.approx(2 / 3)
    assert recall_at_k(SCORES, POS, 3) == pytest.approx(2 / 3)
    assert recall_at_k(SCORES, POS, 4) == pytest.approx(1.0)
    assert recall_at_k(SCORES, POS, 10) == pytest.approx(1.0)  # k > gallery size


def test_mean_and_median_rank_by_hand() -> None:
    assert mean_rank(SCORES, POS) == pytest.approx(7 / 3)
    assert median_rank(SCORES, POS) == pytest.approx(2.0)


def test_any_positive_counts_matches_topk_reference() -> None:
    # CLIP_benchmark: hit@k = any positive among the top-k indices (no ties in random floats)
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(40, 25))
    pos = rng.random((40, 25)) < 0.12
    pos[np.arange(40), rng.integers(0, 25, 40)] = True  # every query has a positive
    for k in (1, 3, 5, 10, 30):
        top = top_k_indices(scores, k)
        reference = np.mean([pos[q, top[q]].any() for q in range(40)])
        assert recall_at_k(scores, pos, k) == pytest.approx(reference)


def test_query_without_positive_is_an_error() -> None:
    with pytest.raises(ValueError, match="no positive"):
        first_positive_rank(np.zeros((2, 3)), np.array([[1, 0, 0], [0, 0, 0]], dtype=bool))


def test_statistics_match_point_metrics_on_resampled_indices() -> None:
    ranks = first_positive_rank(SCORES, POS)
    stats = retrieval_statistics(ranks, ks=(1, 5))
    idx = np.array([0, 0, 1])
    assert stats["R@1"](idx) == pytest.approx(0.0)
    assert stats["R@5"](idx) == pytest.approx(1.0)
    assert stats["mean_rank"](idx) == pytest.approx(8 / 3)
    assert stats["median_rank"](np.arange(3)) == pytest.approx(2.0)
