"""``write_run_report(run_dir)``: the model as trained, config, curves and any eval results of
one training run (``polymodal eval RUN`` rewrites it after each result)."""

from __future__ import annotations

import html
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


def is_run_dir(path: str | Path) -> bool:
    """A training run directory: what ``train`` writes (``config.yaml`` / ``metrics.jsonl``)."""
    p = Path(path)
    return p.is_dir() and ((p / "metrics.jsonl").is_file() or (p / "config.yaml").is_file())


def run_dir_of(model_path: str | Path) -> Path | None:
    """The run a model argument belongs to: the run dir itself or its ``model/`` folder."""
    p = Path(model_path)
    if is_run_dir(p):
        return p
    if p.name == "model" and is_run_dir(p.parent):
        return p.parent
    return None


def _describe_tower(spec: dict[str, Any]) -> list[str]:
    enc = spec.get("encoder", spec) if isinstance(spec, dict) else {}
    options = enc.get("options") or {}
    extra = ", ".join(f"{k}={v}" for k, v in options.items())
    return [str(enc.get("source", "?")), str(enc.get("name_or_path") or "—"), extra or "—"]


def add_model_section(report: Report, model_dir: Path) -> None:
    """Which towers the saved model really has (``model/config.json``), and a note when
    ``model.fallback`` stood in for ``model.preset`` (``card.fallback``, set by ``build_model``)."""
    try:
        saved = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return
    card = saved.get("card") or {}
    towers = (saved.get("model") or {}).get("towers") or {}
    fallback = card.get("fallback") if isinstance(card.get("fallback"), dict) else None
    note = ""
    if fallback:
        note = (f"model.preset {fallback.get('requested')!r} could not be loaded where this run trained; "
                f"model.fallback {fallback.get('used')!r} was trained instead (the towers below). ")
    title = f"Model: {saved.get('class', '?')}" + (f" · {card['name']}" if card.get("name") else "")
    if towers:
        rows = [[m, *_describe_tower(spec)] for m, spec in towers.items()]
        report.add_table(title, ["tower", "source", "name or path", "options"], rows)
    else:
        report.add_text(title, f"{card.get('source') or card.get('name') or saved.get('class')}")
    if note:
        report.add_html("Fallback used", f'<p class="note">{html.escape(note)}</p>')


def _eval_results(run_dir: Path) -> list[Any]:
    from polymodal.tasks.result import TaskResult

    results = []
    found = sorted((run_dir / "eval").glob("*.json")) + sorted((run_dir / "model" / "eval").glob("*.json"))
    for p in found + sorted(run_dir.glob("eval*.json")):
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
    add_model_section(report, run / "model")
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
