"""Helpers shared by CLI modules: consistent error output and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

# soft_wrap: a message sent to a log file keeps its paths whole (rich would otherwise break
# lines at 80 columns when the output is not a terminal); tables still fit the width
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line (or few-line) error without a traceback and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def user_errors(*kinds: type[BaseException], code: int = 2) -> Iterator[None]:
    """Turn the library's expected errors into a clean message and exit code."""
    from polymodal.errors import PolymodalError

    catch: tuple[type[BaseException], ...] = kinds or (PolymodalError,)
    try:
        yield
    except catch as exc:
        fail(str(exc), code)


def is_tty() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress_updates(verb: str) -> Iterator[Callable[[str, int, int], None]]:
    """Yield ``update(name, done, total)`` for long work (``verb`` = "encoding", "embedding").

    On a terminal: a rich bar per name (count, elapsed, ETA), gone when done. Otherwise (a log
    file, CI): plain lines from :class:`polymodal.progress.PlainProgress`, at most one per
    ``PLAIN_EVERY`` seconds per name plus a last one. A ``done`` not above the previous one
    starts a new pass over that name (a second dataset of the same modality).
    """
    from polymodal.progress import PlainProgress, on_terminal

    if not on_terminal(err_console.file):
        plain: dict[str, PlainProgress] = {}

        def write(name: str, done: int, total: int) -> None:
            line = plain.get(name)
            if line is None or done <= line.completed:
                if line is not None and line.completed < (line.total or 0):
                    line.finish()
                line = plain[name] = PlainProgress(f"{verb} {name}", total, stream=err_console.file)
            line.update(done, total, force=done >= total)

        yield write
        return

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bars: dict[str, TaskID] = {}
    last: dict[str, int] = {}
    with Progress(
        TextColumn(f"{verb} {{task.description}}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(),
        console=err_console, transient=True,
    ) as progress:

        def update(name: str, done: int, total: int) -> None:
            if name not in bars or done <= last[name]:  # a new pass over this name
                bars[name] = progress.add_task(name, total=total)
            last[name] = done
            progress.update(bars[name], completed=done, total=total)

        yield update
