"""Bootstrap confidence intervals and paired bootstrap tests over evaluation samples.

A metric is described by a *statistic*: a function from an array of sample indices to a
float (the metric computed on those samples). Resampling indices with replacement and
recomputing the statistic gives the percentile interval; applying the same resampled
indices to two models' statistics gives a paired test of their difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Statistic = Callable[[np.ndarray], float]

DEFAULT_BOOTSTRAP = 1000


@dataclass(frozen=True)
class Metric:
    """A metric value with its bootstrap 95% interval (``low``/``high`` equal ``value`` when
    no bootstrap was run). ``higher_is_better`` decides the "best" mark in a leaderboard."""

    value: float
    low: float
    high: float
    higher_is_better: bool = True
    n: int = 0

    def to_json(self) -> dict[str, float | int | bool]:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "higher_is_better": self.higher_is_better,
            "n": self.n,
        }

    @classmethod
    def from_json(cls, data: dict[str, float | int | bool]) -> Metric:
        return cls(
            value=float(data["value"]),
            low=float(data["low"]),
            high=float(data["high"]),
            higher_is_better=bool(data.get("higher_is_better", True)),
            n=int(data.get("n", 0)),
        )

    def format(self, digits: int = 3) -> str:
        # the interval is always shown: a collapsed [x, x] is information too
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class PairedTest:
    """Difference ``a - b`` on the same samples, its 95% interval and two-sided p-value."""

    diff: float
    low: float
    high: float
    p_value: float

    def to_json(self) -> dict[str, float]:
        return {"diff": self.diff, "low": self.low, "high": self.high, "p_value": self.p_value}


def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n))


def bootstrap_metric(
    statistic: Statistic,
    n: int,
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> Metric:
    """The statistic on all ``n`` samples plus a percentile bootstrap interval."""
    if n <= 0:
        raise ValueError("cannot compute a metric on zero samples")
    value = float(statistic(np.arange(n)))
    if n_boot <= 0:
        return Metric(value, value, value, higher_is_better, n)
    stats = np.array([statistic(idx) for idx in _resamples(n, n_boot, seed)], dtype=np.float64)
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return Metric(value, value, value, higher_is_better, n)
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return Metric(value, float(low), float(high), higher_is_better, n)


def paired_bootstrap(
    stat_a: Statistic,
    stat_b: Statistic,
    n: int,
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedTest:
    """Paired bootstrap of ``a - b``: both statistics see the same resampled indices.

    The two-sided p-value is twice the smaller tail of the bootstrap differences on either
    side of zero (with +1 smoothing so it is never exactly 0), capped at 1.
    """
    if n <= 0:
        raise ValueError("cannot compare models on zero samples")
    full = np.arange(n)
    diff = float(stat_a(full) - stat_b(full))
    if n_boot <= 0:
        return PairedTest(diff, diff, diff, 1.0)
    deltas = np.array([stat_a(idx) - stat_b(idx) for idx in _resamples(n, n_boot, seed)], dtype=np.float64)
    deltas = deltas[np.isfinite(deltas)]
    if deltas.size == 0:
        return PairedTest(diff, diff, diff, 1.0)
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    if np.all(deltas == 0):
        return PairedTest(diff, float(low), float(high), 1.0)
    below = (np.sum(deltas <= 0) + 1) / (deltas.size + 1)
    above = (np.sum(deltas >= 0) + 1) / (deltas.size + 1)
    p = min(1.0, 2.0 * min(below, above))
    return PairedTest(diff, float(low), float(high), float(p))
