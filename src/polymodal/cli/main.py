"""The ``polymodal`` command: a thin shell over the library.

Each command group lives in its own module under ``polymodal.cli`` and exposes
``register(app)``; this file only wires them together.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import typer

from polymodal import __version__

app = typer.Typer(
    name="polymodal",
    help="Align, fine-tune, evaluate and compare multimodal models — offline-first on a CPU.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# explicit, ordered list of command modules (no import-time magic)
COMMAND_MODULES = ("data", "models", "train", "evaluate", "predict", "quickstart", "embed", "index", "serve",
                   "compress", "export", "generate")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"polymodal {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """polymodal command line."""
    from polymodal.runtime.cpu import configure_threads

    # torch counts the host's cores; a container's quota or a taskset mask may allow fewer
    configure_threads()


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"polymodal.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"polymodal.cli.{_name}":
            raise
        continue
    _module.register(app)


_VERSION_PARAM = "polymodal_version"


def _with_version(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command callback so it also takes ``--version`` (typer puts it on the root only).

    Done through the callback's signature, which every typer release reads, rather than
    through click internals, which recent typer releases vendor and reshape.
    """
    sig = inspect.signature(fn)
    if _VERSION_PARAM in sig.parameters:
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop(_VERSION_PARAM, None)
        return fn(*args, **kwargs)

    option = inspect.Parameter(
        _VERSION_PARAM,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
        annotation=bool,
    )
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    wrapper.__signature__ = sig.replace(parameters=[*params, option])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**getattr(fn, "__annotations__", {}), _VERSION_PARAM: bool}
    return wrapper


def _group_callback() -> None:
    """Commands of this group."""


def _add_version_everywhere(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.callback is not None:
            info.callback = _with_version(info.callback)
    for group in typer_app.registered_groups:
        sub = group.typer_instance
        if sub is None:
            continue
        if sub.registered_callback is None:
            sub.callback()(_group_callback)
        cb = sub.registered_callback
        if cb is not None and cb.callback is not None:
            cb.callback = _with_version(cb.callback)
        _add_version_everywhere(sub)


_add_version_everywhere(app)


def build_cli() -> Any:
    """The click command behind ``polymodal`` (for tests and embedding)."""
    return typer.main.get_command(app)


def main() -> None:
    app(prog_name="polymodal")


if __name__ == "__main__":
    main()
