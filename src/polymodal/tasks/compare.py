"""``compare``: every model on every (task, data) pair -> a leaderboard and a report.

``datas`` pairs with ``tasks`` one to one, or a single dataset serves every task. With
exactly two models, each column also gets a paired bootstrap of the difference, computed
on the very same samples (both results keep their per-sample statistics); with three or
more, each column's best model is tested against every other, Holm-corrected.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from polymodal.errors import DataError
from polymodal.metrics import DEFAULT_BOOTSTRAP, PairedTest, paired_bootstrap
from polymodal.report import Leaderboard, Report
from polymodal.report.leaderboard import BestTest
from polymodal.tasks.asr_baselines import BaselineUnavailable
from polymodal.tasks.cache import EmbeddingCache
from polymodal.tasks.data import as_eval_data
from polymodal.tasks.evaluate import evaluate, load_model
from polymodal.tasks.result import TaskResult


def _pairs(tasks: list[str], datas: list[Any]) -> list[tuple[str, Any]]:
    if not tasks or not datas:
        raise DataError("compare needs at least one task and one dataset")
    if len(datas) == 1:
        return [(t, datas[0]) for t in tasks]
    if len(datas) == len(tasks):
        return list(zip(tasks, datas, strict=True))
    raise DataError(f"give one dataset for all tasks or one per task (got {len(tasks)} tasks, {len(datas)} datasets)")


def _unique_names(models: list[Any]) -> list[str]:
    names: list[str] = []
    for i, m in enumerate(models):
        name = str(m) if isinstance(m, str | Path) else str(getattr(m, "name", f"model-{i + 1}"))
        names.append(name if name not in names else f"{name} ({i + 1})")
    return names


def column_name(result: TaskResult, metric: str, several_datasets: bool) -> str:
    prefix = f"{result.data} · " if several_datasets else ""
    return f"{prefix}{result.task}: {metric}"


def paired_tests(a: list[TaskResult], b: list[TaskResult], columns: dict[tuple[int, str], str], n_boot: int, seed: int) -> dict[str, PairedTest]:
    """Paired bootstrap per column where both results hold statistics over the same sample ids."""
    tests: dict[str, PairedTest] = {}
    for (i, metric), column in columns.items():
        sa = a[i].statistics.get(metric)
        sb = b[i].statistics.get(metric)
        if sa is None or sb is None or sa.ids != sb.ids:
            continue
        tests[column] = paired_bootstrap(sa.statistic, sb.statistic, len(sa.ids), n_boot=n_boot, seed=seed)
    return tests


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), in the input order.

    Sorted ascending, the i-th of m p-values (from 0) becomes ``(m - i) * p``, made
    non-decreasing along the sorted order and capped at 1.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _leader(cells: dict[str, dict[str, Any]], models: list[str], column: str) -> str | None:
    """The best model of ``column`` (the first of a tie)."""
    entries = [(m, cells[m][column]) for m in models if column in cells.get(m, {})]
    if not entries:
        return None
    sign = 1.0 if entries[0][1].higher_is_better else -1.0
    return max(entries, key=lambda e: sign * e[1].value)[0]


def tests_against_best(
    results: dict[str, list[TaskResult]], names: list[str], columns: dict[tuple[int, str], str],
    cells: dict[str, dict[str, Any]], n_boot: int, seed: int,
) -> dict[str, list[BestTest]]:
    """Per column: the best model against every other, paired on the same samples, with the
    p-values Holm-adjusted over that column's comparisons (the family is one metric's k - 1
    tests; the best is picked from the same data, which the correction does not undo)."""
    out: dict[str, list[BestTest]] = {}
    for key, column in columns.items():
        best = _leader(cells, names, column)
        if best is None:
            continue
        tests = []
        for other in names:
            if other == best:
                continue
            test = paired_tests(results[best], results[other], {key: column}, n_boot, seed).get(column)
            if test is not None:
                tests.append((other, test))
        adjusted = holm([t.p_value for _, t in tests])
        if tests:
            out[column] = [BestTest(best, other, t, p) for (other, t), p in zip(tests, adjusted, strict=True)]
    return out


def compare(
    models: list[Any],
    tasks: list[str],
    datas: list[Any],
    out_dir: str | Path | None = None,
    *,
    split: str = "test",
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    cache: EmbeddingCache | bool | None = True,
    title: str = "polymodal comparison",
    task_opts: dict[str, dict[str, Any]] | None = None,
    model_opts: list[dict[str, Any]] | None = None,
    names: list[str] | None = None,
    **opts: Any,
) -> Leaderboard:
    """Evaluate each model on each task; write leaderboard.{md,csv,json,html} and report.html to ``out_dir``.

    ``opts`` go to every task; ``task_opts[task]`` only to that one (``{"few-shot": {"shots": [5]}}``);
    ``model_opts[i]`` only to the i-th model's evaluations, so one model can be compared with itself
    under two settings (English vs Chinese prompts: ``[{"lang": "en"}, {"lang": "zh"}]``), named by ``names``."""
    pairs = [(t, as_eval_data(d)) for t, d in _pairs(list(tasks), list(datas))]
    if model_opts is not None and len(model_opts) != len(models):
        raise DataError(f"model_opts has {len(model_opts)} entries for {len(models)} models")
    if names is not None and (len(names) != len(models) or len(set(names)) != len(names)):
        raise DataError(f"names must give each of the {len(models)} models its own name, got {names}")
    names = list(names) if names is not None else _unique_names(list(models))
    loaded: dict[int, Any] = {}
    several = len({d.name for _, d in pairs}) > 1
    results: dict[str, list[TaskResult]] = {}
    for i, (name, spec) in enumerate(zip(names, models, strict=True)):
        # the same model object (or path) listed twice is loaded once
        key = id(spec) if not isinstance(spec, str | Path) else hash(str(spec))
        try:
            model = loaded[key] if key in loaded else load_model(spec)[0]
        except BaselineUnavailable as exc:  # an optional peer not installed here: the board goes on
            warnings.warn(f"skipping {name}: {exc}", stacklevel=2)
            continue
        loaded[key] = model
        results[name] = []
        for task, data in pairs:
            own = {**opts, **(task_opts or {}).get(task, {}), **(model_opts[i] if model_opts else {})}
            r = evaluate(model, task, data, split, cache=cache, bootstrap=bootstrap, seed=seed, **own)
            r.model = name
            results[name].append(r)

    names = [n for n in names if n in results]
    if not names:
        raise DataError("compare: none of the models could be loaded")
    columns: dict[tuple[int, str], str] = {}
    for i, r in enumerate(results[names[0]]):
        for metric in r.metrics:
            columns[(i, metric)] = column_name(r, metric, several)
    cells = {
        name: {col: results[name][i].metrics[m] for (i, m), col in columns.items() if m in results[name][i].metrics}
        for name in names
    }
    paired = paired_tests(results[names[0]], results[names[1]], columns, bootstrap, seed) if len(names) == 2 else {}
    versus = tests_against_best(results, names, columns, cells, bootstrap, seed) if len(names) > 2 else {}
    board = Leaderboard(models=names, columns=list(columns.values()), cells=cells, paired=paired, results=results,
                        versus_best=versus)
    if out_dir is not None:
        write_comparison(board, Path(out_dir), title)
    return board


def write_comparison(board: Leaderboard, out_dir: Path, title: str = "polymodal comparison") -> dict[str, Path]:
    paths = board.write(out_dir)
    page = Report(title).add_leaderboard(board)
    paths["html"] = page.write(out_dir / "leaderboard.html", save_figures=False)
    report = Report(title).add_leaderboard(board)
    for name in board.models:
        for result in board.results.get(name, []):
            report.add_result(result)
    paths["report"] = report.write(out_dir / "report.html")
    return paths
