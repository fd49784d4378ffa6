"""``write_run_report(run_dir)``: config, curves and any eval results of one training run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from polymodal.report.figures import series_from_records
from polymodal.report.html import Report


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Records of a metrics.jsonl; unreadable lines are skipped (a run may still be writing)."""
    records: list[dict[str, Any]] = []
    if not path.is_file():
        return records
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def _eval_results(run_dir: Path) -> list[Any]:
    from polymodal.tasks.result import TaskResult

    results = []
    for p in sorted((run_dir / "eval").glob("*.json")) + sorted(run_dir.glob("eval*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and "task" in data and "metrics" in data:
            results.append(TaskResult.from_json(data))
    return results


def build_run_report(run_dir: str | Path, title: str | None = None) -> Report:
    run = Path(run_dir)
    report = Report(title or f"polymodal run · {run.name}")
    records = read_metrics(run / "metrics.jsonl")
    if records:
        series = series_from_records(records)
        summary = [[name, f"{ys[-1]:.4g}", f"{xs[-1]:g}", f"{min(ys):.4g}", f"{max(ys):.4g}"] for name, (xs, ys) in series.items()]
        report.add_table("Last logged values", ["series", "last", "at step", "min", "max"], summary)
        report.add_curves(records)
    else:
        report.add_text("Training curves", "metrics.jsonl is missing or empty")
    for result in _eval_results(run):
        report.add_result(result)
    cfg = run / "config.yaml"
    if cfg.is_file():
        report.add_config(cfg.read_text(encoding="utf-8"), "Config (config.yaml)")
    return report


def write_run_report(run_dir: str | Path, title: str | None = None) -> Path:
    """Write ``run_dir/report.html`` (figures embedded; PNGs also under ``report_figures/``)."""
    run = Path(run_dir)
    return build_run_report(run, title).write(run / "report.html")
