"""``polymodal tasks``, ``polymodal eval`` and ``polymodal compare``: thin shells over polymodal.tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from polymodal.cli.common import (
    check_model_name,
    column_option,
    column_pairs,
    console,
    progress_updates,
    remote_code,
    revision_option,
    trust_option,
    user_errors,
)

ROOT_HELP = "Data root the manifest's paths must stay inside (default: its folder; / allows absolute paths)."


def _with_root(data: Path, root: Path | None) -> object:
    """The manifest path, or the manifest read against ``--root``."""
    if root is None:
        return data
    from polymodal.data.sources import load_manifest

    return load_manifest(data, root)


def _refresh_run_report(model: str, result: Path) -> Path | None:
    """Rewrite a run's report.html when the result just went into that run (``RUN/eval/``)."""
    from polymodal.report import run_dir_of, write_run_report

    run = run_dir_of(model)
    if run is None or not result.resolve().is_relative_to(run.resolve()):
        return None
    return write_run_report(run)


SHOTS_HELP = "few-shot: labelled items per class (repeatable: --shots 1 --shots 5; default 1, 5 and 10)."
DRAWS_HELP = "few-shot: seeded draws of the support set per K (the interval is over draws)."


def _few_shot_opts(tasks: list[str], shots: list[int] | None, draws: int | None) -> dict[str, object]:
    """--shots / --draws as the few-shot task's options; refused when no few-shot task runs."""
    opts: dict[str, object] = {}
    if shots:
        opts["shots"] = list(shots)
    if draws is not None:
        opts["draws"] = draws
    if opts and "few-shot" not in tasks:
        from polymodal.errors import PolymodalError

        raise PolymodalError("--shots and --draws apply to --task few-shot only")
    return opts


LANG_HELP = ("Language: en or zh. Zero-shot / few-shot class prompts (Chinese templates and class names); "
             "retrieval's captions (zh reads the text_zh column).")
PROMPT_TASKS = ("zeroshot-classification", "few-shot", "retrieval")


def _lang_opts(tasks: list[str], lang: str | None) -> dict[str, dict[str, object]]:
    """--lang as the options of the tasks that read a language; refused when none of them runs."""
    if lang is None:
        return {}
    chosen = [t for t in tasks if t in PROMPT_TASKS]
    if not chosen:
        from polymodal.errors import PolymodalError

        raise PolymodalError(f"--lang applies to --task {' or '.join(PROMPT_TASKS)} only")
    return {t: {"lang": lang} for t in chosen}


def _print_metrics(result: object) -> None:
    from rich.table import Table

    table = Table(title=f"{result.model} · {result.task} · {result.data} [{result.split}]")  # type: ignore[attr-defined]
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    for name, m in result.metrics.items():  # type: ignore[attr-defined]
        table.add_row(name, f"{m.value:.4f}", f"[{m.low:.4f}, {m.high:.4f}]")
    console.print(table)


def decoder_option() -> Any:
    return typer.Option("greedy", "--decoder", help="asr task: CTC decoding, greedy or beam.")


def beam_option() -> Any:
    return typer.Option(8, "--beam-width", min=1, help="asr task: beam width of --decoder beam.")


def _asr_options(tasks: list[str], decoder: str, beam_width: int) -> dict[str, Any]:
    """The asr task's decoding options, given only when every task is asr (the others take none)."""
    if not tasks or any(t != "asr" for t in tasks):
        return {}
    return {"decoder": decoder, "beam_width": beam_width}


def judge_option() -> Any:
    return typer.Option(None, "--judge", help="text-to-image task: the shapes attribute classifier's folder "
                                              "(python -m polymodal.tasks.shapes_judge MANIFEST OUT).")


def score_model_option() -> Any:
    return typer.Option(None, "--score-model", help="text-to-image task: an aligned dual model scoring "
                                                    "image-prompt cosine (e.g. the quickstart's model/).")


def t2i_limit_option() -> Any:
    return typer.Option(None, "--limit", min=1, help="text-to-image task: at most this many prompts per group "
                                                     "(single-object, with a relation).")


def sample_steps_option() -> Any:
    return typer.Option(None, "--sample-steps", min=1, help="text-to-image task: DDIM steps per image "
                                                            "(default: the model's sample_steps).")


def _t2i_options(judge: Path | None, score_model: Path | None, limit: int | None,
                 steps: int | None = None) -> dict[str, Any]:
    """The text-to-image task's options (given to that task only)."""
    opts: dict[str, Any] = {"judge": judge} if judge else {}
    if steps:
        opts["steps"] = steps
    if score_model:
        opts["score_model"] = score_model
    if limit:
        opts["limit"] = limit
    return opts


