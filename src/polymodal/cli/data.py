"""``polymodal data``: make built-in datasets, validate manifests, show their statistics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from polymodal.cli.common import column_option, column_pairs, console, err_console, is_tty, user_errors

data_app = typer.Typer(help="Make, validate and inspect datasets.", no_args_is_help=True)


@data_app.command("make")
def make(
    name: str = typer.Argument(
        ..., help="Built-in dataset: shapes, fashion-mnist, digits, spoken-words, ..."
    ),
    out: Path = typer.Option(..., "--out", help="Folder to write the files and manifest.jsonl into."),
    n: int | None = typer.Option(None, "--n", help="Number of rows (default: the dataset's own)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same files."),
) -> None:
    """Write a built-in dataset as files plus OUT/manifest.jsonl."""
    with user_errors():
        from polymodal.data.builtin import make_dataset

        manifest = make_dataset(name, out, n=n, seed=seed)
    console.print(f"wrote {manifest}", highlight=False)


def _progress_validate(manifest: Any, label_sets: dict[str, list[str]] | None, options: Any) -> Any:
    from polymodal.data.validate import validate_rows

    if not is_tty() or len(manifest.rows) < 500:
        return validate_rows(manifest, label_sets=label_sets, options=options)
    from rich.progress import Progress

    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("decoding files", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return validate_rows(manifest, label_sets=label_sets, options=options, progress=advance)



@data_app.command("prompt-view")
def prompt_view(
    manifest_path: Path = typer.Argument(..., metavar="MANIFEST", help="A .jsonl manifest."),
    prompt: str = typer.Option("question", "--prompt", help="Column holding the prompt (a question)."),
    target: str = typer.Option("answer", "--target", help="Column holding what the decoder should say."),
    column: str = typer.Option("qa", "--column", help="Name of the joined column."),
    also: str | None = typer.Option(None, "--also", help="Also keep each row as a plain text from this column "
                                    "(e.g. text: captions and questions train one decoder together)."),
) -> None:
    """Write MANIFEST-<column>.jsonl beside it with "<prompt> [SEP] <target>" (generative VQA training)."""
    with user_errors():
        from polymodal.data.views import prompt_target_view

        out = prompt_target_view(manifest_path, prompt, target, column, also=also)
    console.print(f"wrote {out}", highlight=False)


@data_app.command("validate")
def validate(
    manifest_path: str = typer.Argument(
        ..., metavar="MANIFEST", help="A .jsonl/.csv manifest or a class-folder root."
    ),
    root: Path | None = typer.Option(
        None, "--root", help="Data root paths must stay inside (default: the manifest's folder)."
    ),
    labels: Path | None = typer.Option(
        None,
        "--labels",
        help='JSON {"column": [names]} of allowed labels (default: labels.json beside the manifest).',
    ),
    column: list[str] = column_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check every row. Exit 0 when all are valid, 1 when any is not, 2 when the manifest is unreadable
    or a column is missing everywhere (the message names the columns found and the --column that maps one)."""
    from polymodal.config import DataConfig
    from polymodal.data.sources import load_manifest
    from polymodal.data.validate import find_label_sets, load_label_sets

    with user_errors():
        options = DataConfig(columns=column_pairs(column))
        manifest = load_manifest(manifest_path, root)
        label_sets = load_label_sets(labels) if labels else find_label_sets(manifest)
        report = _progress_validate(manifest, label_sets, options)
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=True))
    else:
        # plain echo, not rich: one line per bad row, never wrapped at the terminal width
        typer.echo(report.summary())
        for issue in report.invalid:
            # backslashreplace keeps invalid UTF-8 (lone surrogates) printable
            typer.echo(issue.line().encode("utf-8", "backslashreplace").decode("utf-8"))
    raise typer.Exit(0 if report.ok else 1)


@data_app.command("stats")
def stats(
    manifest_path: str = typer.Argument(
        ..., metavar="MANIFEST", help="A .jsonl/.csv manifest or a class-folder root."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Counts per split, label and modality (no decoding)."""
    from rich.table import Table

    from polymodal.data.sources import load_manifest, manifest_stats

    with user_errors():
        counts = manifest_stats(load_manifest(manifest_path))
    if as_json:
        typer.echo(json.dumps(counts, ensure_ascii=True))
        return
    console.print(f"{counts['rows']} rows", highlight=False)
    groups = [("split", counts["splits"]), ("modality", counts["modalities"])]
    groups += [(f"label: {col}", values) for col, values in counts["labels"].items()]
    for title, values in groups:
        table = Table(title=title, title_justify="left")
        table.add_column("value")
        table.add_column("rows", justify="right")
        for key, count in values.items():
            table.add_row(str(key).encode("utf-8", "backslashreplace").decode("utf-8"), str(count))
        console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
