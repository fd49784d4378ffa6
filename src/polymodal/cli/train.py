"""``polymodal train CONFIG.yaml [--set k=v]... [--out RUN_DIR] [--resume] [--force]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from polymodal.cli.common import console, user_errors

if TYPE_CHECKING:
    from polymodal.train import TrainResult


def _summary(r: TrainResult) -> None:
    from rich.table import Table

    table = Table(title="training summary", show_header=True)
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("run dir", str(r.run_dir))
    table.add_row("optimizer steps", str(r.steps))
    if r.strategy is not None:
        table.add_row("trainable params", f"{r.strategy.trainable:,} / {r.strategy.total:,}")
    if r.best_metric is not None:
        table.add_row(f"best {r.selection_metric} (step {r.best_step})", f"{r.best_metric:.4f}")
    for key, value in sorted(r.final_metrics.items()):
        table.add_row(key, f"{value:.4f}")
    if r.stopped_early:
        table.add_row("stopped early", "yes")
    if r.skipped_ids:
        table.add_row("samples in skipped steps", str(len(r.skipped_ids)))
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        config: Path = typer.Argument(..., help="Run config YAML (see examples/)."),
        set_: list[str] = typer.Option([], "--set", help="Override a config key: a.b=value (repeatable)."),
        out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/<config name>)."),
        resume: bool = typer.Option(False, "--resume", help="Continue from the newest complete checkpoint."),
        force: bool = typer.Option(False, "--force",
                                   help="Start over in a run dir with checkpoints, or, with --resume, apply "
                                        "settings that differ from the checkpoint's from the resumed step "
                                        "on (recorded in metrics.jsonl and config.yaml)."),
    ) -> None:
        """Train (align / fine-tune) a model from a run config."""
        with user_errors():
            from polymodal.config import load_config
            from polymodal.train import train

            cfg = load_config(config, set_)
            run_dir = out or Path("runs") / (cfg.name or config.stem)
            result = train(cfg, run_dir, resume=resume, force=force)
        if not result.main_process:  # only rank 0 reports
            return
        if result.interrupted:
            console.print(f"interrupted: checkpoint written; continue with --resume --out {run_dir}")
            return
        _summary(result)
