"""Early stopping, best-metric tracking and the run's metric sinks (JSONL + TensorBoard)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class EarlyStopping:
    """Track a metric; ``update`` returns True when training should stop.

    An evaluation "improves" when it beats the best so far by more than ``min_delta``
    in the direction ``mode``; after ``patience`` evaluations without improvement we stop.
    ``patience=None`` only tracks the best (never stops).
    """

    metric: str
    mode: str = "max"
    patience: int | None = None
    min_delta: float = 0.0
    best: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    stopped: bool = False

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, value: float, step: int) -> bool:
        if self.improved(value):
            self.best, self.best_step, self.bad_evals = value, step, 0
        else:
            self.bad_evals += 1
        if self.patience is not None and self.bad_evals >= self.patience:
            self.stopped = True
        return self.stopped

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


class MetricsLog:
    """Append-only ``metrics.jsonl`` (one JSON object per event) mirrored to TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool = True) -> None:
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self._tb: Any = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tb"))

    def truncate_after(self, step: int) -> None:
        """On resume, drop events the killed run logged after the checkpoint it resumes from."""
        if not (self.enabled and self.path.is_file()):
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:  # a line cut by the kill
                continue
            if int(event.get("step", 0)) <= step:
                kept.append(line)
        self.path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")

    def log(self, event: str, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"event": event, "step": step, **{k: _jsonable(v) for k, v in values.items()}}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    tag = key if "/" in key else f"{event}/{key}"
                    self._tb.add_scalar(tag, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None
