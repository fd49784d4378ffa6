"""The quickstart's summary table and its one-page ``report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polymodal.metrics import Metric

# (label, dataset name suffix, task, metric) rows of the before/after summary
SUMMARY_ROWS = (
    ("zero-shot acc@1, all classes", "", "zeroshot-classification", "acc@1"),
    ("zero-shot acc@1, held-out classes", "-heldout-classes", "zeroshot-classification", "acc@1"),
    ("shapes image->text R@1", "shapes", "retrieval", "image_to_text/R@1"),
    ("shapes image->text R@5", "shapes", "retrieval", "image_to_text/R@5"),
    ("shapes text->image R@5", "shapes", "retrieval", "text_to_image/R@5"),
    ("shapes held-out combos text->image R@10", "shapes-heldout-combos", "retrieval", "text_to_image/R@10"),
)


def _fmt(m: Metric | None) -> str:
    if m is None:
        return "-"
    return f"{m.value:.3f} [{m.low:.3f}, {m.high:.3f}]"


def _find(results: list[Any], data: str, task: str, metric: str) -> Metric | None:
    for r in results:
        if r.data == data and r.task == task and metric in r.metrics:
            return r.metrics[metric]  # type: ignore[no-any-return]
    return None


def summary_rows(dataset: str, board: Any, vqa: Any, heldout: list[str]) -> list[list[str]]:
    """Rows of [what, before, after] with 95% intervals; the fusion accuracy last."""
    before, after = board.models[0], board.models[1]
    rows: list[list[str]] = []
    for label, suffix, task, metric in SUMMARY_ROWS:
        data = suffix if suffix.startswith("shapes") else f"{dataset}{suffix}"
        rows.append([label, _fmt(_find(board.results[before], data, task, metric)),
                     _fmt(_find(board.results[after], data, task, metric))])
    rows[1][0] += f" ({', '.join(heldout)}; chance {1 / len(heldout):.3f})"
    rows.append(["shapes VQA accuracy (late fusion + LoRA)", "-", _fmt(vqa.metrics.get("accuracy"))])
    return rows


def report_rows(report: dict[str, Any]) -> list[list[str]]:
    """scikit-learn's ``output_dict`` report as table rows (accuracy is shown elsewhere)."""
    from polymodal.report.html import per_class_rows

    return per_class_rows(report)


STAGES = {"data": "make the datasets", "before": "evaluate lite-dual as built", "align": "LiT alignment (train)",
          "after": "evaluate the aligned model + compare", "fusion": "fusion fine-tuning + VQA eval",
          "report": "copy the model, write the report"}


def stage_rows(seconds: dict[str, float]) -> list[list[str]]:
    """[stage, what it does, time, share of the total] per stage, the total last."""
    from polymodal.progress import format_duration

    total = seconds.get("total") or sum(v for k, v in seconds.items() if k != "total") or 1.0
    rows = [[name, STAGES.get(name, ""), f"{secs:.1f} s ({format_duration(secs)})", f"{100 * secs / total:.0f}%"]
            for name, secs in seconds.items() if name != "total"]
    if "total" in seconds:
        rows.append(["total", "", f"{seconds['total']:.1f} s ({format_duration(seconds['total'])})", "100%"])
    return rows


def write_quickstart_report(result: Any, board: Any, vqa: Any, align_dir: Path, fusion_dir: Path) -> Path:
    from polymodal.report import Report, read_metrics

    report = Report("polymodal quickstart: lite-dual, LiT alignment and late-fusion fine-tuning")
    report.add_text(
        "What ran",
        f"Data: {result.dataset} and shapes. The image tower (EfficientNet-Lite0) stayed locked; the text tower "
        f"(MiniLM) learned through LoRA and both projections trained with InfoNCE on captions of the seen classes "
        f"only. Held-out classes (never seen in alignment): {', '.join(result.heldout_classes)}.",
    )
    report.add_table("Stage times", ["stage", "what", "time", "share"], stage_rows(result.seconds))
    report.add_table("Summary (value [95% CI])", ["", "before", "after"],
                     summary_rows(result.dataset, board, vqa, result.heldout_classes))
    report.add_leaderboard(board, "Before / after leaderboard (paired bootstrap p-values)")
    report.add_curves(read_metrics(align_dir / "metrics.jsonl"), "Alignment curves")
    for r in board.results[board.models[1]]:
        for direction, examples in (r.details.get("examples") or {}).items():
            if r.data.startswith("shapes") and direction.startswith("text_to"):
                report.add_retrieval_examples(examples, f"Retrieval after alignment: {direction} on {r.data}")
    report.add_curves(read_metrics(fusion_dir / "metrics.jsonl"), "Fusion fine-tuning curves")
    # with its per-class report (scikit-learn), which add_result adds for every classification result
    report.add_result(vqa, "shapes VQA (image + question -> answer), test split")
    return report.write(result.out_dir / "report.html")
