"""``polymodal quickstart``: the main job on the embedded default, offline."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from polymodal.cli.common import console, user_errors


def quickstart_command(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", help="Folder for data, runs, metrics.json and report.html."),
    quick: bool = typer.Option(False, "--quick", help="A smaller run (about a minute) for CI and smoke tests."),
) -> None:
    """Make data, measure lite-dual, LiT-align it, measure again, fine-tune a fusion model, report."""
    from polymodal.quickstart import run_quickstart
    from polymodal.quickstart_report import report_rows, stage_rows, summary_rows

    def stage(name: str) -> None:
        console.rule(f"[bold]{name}")

    with user_errors():
        result, board, vqa = run_quickstart(out, quick=quick, log=console.print, stage=stage)
    table = Table(title=f"polymodal quickstart ({result.dataset}; value [95% CI])")
    for col in ("", "before", "after"):
        table.add_column(col)
    for row in summary_rows(result.dataset, board, vqa, result.heldout_classes):
        table.add_row(*row)
    console.print(table)
    report = Table(title="shapes VQA classification report (test)")
    for col in ("class", "precision", "recall", "f1", "support"):
        report.add_column(col)
    for row in report_rows(vqa.details.get("report") or {}):
        report.add_row(*row)
    console.print(report)
    times = Table(title="stage times")
    for col in ("stage", "what", "time", "share"):
        times.add_column(col)
    for row in stage_rows(result.seconds):
        times.add_row(*row)
    console.print(times)
    console.print(f"wrote {out / 'metrics.json'}, {out / 'report.html'} and the aligned model in {out / 'model'}")
    console.print(f"search its images in a browser: {result.serve_command}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart_command)
