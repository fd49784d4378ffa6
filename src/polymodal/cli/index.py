"""``polymodal index build|search|info``: a FAISS index over a collection, searched from the shell."""

from __future__ import annotations

import json
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

index_app = typer.Typer(help="Build a vector index over a collection and search it.", no_args_is_help=True)


@index_app.command("build")
def build_command(
    model: str = typer.Argument(..., help="Preset name, save_pretrained folder, HF folder or run dir."),
    data: Path = typer.Option(..., "--data", help="Manifest (JSONL/CSV), class-folder tree or a flat folder of images."),
    out: Path = typer.Option(..., "--out", help="Index folder to write (info.json, index.faiss, items.jsonl)."),
    modality: str | None = typer.Option(
        None, "--modality", "-m", help="What to embed: image (default when rows have images) or text (captions)."),
    kind: str = typer.Option(
        "auto", "--kind", help="auto (exact up to --exact-max items, HNSW above), flat, hnsw or ivf."),
    exact_max: int = typer.Option(100_000, "--exact-max", min=1, help="Largest collection searched exactly (auto)."),
    chunk_size: int = typer.Option(512, "--chunk-size", min=1, help="Items per resumable chunk."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Items per forward pass."),
    root: Path | None = typer.Option(None, "--root", help="Data root the media paths must stay inside (default: the manifest's folder)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an index (or an unfinished build of other inputs) at --out."),
    trust_remote_code: bool = trust_option(),
    revision: str | None = revision_option(),
) -> None:
    """Embed every item and write a FAISS index + item table. A killed build resumes where it stopped;
    under `accelerate launch --num_processes N` the chunks are shared out and merged."""
    from polymodal.index import build_index

    check_model_name(model)
    with user_errors(), remote_code(trust_remote_code, revision), progress_updates("indexing") as update:
        total = done = 0

        def on_total(n: int) -> None:
            nonlocal total
            total = n

        def on_progress(n: int) -> None:
            nonlocal done
            done += n
            update("items", done, total)

        result = build_index(model, data, out, modality=modality, root=root, kind=kind, exact_max=exact_max,
                             chunk_size=chunk_size, batch_size=batch_size, overwrite=overwrite,
                             on_total=on_total, on_progress=on_progress)
    if result is None:  # another process of a distributed build: rank 0 reports
        return
    resumed = f" ({result.resumed_chunks} chunks resumed)" if result.resumed_chunks else ""
    console.print(f"wrote index of {result.count} x {result.dim} to {result.path}: {result.kind} "
                  f"({result.reason}) in {result.seconds:.1f}s{resumed}", highlight=False)


@index_app.command("search")
def search_command(
    index: Path = typer.Argument(..., help="Index folder written by `polymodal index build`."),
    query: str = typer.Argument(..., help="Text to search for."),
    k: int = typer.Option(10, "--k", "-k", min=1, help="How many results."),
    model: str | None = typer.Option(None, "--model", help="Model for the query (default: the index's own)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """Search an index with a text query from the shell."""
    import polymodal
    from polymodal.index import open_index
    from polymodal.index.store import search_text

    with user_errors():
        idx = open_index(index)
        name = model or idx.model
        check_model_name(name)
        hits = search_text(polymodal.load(name), idx, query, k)
    if as_json:
        for h in hits:
            typer.echo(json.dumps({"id": h.id, "score": round(h.score, 6), "caption": h.caption, "label": h.label}))
        return
    from rich.table import Table

    table = Table("rank", "id", "score", "label", "caption")
    for rank, h in enumerate(hits, 1):
        table.add_row(str(rank), h.id, f"{h.score:.4f}", h.label or "", h.caption or "")
    console.print(table)


@index_app.command("info")
def info_command(index: Path = typer.Argument(..., help="Index folder.")) -> None:
    """Print an index's info.json (model, size, kind and why)."""
    from polymodal.index import open_index

    with user_errors():
        idx = open_index(index)
    typer.echo(json.dumps(idx.info, indent=1))


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
