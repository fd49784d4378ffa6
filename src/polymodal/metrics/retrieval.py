"""Retrieval metrics as CLIP_benchmark defines them.

``positives`` is a boolean (queries, gallery) matrix: a query may have several positives
(an image with five captions). A query is a hit at ``k`` when ANY positive is among its top
``k`` gallery items, i.e. when the rank of its best-ranked positive is <= k. Ties are broken
against the query (a negative with the same score as the best positive ranks above it), so a
model that scores everything equally gets no credit. ``k`` larger than the gallery simply
means every query with a positive is a hit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polymodal.metrics.bootstrap import Statistic


def first_positive_rank(scores: Any, positives: Any) -> np.ndarray:
    """1-based rank of each query's best-scoring positive in its gallery ordering."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positives, dtype=bool)
    if s.ndim != 2 or s.shape != pos.shape:
        raise ValueError(f"scores and positives must both be (queries, gallery); got {s.shape}, {pos.shape}")
    has_pos = pos.any(axis=1)
    if not has_pos.all():
        missing = np.flatnonzero(~has_pos)[:5].tolist()
        raise ValueError(f"queries {missing} have no positive in the gallery")
    best_pos = np.where(pos, s, -np.inf).max(axis=1, keepdims=True)
    negatives_above = (~pos) & (s >= best_pos)
    return 1 + negatives_above.sum(axis=1)


def recall_at_k(scores: Any, positives: Any, k: int) -> float:
    """Fraction of queries with at least one positive in their top ``k``."""
    if k < 1:
        raise ValueError("k must be >= 1")
    return float(np.mean(first_positive_rank(scores, positives) <= k))


def mean_rank(scores: Any, positives: Any) -> float:
    return float(np.mean(first_positive_rank(scores, positives)))


def median_rank(scores: Any, positives: Any) -> float:
    return float(np.median(first_positive_rank(scores, positives)))


def retrieval_statistics(ranks: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, Statistic]:
    """Index statistics over per-query first-positive ranks: R@k, mean rank, median rank."""
    r = np.asarray(ranks, dtype=np.float64)
    stats: dict[str, Statistic] = {}
    for k in ks:
        hits = (r <= k).astype(np.float64)
        stats[f"R@{k}"] = lambda idx, h=hits: float(h[idx].mean())  # type: ignore[misc]
    stats["mean_rank"] = lambda idx: float(r[idx].mean())
    stats["median_rank"] = lambda idx: float(np.median(r[idx]))
    return stats


def top_k_indices(scores: Any, k: int) -> np.ndarray:
    """Indices of the ``k`` highest-scoring gallery items per query (stable on ties)."""
    s = np.asarray(scores, dtype=np.float64)
    k = min(k, s.shape[1])
    return np.argsort(-s, axis=1, kind="stable")[:, :k]
