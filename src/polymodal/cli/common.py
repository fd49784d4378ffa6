"""Helpers shared by CLI modules: consistent error output and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, NoReturn

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


TRUST_HELP = ("Let the model's own Python code run (transformers' trust_remote_code). Only this flag allows "
              "it, never a file in a model folder; a hub model also needs --revision.")
REVISION_HELP = "With --trust-remote-code: the 40-hex commit of the hub model whose code you reviewed."


def trust_option() -> Any:
    return typer.Option(False, "--trust-remote-code", help=TRUST_HELP)


def revision_option() -> Any:
    return typer.Option(None, "--revision", help=REVISION_HELP)


def remote_code(trust: bool, revision: str | None) -> AbstractContextManager[Any]:
    """The caller's permission for the models a command loads (``polymodal.models.trust``)."""
    if revision and not trust:
        fail("--revision pins the code that --trust-remote-code allows; pass both, or neither")
    if not trust:
        return nullcontext()
    from polymodal.models.trust import allow_remote_code

    return allow_remote_code(True, revision)
