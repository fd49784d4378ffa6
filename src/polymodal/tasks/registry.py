"""Explicit task registry: a task exists because one visible ``register_task`` call added it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polymodal.errors import ModelError, PolymodalError
from polymodal.tasks.result import TaskResult

# run(model, data: EvalData, split, **opts) -> TaskResult
TaskRunner = Callable[..., TaskResult]


class TaskError(PolymodalError):
    """An unknown task, or a task that cannot run on this model or data."""


class TaskModelError(TaskError, ModelError):
    """A task whose needs the model does not meet (a ``ModelError`` too)."""


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    metrics: tuple[str, ...]
    run: TaskRunner
    # what the model must offer: "encode" (DualEncoder-like), "logits" (FusionModel-like),
    # "transcribe" (a CTC model or a speech recognition baseline) or "generate" (a model with a
    # text decoder: CaptioningModel) or "draw" (a model that generates images: TextToImageModel)
    needs: str = "encode"


_TASKS: dict[str, Task] = {}
_BUILTINS_ADDED = False


def register_task(task: Task, *, replace: bool = False) -> Task:
    """Add ``task`` under its name; a second task with the same name needs ``replace=True``."""
    if task.name in _TASKS and not replace:
        raise TaskError(f"a task named {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def unregister_task(name: str) -> None:
    _TASKS.pop(name, None)


def _add_builtins() -> None:
    # the built-in tasks, registered here by explicit calls (not as an import side effect)
    global _BUILTINS_ADDED
    if _BUILTINS_ADDED:
        return
    _BUILTINS_ADDED = True
    from polymodal.tasks.asr import ASR_TASK
    from polymodal.tasks.captioning import CAPTIONING_TASK
    from polymodal.tasks.classification import CLASSIFICATION_TASK
    from polymodal.tasks.few_shot import FEW_SHOT_TASK
    from polymodal.tasks.generative_vqa import GENERATIVE_VQA_TASK
    from polymodal.tasks.linear_probe import LINEAR_PROBE_TASK
    from polymodal.tasks.motion import MOTION_TASK
    from polymodal.tasks.retrieval import RETRIEVAL_TASK
    from polymodal.tasks.text_to_image import TEXT_TO_IMAGE_TASK
    from polymodal.tasks.zeroshot import ZEROSHOT_TASK

    for task in (ZEROSHOT_TASK, RETRIEVAL_TASK, LINEAR_PROBE_TASK, CLASSIFICATION_TASK, FEW_SHOT_TASK, ASR_TASK,
                 MOTION_TASK, CAPTIONING_TASK, GENERATIVE_VQA_TASK, TEXT_TO_IMAGE_TASK):
        if task.name not in _TASKS:
            register_task(task)


def list_tasks() -> list[Task]:
    _add_builtins()
    return [_TASKS[k] for k in sorted(_TASKS)]


def get_task(name: str) -> Task:
    _add_builtins()
    if name not in _TASKS:
        known = ", ".join(sorted(_TASKS))
        raise TaskError(f"unknown task {name!r}; registered tasks: {known}")
    return _TASKS[name]


def _has_head(model: Any) -> bool:
    heads = getattr(model, "heads", None)
    if heads is not None:
        return len(heads) > 0
    # duck-typed classifiers (forward -> logits, no ``heads``) are neither embedding models nor decoders
    return not callable(getattr(model, "encode", None)) and not _generates(model)


def _meets(task: Task, model: Any) -> bool:
    if task.needs == "logits":
        return _has_head(model)
    if task.needs == "encode":
        return callable(getattr(model, "encode", None))
    if task.needs == "transcribe":
        return callable(getattr(model, "transcribe", None))
    if task.needs == "generate":
        return _generates(model)
    if task.needs == "draw":
        return _draws(model)
    return True


def _generates(model: Any) -> bool:
    # a text decoder behind ``generate(images, prompts)``; torch modules have no ``generate`` of their own
    return (callable(getattr(model, "generate", None)) and "text" in (getattr(model, "towers", None) or {})
            and not _draws(model))


def _draws(model: Any) -> bool:
    # a text-to-image model's ``generate(prompts)`` returns images; its text tower reads, it does not write
    return callable(getattr(model, "generate", None)) and getattr(model, "generates", None) == "image"


def why_not(task: Task, model: Any) -> str | None:
    """Why ``task`` cannot run on ``model`` (None when it can, or when only running it can tell).

    Only a head is checked up front: an embedding model has none, and would otherwise fail
    deep inside the task. ``encode`` tasks stay duck-typed (a custom task may need less).
    """
    if task.needs == "logits" and not _has_head(model):
        return f"has no {task.name} head"
    if task.needs == "transcribe" and not callable(getattr(model, "transcribe", None)):
        return "cannot transcribe speech (no CTC head: train one with model.kind: ctc)"
    if task.needs == "generate" and not _generates(model):
        return "has no text decoder"
    if task.needs == "draw" and not _draws(model):
        return "does not generate images"
    return None


def tasks_for(model: Any) -> list[str]:
    """The registered tasks whose needs ``model`` meets."""
    return [t.name for t in list_tasks() if _meets(t, model)]


def check_fits(task: Task, model: Any, name: str | None = None) -> None:
    """Raise :class:`TaskModelError` naming the tasks that fit when ``task`` cannot run on ``model``."""
    reason = why_not(task, model)
    if reason is None:
        return
    label = f"{name} ({type(model).__name__})" if name else f"this model ({type(model).__name__})"
    fits = tasks_for(model)
    hint = f"; tasks that fit: {', '.join(fits)}" if fits else ""
    extra = {"logits": " (fine-tune a classifier to get one: `model.kind: classifier`, see examples/)",
             "generate": " (train one: `model.kind: captioner`, see examples/captioning.yaml)",
             "draw": " (train one: `model.kind: text-to-image`, see examples/text_to_image.yaml)"}.get(task.needs, "")
    raise TaskModelError(f"{label} {reason}, so the {task.name!r} task cannot run on it{hint}{extra}")


def run_task(name: str, model: Any, data: Any, split: str = "test", **opts: Any) -> TaskResult:
    """Run a registered task on a loaded model and an :class:`EvalData` (or manifest path)."""
    from polymodal.tasks.data import as_eval_data

    task = get_task(name)
    check_fits(task, model)
    result = task.run(model, as_eval_data(data), split, **opts)
    result.split = split
    return result
