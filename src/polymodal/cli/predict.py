"""``polymodal predict RUN --data MANIFEST_OR_FOLDER_OR_FILES [--out preds.csv]``: a thin shell over
``polymodal.predict.predict_to_csv``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from polymodal.cli.common import column_option, column_pairs, console, err_console, fail, user_errors

LOG_EVERY_S = 30.0  # progress lines when stderr is a log file, not a terminal



@contextmanager
def _progress() -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """(on_total, on_progress): a bar on a terminal; a plain line every LOG_EVERY_S seconds in a log."""
    if err_console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("predicting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err_console, transient=True) as bar:
            task = bar.add_task("predict", total=None)
            yield (lambda n: bar.update(task, total=n)), (lambda k: bar.advance(task, k))
        return
    state = {"total": 0, "done": 0, "start": time.monotonic(), "last": time.monotonic()}

    def on_total(n: int) -> None:
        state["total"] = n

    def on_progress(k: int) -> None:
        state["done"] += k
        now = time.monotonic()
        if now - state["last"] >= LOG_EVERY_S:
            state["last"] = now
            rate = state["done"] / max(now - state["start"], 1e-9)
            eta = (state["total"] - state["done"]) / rate if rate > 0 else float("nan")
            err_console.print(f"predict: {state['done']:,}/{state['total']:,} items, {rate:.1f} items/s, "
                              f"ETA {eta:.0f} s", highlight=False)

    yield on_total, on_progress


def predict_command(
    model: str = typer.Argument(..., metavar="RUN", help="Run dir, save_pretrained folder or preset: a model with heads "
                                          "(a classifier / fusion model)."),
    files: list[Path] | None = typer.Argument(None, show_default=False, metavar="FILES",
                                              help="More input files (so `--data *.png` works)."),
    data: list[str] = typer.Option(
        [], "--data", show_default=False, metavar="PATH",
        help="A manifest (JSONL/CSV), a class-folder tree, a folder of files, or files (repeat --data or use "
             "a shell glob); a .txt file holds one text per line for a text model."),
    out: Path | None = typer.Option(None, "--out", help="CSV to write (default: the CSV on stdout)."),
    split: str | None = typer.Option(None, "--split", help="Only rows of this split (manifests, class folders)."),
    column: list[str] = column_option(),
    root: Path | None = typer.Option(None, "--root", help="Folder manifest paths resolve in and must stay "
                                                           "inside (default: the manifest's folder)."),
    top_k: int | None = typer.Option(None, "--top-k", min=1,
                                     help="Columns for the k most likely classes instead of one per class "
                                          "(default: one per class up to 20 classes, else the top 5)."),
    threshold: float = typer.Option(0.5, "--threshold", min=0.0, max=1.0,
                                    help="Multi-label heads: classes at or above this probability are predicted."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Items per forward pass."),
) -> None:
    """Predict labels with a fine-tuned model: id, input, predicted label, probability, per-class probabilities."""
    from polymodal.predict import predict_to_csv

    sources = [*data, *(str(f) for f in files or [])]
    if not sources:
        fail("give the inputs with --data: a manifest, a class-folder tree, a folder of files or files")
    with user_errors(), _progress() as (on_total, on_progress):
        columns = column_pairs(column)
        summary = predict_to_csv(model, sources, out if out is not None else sys.stdout, split=split,
                                 columns=columns, root=root, top_k=top_k, threshold=threshold,
                                 batch_size=batch_size, on_total=on_total, on_progress=on_progress)
    if summary.path is not None:
        heads = ", ".join(summary.heads)
        console.print(f"wrote {summary.rows} predictions (head{'s' if len(summary.heads) > 1 else ''}: {heads}) "
                      f"to {summary.path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)
