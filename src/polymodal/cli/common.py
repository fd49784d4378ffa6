"""Helpers shared by CLI modules: consistent error output and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


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
