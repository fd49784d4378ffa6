"""Training engine: one Accelerate loop for every objective, strategies, exact resume.

Public entry: :func:`train` (``polymodal train`` is a thin shell over it).
"""

from __future__ import annotations

from polymodal.train.run import train
from polymodal.train.strategies import StrategyReport, apply_strategy, merge_lora
from polymodal.train.trainer import DataSplit, Trainer, TrainResult

__all__ = ["DataSplit", "StrategyReport", "TrainResult", "Trainer", "apply_strategy", "merge_lora", "train"]
