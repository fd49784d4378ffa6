"""A leaderboard: one row per model, one column per (data, task, metric), with intervals.

Written as Markdown, CSV and JSON (the HTML form lives in :mod:`polymodal.report.html`).
The best value per column is marked (highest, or lowest for rank metrics); with exactly
two models, ``paired`` holds the paired-bootstrap difference (first minus second) and its
p-value per column; with three or more, ``versus_best`` holds per column the best model
against each other one, with Holm-adjusted p-values.

Model and column names are user text (a run folder, a hub name, a data set name): the Markdown
form escapes them (``md_escape``) as the HTML form does, so a name can neither break the table
(``|``, a newline) nor inject markup or HTML (``*``, ``[``, ``<script>``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.metrics import Metric, PairedTest

# what is markup inside a GFM table cell; the other ASCII punctuation (-, ., #, +, !) is markup
# only at the start of a line, and a cell never starts one
_MD_SPECIAL = frozenset("\\`*_[]<>|&~")


def md_escape(text: str) -> str:
    """``text`` as literal characters in a Markdown table cell (backslash escapes; newlines -> spaces)."""
    flat = " ".join(str(text).splitlines())
    return "".join(f"\\{c}" if c in _MD_SPECIAL else c for c in flat)


@dataclass
class BestTest:
    """A column's best model against one other, paired on the same samples: ``test`` is best
    minus other; ``p_holm`` is its p-value Holm-adjusted over that column's comparisons."""

    best: str
    other: str
    test: PairedTest
    p_holm: float

    def to_json(self) -> dict[str, Any]:
        return {"best": self.best, "other": self.other, **self.test.to_json(), "p_holm": self.p_holm}


@dataclass
class Leaderboard:
    models: list[str]
    columns: list[str]
    cells: dict[str, dict[str, Metric]]
    paired: dict[str, PairedTest] = field(default_factory=dict)
    results: dict[str, list[Any]] = field(default_factory=dict, repr=False)  # model -> TaskResults
    # three or more models: per column, the best against each other model (see BestTest)
    versus_best: dict[str, list[BestTest]] = field(default_factory=dict)

    def interval_note(self) -> str:
        """What the intervals are: bootstrap over items, except few-shot columns (Student-t over draws)."""
        if any("-shot/" in c for c in self.columns):
            return "95% interval: bootstrap over items; few-shot columns (K-shot): Student-t over the support draws"
        return "bootstrap 95% interval"

    def best(self, column: str) -> str | None:
        """The model with the best value in ``column`` (None when no model has it or all tie)."""
        entries = [(m, self.cells[m][column]) for m in self.models if column in self.cells.get(m, {})]
        if len(entries) < 2:
            return entries[0][0] if entries else None
        sign = 1.0 if entries[0][1].higher_is_better else -1.0
        top = max(sign * e[1].value for e in entries)
        winners = [m for m, e in entries if sign * e.value == top]
        return winners[0] if len(winners) == 1 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "columns": self.columns,
            "cells": {m: {c: v.to_json() for c, v in row.items()} for m, row in self.cells.items()},
            "best": {c: self.best(c) for c in self.columns},
            "paired": {
                "a": self.models[0] if len(self.models) == 2 else None,
                "b": self.models[1] if len(self.models) == 2 else None,
                "tests": {c: t.to_json() for c, t in self.paired.items()},
            },
            "versus_best": {c: [t.to_json() for t in tests] for c, tests in self.versus_best.items()},
        }

    def to_markdown(self, digits: int = 3) -> str:
        lines = ["| model | " + " | ".join(md_escape(c) for c in self.columns) + " |",
                 "|---" * (len(self.columns) + 1) + "|"]
        for m in self.models:
            cells = []
            for c in self.columns:
                metric = self.cells.get(m, {}).get(c)
                text = metric.format(digits) if metric else "—"
                cells.append(f"**{text}**" if metric and self.best(c) == m else text)
            lines.append(f"| {md_escape(m)} | " + " | ".join(cells) + " |")
        out = "\n".join(lines) + f"\n\nValues are point estimates [{self.interval_note()}]; **bold** is the best per column.\n"
        if self.paired:
            a, b = (md_escape(m) for m in self.models)
            out += f"\n### Paired differences ({a} − {b})\n\n| metric | difference [95% CI] | p-value |\n|---|---|---|\n"
            for c, t in self.paired.items():
                out += f"| {md_escape(c)} | {t.diff:+.{digits}f} [{t.low:+.{digits}f}, {t.high:+.{digits}f}] | {t.p_value:.4f} |\n"
        out += self._versus_best_markdown(digits)
        return out

    def _versus_best_markdown(self, digits: int) -> str:
        if not self.versus_best:
            return ""
        out = ("\n### Against the best per column (paired bootstrap; p-values Holm-corrected within each column)\n\n"
               "| metric | best | other | difference [95% CI] | p-value | p (Holm) |\n|---|---|---|---|---|---|\n")
        for c, tests in self.versus_best.items():
            for b in tests:
                t = b.test
                out += (f"| {md_escape(c)} | {md_escape(b.best)} | {md_escape(b.other)} | {t.diff:+.{digits}f} [{t.low:+.{digits}f}, "
                        f"{t.high:+.{digits}f}] | {t.p_value:.4f} | {b.p_holm:.4f} |\n")
        return out

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        header = ["model"]
        for c in self.columns:
            header += [c, f"{c} low", f"{c} high", f"{c} best"]
        writer.writerow(header)
        for m in self.models:
            row: list[Any] = [m]
            for c in self.columns:
                metric = self.cells.get(m, {}).get(c)
                row += [metric.value, metric.low, metric.high, int(self.best(c) == m)] if metric else ["", "", "", ""]
            writer.writerow(row)
        return buf.getvalue()

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "md": out / "leaderboard.md",
            "csv": out / "leaderboard.csv",
            "json": out / "leaderboard.json",
        }
        paths["md"].write_text(self.to_markdown(), encoding="utf-8")
        paths["csv"].write_text(self.to_csv(), encoding="utf-8")
        paths["json"].write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return paths
