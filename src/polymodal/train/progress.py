"""A rich progress bar: step, loss, samples/s and ETA (silent when disabled)."""

from __future__ import annotations

from typing import Any


class ProgressBar:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self._progress: Any = None
        self._task: Any = None

    def start(self, completed: int) -> None:
        if not self.enabled:
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
        if self._progress is not None:
            self._progress.update(self._task, completed=step, loss=f"{loss:.4f}", rate=f"{rate:.1f}")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
