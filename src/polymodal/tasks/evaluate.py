"""Public entry points: ``evaluate`` one model on one task, ``compare`` many into a leaderboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from polymodal.errors import ModelError
from polymodal.tasks.cache import EmbeddingCache
from polymodal.tasks.data import as_eval_data
from polymodal.tasks.registry import check_fits, get_task
from polymodal.tasks.result import TaskResult


def load_model(model_or_path: Any) -> tuple[Any, str]:
    """(model, display name) from a loaded model, preset name, save_pretrained folder or run dir."""
    if not isinstance(model_or_path, str | Path):
        return model_or_path, str(getattr(model_or_path, "name", type(model_or_path).__name__))
    name = str(model_or_path)
    from polymodal.tasks.asr_baselines import is_baseline, load_baseline

    if is_baseline(name):  # a peer to compare against (pocketsphinx, Whisper), not a polymodal model
        return load_baseline(name), name
    try:
        # the model layer's loader (what polymodal.load is an alias of), imported on first use
        from polymodal.models.loading import load_model as load

        return load(name), name
    except ModuleNotFoundError as exc:  # the models layer (or a dependency of it) missing in this install
        raise ModelError(f"cannot load model {name!r}: {exc}") from None


def evaluate(
    model_or_path: Any,
    task: str,
    data: Any,
    split: str = "test",
    *,
    cache: EmbeddingCache | bool | None = True,
    bootstrap: int | None = None,
    columns: dict[str, str] | None = None,
    **opts: Any,
) -> TaskResult:
    """Run one registered task. ``cache=True`` uses the default on-disk embedding cache;
    ``bootstrap`` sets the number of resamples for the 95% intervals (0: none). ``columns``
    maps a key to the data column holding it (``{"label": "topic"}``); a trained model's own
    mapping (its run's ``data.columns``) applies where ``columns`` says nothing."""
    spec = get_task(task)
    model, name = load_model(model_or_path)
    check_fits(spec, model, name)
    if cache is True or cache is None:
        cache = EmbeddingCache()
    elif cache is False:
        cache = EmbeddingCache(enabled=False)
    if bootstrap is not None:
        opts["n_boot"] = bootstrap
    mapping = {**(getattr(model, "input_columns", None) or {}), **(columns or {})}
    result = spec.run(model, as_eval_data(data).with_columns(mapping), split, cache=cache, **opts)
    result.model = name
    result.split = split
    return result


def result_path(model_or_path: str, task: str, data_name: str, split: str) -> Path:
    """Where ``polymodal eval`` writes a result: ``<run>/eval/`` for run dirs and model folders,
    ``./polymodal-eval/<preset>/`` for preset names."""
    p = Path(model_or_path)
    fname = f"{task}-{data_name}-{split}.json"
    if p.is_dir():
        return p / "eval" / fname
    return Path("polymodal-eval") / p.name / fname


def write_result(result: TaskResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    return path
