"""What a task returns: metrics with intervals, JSON details, and per-sample statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polymodal.metrics import DEFAULT_BOOTSTRAP, LOWER_IS_BETTER, Metric, Statistic, bootstrap_metric


@dataclass
class SampleStatistic:
    """A metric recomputable on any resample of its samples (kept for paired comparisons)."""

    ids: list[str]
    statistic: Statistic


@dataclass
class TaskResult:
    """Metrics (each with a bootstrap 95% interval) plus task-specific JSON ``details``.

    ``statistics`` are not serialised: they let :func:`polymodal.tasks.compare` run a paired
    bootstrap between two models evaluated on the same samples.
    """

    task: str
    metrics: dict[str, Metric]
    details: dict[str, Any] = field(default_factory=dict)
    statistics: dict[str, SampleStatistic] = field(default_factory=dict, repr=False)
    model: str = ""
    data: str = ""
    split: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "data": self.data,
            "split": self.split,
            "metrics": {k: m.to_json() for k, m in self.metrics.items()},
            "details": _jsonable(self.details),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskResult:
        return cls(
            task=str(data["task"]),
            metrics={k: Metric.from_json(v) for k, v in data.get("metrics", {}).items()},
            details=dict(data.get("details", {})),
            model=str(data.get("model", "")),
            data=str(data.get("data", "")),
            split=str(data.get("split", "")),
        )


def metrics_with_intervals(
    stats: dict[str, Statistic],
    ids: list[str],
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    prefix: str = "",
) -> tuple[dict[str, Metric], dict[str, SampleStatistic]]:
    """Bootstrap every statistic over the same samples; names get ``prefix``."""
    metrics: dict[str, Metric] = {}
    kept: dict[str, SampleStatistic] = {}
    for name, stat in stats.items():
        full = f"{prefix}{name}"
        metrics[full] = bootstrap_metric(
            stat, len(ids), n_boot=n_boot, seed=seed, higher_is_better=name not in LOWER_IS_BETTER
        )
        kept[full] = SampleStatistic(ids=list(ids), statistic=stat)
    return metrics, kept


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
