"""The ``polymodal`` command: a thin shell over the library.

Each command group lives in its own module under ``polymodal.cli`` and exposes
``register(app)``; this file only wires them together.
"""

from __future__ import annotations

import importlib

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
COMMAND_MODULES = ("data", "models", "train", "evaluate", "quickstart", "embed")


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


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"polymodal.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"polymodal.cli.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
