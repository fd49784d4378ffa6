"""The trade-off table on tiny-dual: every column measured, the original first, plots in the HTML."""

from __future__ import annotations

import json
from pathlib import Path

from polymodal.compress.api import compress
from polymodal.compress.report import tradeoff


def test_tradeoff_table_and_plots(tiny_folder: Path, shapes: Path, tmp_path: Path) -> None:
    int8 = compress(str(tiny_folder), "int8-dynamic", tmp_path / "int8").folder
    table = tradeoff({"fp32": tiny_folder, "int8": int8}, tmp_path / "t", zeroshot=shapes, retrieval=shapes,
                     repeats=2, bootstrap=20, warm=2)
    fp32, q = table["rows"]
    assert min(fp32["cosine_min"].values()) > 0.99999  # the original against itself
    assert 0.99 < q["cosine_min"]["text"] < 1.0 and q["size_mb"] < fp32["size_mb"] / 2
    assert fp32["params"] == 1042465  # the preset's own count
    for row in (fp32, q):
        assert set(row["throughput"]) == {"image", "text"} and all(v > 0 for v in row["latency_ms"].values())
        value, low, high = row["metrics"]["zeroshot-classification:acc@1"]
        assert low <= value <= high
        assert "retrieval:image_to_text/R@1" in row["metrics"]
    # a fresh process per variant: torch alone is over 100 MiB resident, and the row says it
    assert all(100 < row["peak_mb"] < 8000 for row in (fp32, q)), (fp32["peak_mb"], q["peak_mb"])
    md = (tmp_path / "t" / "tradeoff.md").read_text()
    assert "| int8 |" in md and "x smaller" in md and "peak RSS MB" in md
    html = (tmp_path / "t" / "tradeoff.html").read_text()
    assert "size vs accuracy" in html and "latency vs accuracy" in html and html.count("data:image/png;base64") == 2
    assert json.loads((tmp_path / "t" / "tradeoff.json").read_text())["meta"]["pytorch_precision"] == "float32"
