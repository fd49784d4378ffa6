"""``polymodal serve``: a model (and an index) behind HTTP, with the search page at /."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

from polymodal.cli.common import (
    check_model_name,
    err_console,
    fail,
    remote_code,
    revision_option,
    trust_option,
    user_errors,
)

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def serve_command(
    model: str = typer.Argument(..., help="Preset name, save_pretrained folder, HF folder or run dir."),
    index: Path | None = typer.Option(None, "--index", help="Index folder from `polymodal index build` (enables /search)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; the default takes only local connections."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: any free port)."),
    max_batch: int = typer.Option(32, "--max-batch", min=1, help="Most requests run in one model call."),
    batch_window_ms: float = typer.Option(5.0, "--batch-window-ms", min=0, help="How long a request waits for others to batch with."),
    max_queue: int = typer.Option(64, "--max-queue", min=1, help="Requests waiting per modality before 503 + Retry-After."),
    max_connections: int = typer.Option(128, "--max-connections", min=1,
                                        help="Connections and requests held at once; past it a new one gets 503 "
                                             "before it is read (bounds latency under overload)."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.001, help="Seconds per request before 504."),
    max_body_mb: float = typer.Option(8.0, "--max-body-mb", min=0.001, help="Largest request body (MiB) before 413."),
    max_pixels: int = typer.Option(16_000_000, "--max-pixels", min=1, help="Largest decoded image (pixels) before 413."),
    drain_seconds: int = typer.Option(30, "--drain-seconds", min=1, help="On SIGTERM/Ctrl-C: how long open requests may finish."),
    trust_remote_code: bool = trust_option(),
    revision: str | None = revision_option(),
) -> None:
    """Serve /embed, /classify, /search, /items, /healthz, /readyz, the search page at / and API docs at /docs."""
    try:
        import uvicorn

        from polymodal.serve.app import create_app
    except ModuleNotFoundError as exc:
        fail(f"serving needs the serve extra ({exc.name} is missing): pip install 'polymodal[serve]'")
    import polymodal
    from polymodal.serve.limits import Limits, server_config

    check_model_name(model)
    if host not in LOOPBACK:
        err_console.print(f"[yellow]warning:[/] binding {host}: the server takes connections from other machines "
                          "and has no authentication", highlight=False)
    limits = Limits(max_body_bytes=int(max_body_mb * 1024 * 1024), max_pixels=max_pixels, max_batch=max_batch,
                    batch_window_ms=batch_window_ms, max_queue=max_queue, timeout_s=timeout,
                    max_connections=max_connections)
    with user_errors(), remote_code(trust_remote_code, revision):
        idx = None
        if index is not None:
            from polymodal.index import open_index

            idx = open_index(index)
        loaded = polymodal.load(model)
        try:
            app = create_app(loaded, index=idx, limits=limits, model_name=model)
        except ValueError as exc:
            fail(str(exc))
    err_console.print(f"serving {model}{f' with {index} ({len(idx)} items)' if idx is not None else ''} "
                      f"on http://{host}:{port}/ (Ctrl-C to stop)", highlight=False)
    # uvicorn drains open requests on SIGTERM / Ctrl-C, then raises the signal again: it is
    # handled here so a drained server exits 0 instead of dying of the signal (or a traceback)
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        uvicorn.Server(server_config(app, host=host, port=port, limits=limits,
                                     drain_seconds=drain_seconds)).run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    err_console.print("stopped", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
