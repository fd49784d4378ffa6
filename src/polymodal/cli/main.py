"""The ``polymodal`` command: a thin shell over the library.

Each command group lives in its own module under ``polymodal.cli`` and exposes
``register(app)``; this file only wires them together.
"""

from __future__ import annotations

import importlib
import sys
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


def _print_version(ctx: Any, _param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        typer.echo(f"polymodal {__version__}")
        ctx.exit()


def _add_version_everywhere(command: Any) -> None:
    """Give every command and group its own ``--version`` (typer only puts it on the root).

    The click classes are taken from the command's own module: recent typer releases ship
    a private copy of click, older ones use click itself.
    """
    core = sys.modules[type(command).__module__]
    if not any("--version" in p.opts for p in command.params):
        command.params.append(
            core.Option(
                ["--version"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                callback=_print_version,
                help="Print the version and exit.",
            )
        )
    for sub in getattr(command, "commands", {}).values():
        _add_version_everywhere(sub)


def build_cli() -> Any:
    command = typer.main.get_command(app)
    _add_version_everywhere(command)
    return command


def main() -> None:
    build_cli()(prog_name="polymodal")


if __name__ == "__main__":
    main()