def register(app: typer.Typer) -> None:
    @app.command("tasks")
    def tasks_cmd() -> None:
        """List the registered evaluation tasks and the metrics each reports."""
        from rich.table import Table

        from polymodal.tasks import list_tasks

        table = Table(title="polymodal tasks")
        table.add_column("task")
        table.add_column("metrics")
        table.add_column("what it does")
        for t in list_tasks():
            table.add_row(t.name, ", ".join(t.metrics), t.description)
        console.print(table)

    @app.command("eval")
    def eval_cmd(
        model: str = typer.Argument(..., help="Preset name, save_pretrained folder, run directory, HF folder or hub name."),
        task: str = typer.Option(..., "--task", "-t", help="Task name (see `polymodal tasks`)."),
        data: Path = typer.Option(..., "--data", "-d", help="Manifest (JSONL/CSV) or class-folder tree."),
        split: str = typer.Option("test", "--split", help="Split to evaluate."),
        as_json: bool = typer.Option(False, "--json", help="Print the metrics object as JSON."),
        out: Path | None = typer.Option(None, "--out", help="Where to write the result JSON (default: beside the model)."),
        template: list[str] | None = typer.Option(None, "--template", help="Zero-shot prompt template (repeatable), e.g. 'a photo of a {}.'"),
        label_column: str | None = typer.Option(
            None, "--label-column",
            help="Label column (default: the column of the model's only head, else 'label').",
        ),
        bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95% intervals."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the embedding cache."),
        root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
        column: list[str] = column_option(),
        shots: list[int] | None = typer.Option(None, "--shots", min=1, help=SHOTS_HELP),
        draws: int | None = typer.Option(None, "--draws", min=1, help=DRAWS_HELP),
        lang: str | None = typer.Option(None, "--lang", help=LANG_HELP),
        trust_remote_code: bool = trust_option(),
        revision: str | None = revision_option(),
        decoder: str = decoder_option(),
        beam_width: int = beam_option(),
        judge: Path | None = judge_option(),
        score_model: Path | None = score_model_option(),
        limit: int | None = t2i_limit_option(),
        sample_steps: int | None = sample_steps_option(),
    ) -> None:
        """Evaluate one model on one task; the result JSON is written beside the model."""
        from polymodal.tasks import get_task
        from polymodal.tasks.evaluate import evaluate, result_path, write_result

        check_model_name(model)
        with user_errors(), remote_code(trust_remote_code, revision):
            opts = {**_few_shot_opts([task], shots, draws), **_lang_opts([task], lang).get(task, {})}
            if template:
                opts["templates"] = list(template)
            if task != "retrieval" and label_column is not None:
                opts["label_column"] = label_column
            opts.update(_asr_options([task], decoder, beam_width))
            if task == "text-to-image":
                opts.update(_t2i_options(judge, score_model, limit, sample_steps))
            get_task(task)
            with progress_updates("encoding") as progress:
                result = evaluate(model, task, _with_root(data, root), split, cache=not no_cache, bootstrap=bootstrap,
                                  columns=column_pairs(column), progress=progress, **opts)
            path = write_result(result, out or result_path(model, task, result.data, split))
            page = _refresh_run_report(model, path)
        if as_json:
            typer.echo(json.dumps(result.to_json()["metrics"], indent=2))
        else:
            _print_metrics(result)
            console.print(f"wrote {path}" + (f"; updated {page}" if page else ""))

    @app.command("compare")
    def compare_cmd(
        models: list[str] = typer.Argument(..., help="Two or more models (preset names, folders, run dirs)."),
        task: list[str] = typer.Option(..., "--task", "-t", help="Task (repeatable)."),
        data: list[Path] = typer.Option(..., "--data", "-d", help="Manifest: one for all tasks, or one per --task."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder for the leaderboard and report."),
        split: str = typer.Option("test", "--split"),
        bootstrap: int = typer.Option(1000, "--bootstrap", min=0),
        no_cache: bool = typer.Option(False, "--no-cache"),
        root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
        column: list[str] = column_option(),
        shots: list[int] | None = typer.Option(None, "--shots", min=1, help=SHOTS_HELP),
        draws: int | None = typer.Option(None, "--draws", min=1, help=DRAWS_HELP),
        lang: str | None = typer.Option(None, "--lang", help=LANG_HELP),
        trust_remote_code: bool = trust_option(),
        revision: str | None = revision_option(),
        decoder: str = decoder_option(),
        beam_width: int = beam_option(),
        judge: Path | None = judge_option(),
        score_model: Path | None = score_model_option(),
        limit: int | None = t2i_limit_option(),
        sample_steps: int | None = sample_steps_option(),
    ) -> None:
        """Every model on every task -> leaderboard.{md,csv,json,html} and report.html in --out."""
        from polymodal.tasks import compare

        for name in models:
            check_model_name(name)
        with user_errors(), remote_code(trust_remote_code, revision), progress_updates("encoding") as progress:
            per_task = _lang_opts(list(task), lang)
            few = _few_shot_opts(list(task), shots, draws)
            if few:
                per_task["few-shot"] = {**per_task.get("few-shot", {}), **few}
            if "asr" in task:
                per_task["asr"] = {**per_task.get("asr", {}), **_asr_options(["asr"], decoder, beam_width)}
            if "text-to-image" in task:
                per_task["text-to-image"] = _t2i_options(judge, score_model, limit, sample_steps)
            board = compare(
                list(models), list(task), [_with_root(d, root) for d in data], out, split=split, bootstrap=bootstrap, cache=not no_cache,
                columns=column_pairs(column), progress=progress, task_opts=per_task or None,
            )
        typer.echo(board.to_markdown())  # plain text: rich would read "[...]" intervals as markup
        console.print(f"wrote {out}/leaderboard.md, leaderboard.csv, leaderboard.json, leaderboard.html, report.html")
