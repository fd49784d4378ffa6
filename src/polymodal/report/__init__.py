"""Reports: matplotlib figures and one self-contained HTML page per run or comparison."""

from __future__ import annotations

from polymodal.report.html import Report, Section, leaderboard_html
from polymodal.report.leaderboard import Leaderboard
from polymodal.report.run_report import build_run_report, read_metrics, run_dir_of, write_run_report

__all__ = [
    "Leaderboard",
    "Report",
    "Section",
    "build_run_report",
    "leaderboard_html",
    "read_metrics",
    "run_dir_of",
    "write_run_report",
]
