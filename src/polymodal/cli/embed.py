"""``polymodal embed``: batch-embed a manifest's text, images, audio or video into a .npy file."""

from __future__ import annotations

from pathlib import Path

import typer

from polymodal.cli.common import (
    check_model_name,
    console,
    progress_updates,
    remote_code,
    revision_option,
    trust_option,
    user_errors,
)


def embed_command(
    model: str = typer.Argument(..., help="Preset name, save_pretrained folder, HF folder or run dir."),
    data: Path = typer.Option(
        ..., "--data",
        help="Manifest (JSONL/CSV), class-folder tree, a flat folder of image/audio/video files, or a .txt file "
             "(one sentence per line).",
    ),
    modality: str = typer.Option("text", "--modality", "-m", help="text, image, audio or video."),
    out: Path = typer.Option(..., "--out", help="Output .npy file (ids are written beside it as .ids.txt)."),
    split: str | None = typer.Option(None, "--split", help="Only rows of this split (manifests only)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Items per forward pass."),
    root: Path | None = typer.Option(
        None, "--root", help="Data root a manifest's paths must stay inside (default: its folder; / allows absolute paths)."
    ),
    trust_remote_code: bool = trust_option(),
    revision: str | None = revision_option(),
) -> None:
    """Embed every item of one modality; rows are sorted by length to cut padding."""
    from polymodal.embed import embed_to_file

    check_model_name(model)
    with user_errors(), remote_code(trust_remote_code, revision), progress_updates("embedding") as update:
        total = done = 0

        def on_total(n: int) -> None:
            nonlocal total
            total = n
            update(modality, 0, n)  # the pass starts now: its rate and ETA leave model loading out

        def on_progress(n: int) -> None:
            nonlocal done
            done += n
            update(modality, done, total)

        path, rows, dim = embed_to_file(
            model, data, modality, out, split=split, batch_size=batch_size, on_total=on_total, on_progress=on_progress,
            root=root,
        )
    console.print(f"wrote {rows} x {dim} embeddings to {path}")


def register(app: typer.Typer) -> None:
    app.command("embed")(embed_command)
