"""Helpers shared by CLI modules: error and warning output, exit codes, model-name checks, progress."""

from __future__ import annotations

import difflib
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, NoReturn, TextIO

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


_PACKAGE = Path(__file__).resolve().parents[1]


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """polymodal's own warnings as one ``warning: ...`` line; others as Python prints them."""
    try:
        ours = Path(filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        ours = False
    if not ours:
        _python_show_warning(message, category, filename, lineno, file, line)
        return
    from rich.markup import escape

    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False)


_python_show_warning = warnings.showwarning


@contextmanager
def user_errors(*kinds: type[BaseException], code: int = 2) -> Iterator[None]:
    """Turn the library's expected errors into a clean message and exit code, and its
    warnings (a model.fallback notice, a slow precision) into one clean line each."""
    from polymodal.errors import PolymodalError

    catch: tuple[type[BaseException], ...] = kinds or (PolymodalError,)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            yield
        except catch as exc:
            fail(str(exc), code)


def _looks_local(name: str) -> bool:
    """A model argument meant as a folder here, not a Hub id (``org/name``: exactly one slash)."""
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") != 1:
        return True
    return Path(name.split("/")[0]).expanduser().is_dir()  # runs/typo, when runs/ is a folder here


def check_model_name(name: str) -> None:
    """Fail early, with a "did you mean", for a model argument that names no folder or preset.

    A mistyped run directory (``runs/my-rn``) used to be taken for a Hub id and answered with
    advice to ``hf download`` it. Hub ids (``org/name`` where ``org`` is not a folder here) are
    left to the loader, which says how to get them offline.
    """
    from polymodal.models.presets import is_preset, list_presets
    from polymodal.tasks.asr_baselines import is_baseline

    path = Path(name).expanduser()
    if path.exists() or is_preset(name) or is_baseline(name) or not _looks_local(name):
        return
    presets = [p.name for p in list_presets()]
    parent = path.parent
    siblings = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
    close = [str(Path(name).parent / s) if str(Path(name).parent) != "." else s
             for s in difflib.get_close_matches(path.name, siblings, n=3, cutoff=0.6)]
    close += [p for p in difflib.get_close_matches(name, presets, n=3, cutoff=0.6) if p not in close]
    where = "" if parent.is_dir() else f" ({parent} does not exist either)"
    if "/" not in name and "\\" not in name:
        what = f"{name!r} is not a preset name or a folder here{where}"
    else:
        what = f"{name}: no such folder{where}"
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    fail(f"{what}{hint} (models are a preset name from `polymodal models`, a saved model folder or a run directory)")


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
        import time

        plain: dict[str, PlainProgress] = {}
        # the first report comes after the first chunk: time a pass from its start, not from that report
        began = time.monotonic()

        def write(name: str, done: int, total: int) -> None:
            nonlocal began
            line = plain.get(name)
            if line is None or done <= line.completed:
                if line is not None and line.completed < (line.total or 0):
                    line.finish()
                # a report of 0 done marks the start of a pass (embed sends one when it knows the total)
                line = plain[name] = PlainProgress(f"{verb} {name}", total, stream=err_console.file,
                                                   started=None if done == 0 else began)
            began = time.monotonic()
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


COLUMN_HELP = ("Read a modality or a label from another column, as data.columns does in a run "
               "(image=filepath, text=body, label=topic); repeatable.")


def column_option() -> Any:
    return typer.Option([], "--column", metavar="KEY=COLUMN", show_default=False, help=COLUMN_HELP)


def column_pairs(pairs: list[str]) -> dict[str, str]:
    """``--column KEY=COLUMN`` pairs -> a ``data.columns`` mapping (``image=filepath``, ``label=topic``)."""
    from polymodal.errors import DataError

    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, column = pair.partition("=")
        if not sep or not key.strip() or not column.strip():
            raise DataError(f"--column {pair!r}: expected KEY=COLUMN, e.g. image=filepath or label=topic")
        out[key.strip()] = column.strip()
    return out
