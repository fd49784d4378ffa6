"""The task registry: explicit registration, listing, duplicates, unknown names, a custom task end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from planted_models import write_manifest

from polymodal.tasks import Task, TaskError, TaskResult, evaluate, get_task, list_tasks, register_task
from polymodal.tasks.registry import unregister_task
from polymodal.tasks.result import metrics_with_intervals


def test_builtins_are_listed_with_metrics() -> None:
    names = [t.name for t in list_tasks()]
    assert {"zeroshot-classification", "retrieval", "linear-probe", "classification"} <= set(names)
    assert "acc@1" in get_task("zeroshot-classification").metrics


def test_unknown_and_duplicate_names() -> None:
    with pytest.raises(TaskError, match="unknown task 'nope'.*retrieval"):
        get_task("nope")
    with pytest.raises(TaskError, match="already registered"):
        register_task(get_task("retrieval"))


def test_custom_task_as_in_the_guide(tmp_path: Path) -> None:
    def run_rows_with_text(model: Any, data: Any, split: str = "test", *, n_boot: int = 1000, seed: int = 0, **_: Any) -> TaskResult:
        rows = data.split_rows(split)
        hits = np.array([bool(r.get("text")) for r in rows], dtype=float)
        ids = [r["id"] for r in rows]
        metrics, stats = metrics_with_intervals({"accuracy": lambda idx: float(hits[idx].mean())}, ids, n_boot=n_boot, seed=seed)
        return TaskResult("has-text", metrics, {"n": len(ids)}, stats, data=data.name, split=split)

    register_task(Task("has-text", "share of rows with a caption", ("accuracy",), run_rows_with_text))
    try:
        rows = [{"id": str(i), "split": "test", "text": "x" if i % 4 else ""} for i in range(8)]
        r = evaluate(object(), "has-text", write_manifest(tmp_path / "d", rows), bootstrap=50)
        assert r.metrics["accuracy"].value == pytest.approx(6 / 8)
        assert "has-text" in [t.name for t in list_tasks()]
    finally:
        unregister_task("has-text")
    assert "has-text" not in [t.name for t in list_tasks()]
