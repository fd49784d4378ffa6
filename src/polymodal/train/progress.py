"""The training loop's progress: step, loss, samples/s and ETA (silent when disabled).

A rich bar on a terminal; plain periodic lines (``polymodal.progress.PlainProgress``) when
the output goes to a file, so a job in CI or under ``nohup`` shows it is alive.
"""

from __future__ import annotations

from typing import IO, Any

from polymodal.progress import PLAIN_EVERY, PlainProgress, on_terminal


class ProgressBar:
    def __init__(
        self, total: int, enabled: bool, *, terminal: bool | None = None, stream: IO[str] | None = None,
        every: float = PLAIN_EVERY,
    ) -> None:
        self.total, self.enabled = total, enabled
        self.terminal = on_terminal(stream) if terminal is None and enabled else bool(terminal)
        self.stream, self.every = stream, every
        self._progress: Any = None
        self._task: Any = None
        self._plain: PlainProgress | None = None
        self._loss: float | None = None
        self._rate: float | None = None

    def start(self, completed: int) -> None:
        if not self.enabled:
            return
        if not self.terminal:
            self._plain = PlainProgress("train", self.total, unit="step", rate_unit="samples", every=self.every,
                                        completed=completed, stream=self.stream)
            where = f" from step {completed}" if completed else ""
            self._plain.note(f"train: {self.total - completed} optimizer steps to run{where}")
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} samples/s"),
            TextColumn("ETA"), TimeRemainingColumn(), transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=self.total, completed=completed, loss="-", rate="-")

    def update(self, step: int, loss: float, rate: float) -> None:
        self._loss, self._rate = loss, rate
        if self._plain is not None:
            self._plain.update(step, extra=f"loss {loss:.4f}", rate=rate)
        elif self._progress is not None:
            self._progress.update(self._task, completed=step, loss=f"{loss:.4f}", rate=f"{rate:.1f}")

    def stop(self) -> None:
        if self._plain is not None:
            if self._plain.completed > self._plain.start_count:  # something ran since start
                self._plain.finish(extra=f"loss {self._loss:.4f}" if self._loss is not None else "", rate=self._rate)
            self._plain = None
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
