"""``polymodal embed``: batch-embed a manifest's text, images, audio or video into a .npy file."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from polymodal.cli.common import console, remote_code, revision_option, trust_option, user_errors


def embed_command(
    model: str = typer.Argument(..., help="Preset name, save_pretrained folder, HF folder or run dir."),
    data: Path = typer.Option(..., "--data", help="Manifest (JSONL/CSV/class folder) or a .txt file, one sentence per line."),
    modality: str = typer.Option("text", "--modality", "-m", help="text, image, audio or video."),
    out: Path = typer.Option(..., "--out", help="Output .npy file (ids are written beside it as .ids.txt)."),
    split: str | None = typer.Option(None, "--split", help="Only rows of this split (manifests only)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Items per forward pass."),
    trust_remote_code: bool = trust_option(),
    revision: str | None = revision_option(),
) -> None:
    """Embed every item of one modality; rows are sorted by length to cut padding."""
    from polymodal.embed import embed_to_file

    with user_errors(), remote_code(trust_remote_code, revision), Progress(
        TextColumn("embedding"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("embed", total=None)
        path, rows, dim = embed_to_file(
            model,
            data,
            modality,
            out,
            split=split,
            batch_size=batch_size,
            on_total=lambda n: progress.update(task, total=n),
            on_progress=lambda n: progress.advance(task, n),
        )
    console.print(f"wrote {rows} x {dim} embeddings to {path}")


def register(app: typer.Typer) -> None:
    app.command("embed")(embed_command)
