"""Task library: zero-shot classification, retrieval, linear probe, classification.

Tasks are added by explicit :func:`register_task` calls; the built-in ones are
registered the first time the registry is read.
"""

from __future__ import annotations

from polymodal.tasks.cache import EmbeddingCache, data_hash, model_hash
from polymodal.tasks.compare import compare
from polymodal.tasks.data import EvalData
from polymodal.tasks.evaluate import evaluate
from polymodal.tasks.registry import Task, TaskError, get_task, list_tasks, register_task, run_task
from polymodal.tasks.result import SampleStatistic, TaskResult

__all__ = [
    "EmbeddingCache",
    "EvalData",
    "SampleStatistic",
    "Task",
    "TaskError",
    "TaskResult",
    "compare",
    "data_hash",
    "evaluate",
    "get_task",
    "list_tasks",
    "model_hash",
    "register_task",
    "run_task",
]
