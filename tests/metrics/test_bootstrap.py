"""Bootstrap intervals and paired bootstrap p-values."""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.metrics import Metric, bootstrap_metric, paired_bootstrap


def _mean_of(values: np.ndarray):
    return lambda idx: float(values[idx].mean())


def test_interval_brackets_value_and_matches_normal_approximation() -> None:
    rng = np.random.default_rng(0)
    correct = (rng.random(2000) < 0.7).astype(float)
    m = bootstrap_metric(_mean_of(correct), len(correct), n_boot=1000, seed=1)
    assert m.low < m.value < m.high
    p = correct.mean()
    half = 1.96 * np.sqrt(p * (1 - p) / len(correct))
    assert (m.high - m.low) / 2 == pytest.approx(half, rel=0.15)


def test_interval_shrinks_with_more_samples_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    small = (rng.random(50) < 0.5).astype(float)
    large = (rng.random(5000) < 0.5).astype(float)
    ms = bootstrap_metric(_mean_of(small), 50, n_boot=500)
    ml = bootstrap_metric(_mean_of(large), 5000, n_boot=500)
    assert (ml.high - ml.low) < (ms.high - ms.low) / 4
    assert bootstrap_metric(_mean_of(small), 50, n_boot=200, seed=3) == bootstrap_metric(
        _mean_of(small), 50, n_boot=200, seed=3
    )


def test_constant_statistic_collapses_and_no_bootstrap_gives_point() -> None:
    ones = np.ones(30)
    m = bootstrap_metric(_mean_of(ones), 30, n_boot=100)
    assert (m.value, m.low, m.high) == (1.0, 1.0, 1.0)
    m0 = bootstrap_metric(_mean_of(np.arange(5.0)), 5, n_boot=0)
    assert m0.low == m0.high == m0.value == 2.0
    assert Metric.from_json(m.to_json()) == m


def test_paired_identical_models_p_is_one() -> None:
    v = (np.random.default_rng(0).random(100) < 0.6).astype(float)
    t = paired_bootstrap(_mean_of(v), _mean_of(v.copy()), 100, n_boot=300)
    assert t.diff == 0.0 and t.p_value == 1.0


def test_paired_clear_difference_is_significant_and_noise_is_not() -> None:
    rng = np.random.default_rng(0)
    a = (rng.random(400) < 0.8).astype(float)
    b = a.copy()
    flip = rng.choice(400, 120, replace=False)
    b[flip] = 0.0  # b is a with 120 answers broken -> clearly worse
    t = paired_bootstrap(_mean_of(a), _mean_of(b), 400, n_boot=1000)
    assert t.diff > 0 and t.low > 0 and t.p_value < 0.01
    # two models that differ only by swapping a few answers both ways
    c = a.copy()
    ones = np.flatnonzero(a == 1)[:5]
    zeros = np.flatnonzero(a == 0)[:5]
    c[ones], c[zeros] = 0.0, 1.0
    t2 = paired_bootstrap(_mean_of(a), _mean_of(c), 400, n_boot=1000)
    assert t2.diff == 0.0 and t2.p_value > 0.5
