"""Progress of long work for people reading a terminal *or* a log file.

On a terminal rich draws live bars. Sent to a file (CI, ``nohup``, a cluster job) a live
bar prints nothing until it ends, so a 15-minute job looked hung; there
:class:`PlainProgress` writes one plain line now and then instead::

    train: step 120/1000 (12%) · loss 0.4123 · 35.2 samples/s · elapsed 3m 05s · ETA 22m 40s
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

# seconds between two plain lines: often enough to show life in a log, rare enough to read it
PLAIN_EVERY = 30.0


def on_terminal(stream: IO[str] | None = None) -> bool:
    """Whether live bars can be drawn: ``stream`` (stderr by default) is a terminal or a notebook."""
    from rich.console import Console

    console = Console(file=stream or sys.stderr)
    return bool(console.is_terminal or console.is_jupyter)


def format_duration(seconds: float) -> str:
    """``45s``, ``3m 05s``, ``2h 04m``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


class PlainProgress:
    """Plain ``label: done/total (pct) · extra · rate · elapsed · ETA`` lines, at most one per
    ``every`` seconds (the first update and :meth:`finish` always print).

    The rate and ETA are measured from the first call (``completed`` at start, e.g. a
    resumed run's step, does not count as work done here). ``rate_unit`` names what the
    rate counts; pass ``rate=`` to show a rate of something else (samples/s for steps).
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        unit: str = "",
        rate_unit: str = "items",
        every: float = PLAIN_EVERY,
        completed: int = 0,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> None:
        self.label, self.total, self.unit, self.rate_unit = label, total, unit, rate_unit
        self.every, self.stream, self.clock = every, stream, clock
        self.completed = self.start_count = completed
        # ``started``: when the work began, if before this object (made at the first report)
        self._t0 = clock() if started is None else started
        self._last: float | None = None
        self.lines = 0

    def update(
        self, completed: int, total: int | None = None, *, extra: str = "", rate: float | None = None,
        force: bool = False,
    ) -> None:
        self.completed = completed
        if total is not None:
            self.total = total
        now = self.clock()
        if not force and self._last is not None and now - self._last < self.every:
            return
        self._last = now
        self.note(self.line(now, extra, rate))

    def advance(self, n: int = 1, **kw: object) -> None:
        self.update(self.completed + n, **kw)  # type: ignore[arg-type]

    def finish(self, extra: str = "", rate: float | None = None) -> None:
        """The last line (printed whatever the time since the previous one)."""
        self.update(self.completed, extra=extra, rate=rate, force=True)

    def line(self, now: float, extra: str = "", rate: float | None = None) -> str:
        elapsed = now - self._t0
        done = self.completed - self.start_count
        speed = done / elapsed if elapsed > 0 and done > 0 else None
        unit = f"{self.unit} " if self.unit else ""
        parts = [f"{self.label}: {unit}{self.completed}"]
        if self.total:
            parts[0] += f"/{self.total} ({100 * self.completed / self.total:.0f}%)"
        if extra:
            parts.append(extra)
        shown = rate if rate is not None else speed
        if shown is not None:
            parts.append(f"{shown:.1f} {self.rate_unit}/s")
        parts.append(f"elapsed {format_duration(elapsed)}")
        if self.total and speed:
            left = max(self.total - self.completed, 0) / speed
            parts.append("done" if left == 0 else f"ETA {format_duration(left)}")
        return " · ".join(parts)

    def note(self, text: str) -> None:
        """Write one line now (and flush: a log file shows it at once)."""
        stream = self.stream or sys.stderr
        stream.write(text + "\n")
        stream.flush()
        self.lines += 1
