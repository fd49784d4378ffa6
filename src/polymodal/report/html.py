"""A self-contained HTML report built from sections; figures are embedded as base64 PNGs
and also saved as files beside the page (``<stem>_figures/NN-name.png``)."""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.report import figures
from polymodal.report.leaderboard import Leaderboard

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;border-bottom:2px solid #ddd;padding-bottom:.3rem}
h2{font-size:1.2rem;margin-top:2rem;color:#234}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.3rem .55rem;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
th{background:#f3f5f8}
td.best{background:#e3f4e1;font-weight:600}
.ci{color:#777;font-size:.78rem}
.sig{color:#1a7f37;font-weight:600}
img{max-width:100%;border:1px solid #eee;margin:.4rem 0}
pre{background:#f7f7f9;padding:.7rem;overflow:auto;font-size:.8rem;max-height:30rem}
.note{color:#555;font-size:.85rem}
.board{overflow-x:auto;margin:.5rem 0;border-right:1px solid #ddd}
.board table{display:table;overflow:visible;margin:0}
.board th{white-space:normal;vertical-align:bottom;min-width:5.5rem;max-width:9rem;text-align:right}
.board .model{position:sticky;left:0;background:#fff;z-index:1;text-align:left;
white-space:normal;min-width:8rem;max-width:16rem;overflow-wrap:anywhere;box-shadow:1px 0 0 #ddd}
.board th.model{background:#f3f5f8}
.board th.group{text-align:left;max-width:none}
"""


@dataclass
class Section:
    title: str
    body: str  # HTML


@dataclass
class Report:
    """Sections in order; ``write(path)`` produces one page with every figure inline."""

    title: str
    sections: list[Section] = field(default_factory=list)
    _figures: list[tuple[str, bytes]] = field(default_factory=list)

    def add_html(self, title: str, body: str) -> Report:
        self.sections.append(Section(title, body))
        return self

    def add_text(self, title: str, text: str) -> Report:
        return self.add_html(title, f"<p>{html.escape(text)}</p>")

    def add_config(self, config: Any, title: str = "Config") -> Report:
        text = config if isinstance(config, str) else json.dumps(config, indent=2, default=str)
        return self.add_html(title, f"<pre>{html.escape(text)}</pre>")

    def add_figure(self, title: str, png: bytes, caption: str = "") -> Report:
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "figure"
        name = f"{len(self._figures) + 1:02d}-{slug}.png"
        self._figures.append((name, png))
        data = base64.b64encode(png).decode("ascii")
        cap = f'<p class="note">{html.escape(caption)}</p>' if caption else ""
        return self.add_html(title, f'<img alt="{html.escape(title)}" data-file="{name}" src="data:image/png;base64,{data}">{cap}')

    def add_table(self, title: str, headers: list[str], rows: list[list[Any]]) -> Report:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return self.add_html(title, f"<table><tr>{head}</tr>{body}</table>")

    def add_curves(self, records: list[dict[str, Any]], title: str = "Training curves") -> Report:
        png = figures.curves_figure(figures.series_from_records(records))
        if png is None:
            return self.add_text(title, "no numeric metrics were logged")
        return self.add_figure(title, png, "loss, learning rate and metrics per optimisation step")

    def add_confusion_matrix(self, cm: Any, class_names: list[str], title: str = "Confusion matrix") -> Report:
        return self.add_figure(title, figures.confusion_figure(cm, class_names, title))

    def add_retrieval_examples(self, examples: list[dict[str, Any]], title: str = "Retrieval examples") -> Report:
        if not examples:
            return self
        return self.add_figure(title, figures.retrieval_grid(examples, title), "top-5 per query; green: hit, red: miss")

    def add_leaderboard(self, board: Leaderboard, title: str = "Leaderboard") -> Report:
        return self.add_html(title, leaderboard_html(board))

    def add_result(self, result: Any, heading: str | None = None) -> Report:
        """A TaskResult: its metrics table, confusion matrix and retrieval examples when present."""
        name = heading or f"{result.model} · {result.task} · {result.data}"
        rows = [[k, f"{m.value:.4f}", f"[{m.low:.4f}, {m.high:.4f}]"] for k, m in result.metrics.items()]
        self.add_table(name, ["metric", "value", "95% CI"], rows)
        details = result.details
        per_class = details.get("report")
        if isinstance(per_class, dict) and per_class:  # scikit-learn's classification report
            self.add_table(f"Per-class report · {name}", ["class", "precision", "recall", "f1", "support"],
                           per_class_rows(per_class))
        if details.get("confusion_matrix") is not None and details.get("class_names"):
            self.add_confusion_matrix(details["confusion_matrix"], details["class_names"], f"Confusion matrix · {name}")
        for direction, examples in (details.get("examples") or {}).items():
            self.add_retrieval_examples(examples, f"{direction.replace('_', ' ')} · {name}")
        if details.get("clips"):
            self.add_frame_strips(details["clips"], f"Clips · {name}")
        if details.get("transcripts"):
            self.add_transcripts(details["transcripts"], details.get("paths") or {}, f"Transcripts · {name}")
        if details.get("generated_examples"):  # captioning / generative VQA: images with what the model said
            self.add_figure(f"Generated · {name}", figures.caption_grid(details["generated_examples"], name),
                            "generated text; the reference in brackets")
        return self

    def add_frame_strips(self, clips: list[dict[str, Any]], title: str = "Clips") -> Report:
        """One row of frames per clip (a video's frames side by side), captioned truth / prediction."""
        png = figures.frame_strips(clips)
        if png is None:
            return self
        return self.add_figure(title, png, "each row one clip, frames left to right; truth -> the model's choice")

    def add_transcripts(self, rows: list[dict[str, Any]], paths: dict[str, str], title: str = "Transcripts",
                        players: int = 8) -> Report:
        """Reference and hypothesis per clip; the first ``players`` clips get an audio player (the WAV
        embedded, so the page stays one file)."""
        head = "<tr><th>id</th><th>clip</th><th>reference</th><th>hypothesis</th></tr>"
        body = []
        for i, r in enumerate(rows):
            rid = str(r.get("id", ""))
            clip = ""
            path = Path(paths.get(rid, ""))
            if i < players and path.suffix.lower() == ".wav" and path.is_file():
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                clip = f'<audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>'
            mark = "" if r.get("reference") == r.get("hypothesis") else ' style="color:#b42318"'
            body.append(f"<tr><td>{html.escape(rid)}</td><td>{clip}</td><td>{html.escape(str(r.get('reference')))}"
                        f"</td><td{mark}>{html.escape(str(r.get('hypothesis')))}</td></tr>")
        return self.add_html(title, f"<table>{head}{''.join(body)}</table>")

    def extend(self, other: Report) -> Report:
        """Append another report's sections (and its figures) after this one's."""
        self.sections.extend(other.sections)
        self._figures.extend(other._figures)
        return self

    def render(self) -> str:
        parts = [f"<h1>{html.escape(self.title)}</h1>"]
        for s in self.sections:
            parts.append(f"<section><h2>{html.escape(s.title)}</h2>{s.body}</section>")
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(parts)
            + '<p class="note">Written by polymodal. Intervals are 95% confidence intervals; each table says how they were drawn.</p>'
            "</body></html>\n"
        )

    def write(self, path: str | Path, save_figures: bool = True) -> Path:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        if save_figures and self._figures:
            fig_dir = out.parent / f"{out.stem}_figures"
            fig_dir.mkdir(exist_ok=True)
            for name, png in self._figures:
                (fig_dir / name).write_bytes(png)
        out.write_text(self.render(), encoding="utf-8")
        return out


def per_class_rows(report: dict[str, Any]) -> list[list[str]]:
    """scikit-learn's ``classification_report(output_dict=True)`` as rows: each class, then the
    macro and weighted averages (its overall accuracy is a metric of the result already)."""
    rows = []
    for name, row in report.items():
        if isinstance(row, dict) and {"precision", "recall", "f1-score", "support"} <= set(row):
            rows.append([str(name), f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1-score']:.3f}",
                         str(int(row["support"]))])
    return rows


def _column_head(name: str) -> str:
    """A column name that may wrap after its separators (``shapes · retrieval: image_to_text/R@1``)."""
    text = html.escape(name)
    for sep in ("/", "_", ": ", " · "):
        text = text.replace(sep, sep + "<wbr>")
    return text


def _head_rows(columns: list[str]) -> str:
    """Header rows: ``data · task`` once over its metrics (a second row names each metric)."""
    groups: list[tuple[str, list[str]]] = []
    for c in columns:
        prefix, sep, metric = c.partition(": ")
        key = prefix if sep else ""
        if groups and groups[-1][0] == key:
            groups[-1][1].append(metric if sep else c)
        else:
            groups.append((key, [metric if sep else c]))
    if all(not key for key, _ in groups):
        return '<tr><th class="model">model</th>' + "".join(f"<th>{_column_head(c)}</th>" for c in columns) + "</tr>"
    top = '<tr><th class="model" rowspan="2">model</th>' + "".join(
        f'<th class="group" colspan="{len(metrics)}">{html.escape(key)}</th>' for key, metrics in groups) + "</tr>"
    return top + "<tr>" + "".join(f"<th>{_column_head(m)}</th>" for _, metrics in groups for m in metrics) + "</tr>"


def _p_cell(p: float) -> str:
    return f'<span class="sig">{p:.4f}</span>' if p < 0.05 else f"{p:.4f}"


def leaderboard_html(board: Leaderboard, digits: int = 3) -> str:
    """The leaderboard as a table that wraps its headers and, when still wider than the page,
    scrolls sideways inside its own box with the model column kept in view."""
    head = _head_rows(board.columns)
    rows = []
    for m in board.models:
        cells = [f'<td class="model">{html.escape(m)}</td>']
        for c in board.columns:
            metric = board.cells.get(m, {}).get(c)
            if metric is None:
                cells.append("<td>—</td>")
                continue
            cls = ' class="best"' if board.best(c) == m else ""
            ci = f'<br><span class="ci">[{metric.low:.{digits}f}, {metric.high:.{digits}f}]</span>'
            cells.append(f"<td{cls}>{metric.value:.{digits}f}{ci}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    out = f'<div class="board"><table>{head}{"".join(rows)}</table></div>'
    out += f'<p class="note">Shaded: best per column. Grey: {html.escape(board.interval_note())}.'
    out += " Wide tables scroll sideways; the model column stays in view.</p>" if len(board.columns) > 6 else "</p>"
    if board.paired and len(board.models) == 2:
        a, b = board.models
        prow = []
        for c, t in board.paired.items():
            prow.append(
                f"<tr><td>{html.escape(c)}</td><td>{t.diff:+.{digits}f}</td>"
                f"<td>[{t.low:+.{digits}f}, {t.high:+.{digits}f}]</td><td>{_p_cell(t.p_value)}</td></tr>"
            )
        out += (
            f"<h3>Paired differences ({html.escape(a)} − {html.escape(b)}), same samples</h3>"
            "<table><tr><th>metric</th><th>difference</th><th>95% CI</th><th>p-value</th></tr>"
            + "".join(prow)
            + "</table>"
        )
    if board.versus_best:
        vrow = []
        for c, tests in board.versus_best.items():
            for bt in tests:
                t = bt.test
                vrow.append(
                    f"<tr><td>{html.escape(c)}</td><td>{html.escape(bt.best)}</td><td>{html.escape(bt.other)}</td>"
                    f"<td>{t.diff:+.{digits}f}</td><td>[{t.low:+.{digits}f}, {t.high:+.{digits}f}]</td>"
                    f"<td>{t.p_value:.4f}</td><td>{_p_cell(bt.p_holm)}</td></tr>"
                )
        out += (
            "<h3>Against the best per column, same samples</h3>"
            '<p class="note">Paired bootstrap of best − other; p-values Holm-corrected over each column\'s '
            "comparisons (green: below 0.05 after correction).</p>"
            "<table><tr><th>metric</th><th>best</th><th>other</th><th>difference</th><th>95% CI</th>"
            "<th>p-value</th><th>p (Holm)</th></tr>" + "".join(vrow) + "</table>"
        )
    return out
