"""Reports: run report from metrics.jsonl, leaderboard writers, and the page in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from browser import CHROMIUM, images_loaded, screenshot
from PIL import Image

from polymodal.metrics import Metric, PairedTest
from polymodal.report import Leaderboard, Report, build_run_report, write_run_report
from polymodal.report.html import leaderboard_html
from polymodal.tasks.result import TaskResult


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    (run / "config.yaml").write_text("model:\n  preset: tiny-dual\ntrain:\n  lr: 0.001\n")
    lines = []
    for step in range(1, 41):
        lines.append({"step": step, "loss": 2.0 / step**0.5, "lr": 1e-3 * (1 - step / 40)})
        if step % 10 == 0:
            lines.append({"step": step, "split": "val", "loss": 1.5 / step**0.3, "acc@1": step / 50})
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + "{truncated\n")
    img = tmp_path / "q.png"
    Image.new("RGB", (24, 24), (200, 40, 40)).save(img)
    result = TaskResult(
        "zeroshot-classification",
        {"acc@1": Metric(0.5, 0.4, 0.6)},
        {
            "class_names": ["cat", "dog", "owl"],
            "confusion_matrix": [[3, 1, 0], [0, 4, 0], [1, 0, 2]],
            "examples": {"image_to_text": [{"query": str(img), "retrieved": ["a red square", "x", "y", "z", "w"], "hits": [True, False, False, False, False]}]},
        },
        model="tiny-dual",
        data="shapes",
        split="test",
    )
    (run / "eval" / "zeroshot.json").write_text(json.dumps(result.to_json()))
    return run


def test_run_report_has_config_curves_and_eval_figures(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    page = write_run_report(run)
    assert page == run / "report.html"
    html = page.read_text()
    assert "preset: tiny-dual" in html and "acc@1" in html
    figs = sorted(p.name for p in (run / "report_figures").glob("*.png"))
    assert len(figs) == 3 and any("curves" in f for f in figs) and any("confusion" in f for f in figs)
    assert html.count('src="data:image/png;base64,') == 3  # every figure embedded, no external file needed
    for f in figs:
        assert Image.open(run / "report_figures" / f).size[0] > 100


def _board() -> Leaderboard:
    cols = ["zeroshot-classification: acc@1", "retrieval: image_to_text/mean_rank"]
    cells = {
        "base": {cols[0]: Metric(0.40, 0.30, 0.50), cols[1]: Metric(5.0, 4.0, 6.0, higher_is_better=False)},
        "tuned": {cols[0]: Metric(0.70, 0.60, 0.80), cols[1]: Metric(7.5, 6.0, 9.0, higher_is_better=False)},
    }
    paired = {cols[0]: PairedTest(-0.30, -0.42, -0.18, 0.002)}
    return Leaderboard(["base", "tuned"], cols, cells, paired)


def test_leaderboard_marks_best_per_column_and_writes_all_formats(tmp_path: Path) -> None:
    board = _board()
    assert board.best("zeroshot-classification: acc@1") == "tuned"
    assert board.best("retrieval: image_to_text/mean_rank") == "base"  # lower rank is better
    paths = board.write(tmp_path)
    md = paths["md"].read_text()
    assert "**0.700 [0.600, 0.800]**" in md and "**5.000 [4.000, 6.000]**" in md
    assert "p-value" in md and "0.0020" in md
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert rows[1]["model"] == "tuned" and rows[1]["zeroshot-classification: acc@1 best"] == "1"
    assert float(rows[0]["zeroshot-classification: acc@1 low"]) == 0.30
    data = json.loads(paths["json"].read_text())
    assert data["best"]["retrieval: image_to_text/mean_rank"] == "base"
    assert data["paired"]["tests"]["zeroshot-classification: acc@1"]["p_value"] == 0.002


def test_the_board_says_which_intervals_are_over_few_shot_draws() -> None:
    m = Metric(0.7, 0.6, 0.8)
    items = Leaderboard(["a", "b"], ["zs: acc@1"], {"a": {"zs: acc@1": m}, "b": {"zs: acc@1": m}})
    draws = Leaderboard(["a", "b"], ["fs: prototype/5-shot/accuracy"],
                        {"a": {"fs: prototype/5-shot/accuracy": m}, "b": {"fs: prototype/5-shot/accuracy": m}})
    assert "[bootstrap 95% interval]" in items.to_markdown() and "Student-t" not in items.to_markdown()
    assert "Student-t over the support draws" in draws.to_markdown()
    assert "Student-t over the support draws" in leaderboard_html(draws)
    assert "Student-t" not in leaderboard_html(items)


def test_ties_have_no_best() -> None:
    board = Leaderboard(["a", "b"], ["m"], {"a": {"m": Metric(0.5, 0.5, 0.5)}, "b": {"m": Metric(0.5, 0.5, 0.5)}})
    assert board.best("m") is None


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_opens_in_headless_chromium_with_no_missing_images(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    report = Report("polymodal run · demo").add_leaderboard(_board()).extend(build_run_report(run))
    page = report.write(tmp_path / "out" / "report.html")
    assert len(list((tmp_path / "out" / "report_figures").glob("*.png"))) == 3
    ok, total = images_loaded(page)
    assert total == 3 and ok == total
    # a broken image would be caught: the same probe on a page with a bad data URI
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="data:image/png;base64,AAAA"><img src="missing.png"></body></html>')
    assert images_loaded(bad) == (0, 2)
    if os.environ.get("POLYMODAL_KEEP_SCREENSHOT"):
        shot = screenshot(page, Path(os.environ["POLYMODAL_KEEP_SCREENSHOT"]))
        assert np.asarray(Image.open(shot)).std() > 0


def test_series_follow_the_trainer_event_records() -> None:
    from polymodal.report.figures import series_from_records

    records = [
        {"event": "start", "step": 0, "total": 1000, "trainable": 10},
        {"event": "train", "step": 5, "epoch": 0, "loss": 2.0, "lr": 0.001, "samples_per_s": 30.0},
        {"event": "eval", "step": 5, "val/loss": 1.5, "val/recall@1": 0.2},
        {"event": "train", "step": 10, "epoch": 1, "loss": float("nan"), "lr": 0.0005},
        {"event": "end", "step": 10, "interrupted": False},
    ]
    s = series_from_records(records)
    assert set(s) == {"train/loss", "train/lr", "train/samples_per_s", "val/loss", "val/recall@1"}
    assert s["train/lr"] == ([5.0, 10.0], [0.001, 0.0005])
    assert s["train/loss"] == ([5.0], [2.0])  # the NaN step is left out, not drawn as a gap of garbage


def test_markdown_leaderboard_escapes_model_names() -> None:
    # model names are user text (run folders, hub names); the HTML form escapes them, so must the Markdown
    hostile = "evil|<script>alert(1)</script>**loud**[x](http://e)\nnext"
    board = Leaderboard([hostile, "plain_run"], ["zs: acc@1"],
                        {hostile: {"zs: acc@1": Metric(0.5, 0.4, 0.6)}, "plain_run": {"zs: acc@1": Metric(0.6, 0.5, 0.7)}})
    md = board.to_markdown()
    row = next(line for line in md.splitlines() if line.startswith("| evil"))
    assert "<script>" not in md and "**loud**" not in md and "[x](" not in md and "\nnext" not in md
    assert row.startswith(r"| evil\|\<script\>alert(1)\</script\>\*\*loud\*\*\[x\](http://e) next | ")
    assert len(re.findall(r"(?<!\\)\|", row)) == 3  # still two cells: the name's "|" did not split the row
    assert r"| plain\_run | **0.600 [0.500, 0.700]** |" in md


def test_the_data_event_is_a_count_not_a_curve() -> None:
    from polymodal.report.figures import series_from_records

    records = [{"event": "train", "step": 1, "loss": 1.0}, {"event": "data", "step": 1, "quarantined": 2}]
    assert set(series_from_records(records)) == {"train/loss"}


THIRTEEN = ([f"shapes · retrieval: {d}/R@{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)]
            + [f"shapes · retrieval: {d}/{r}" for d in ("image_to_text", "text_to_image") for r in ("mean_rank", "median_rank")]
            + [f"digits · zeroshot-classification: {m}" for m in ("acc@1", "acc@5", "mean_per_class_recall")])

# after load: scroll the leaderboard's box to its right end and measure what is reachable
LAYOUT = """
const table = document.querySelector('table');
const box = document.querySelector('.board') || table;
const model = table.querySelector('tr th');
const heads = Array.from(table.querySelectorAll('th')).filter(h => !h.classList.contains('group'));
const lastHead = heads[heads.length - 1];
const before = model.getBoundingClientRect().left;
box.scrollLeft = box.scrollWidth;
return {page: document.documentElement.scrollWidth, viewport: window.innerWidth, table: table.scrollWidth,
        overflow: getComputedStyle(box).overflowX, boxRight: box.getBoundingClientRect().right,
        lastRight: lastHead.getBoundingClientRect().right, modelMoved: before - model.getBoundingClientRect().left};
"""


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_a_13_column_leaderboard_wraps_and_scrolls_instead_of_being_cut_off(tmp_path: Path) -> None:
    from browser import evaluate

    models = ["lite-dual", "runs/digits-finetune", "tiny-dual"]
    cells = {m: {c: Metric(0.1 * i, 0.05 * i, 0.15 * i) for i, c in enumerate(THIRTEEN)} for m in models}
    page = Report("wide").add_leaderboard(Leaderboard(models, THIRTEEN, cells)).write(tmp_path / "wide.html")
    got = evaluate(page, LAYOUT, width=1200)
    assert got["page"] <= got["viewport"], got  # the page itself never runs off to the right
    assert got["table"] < 2000, got  # headers wrap (nowrap headers made it 4,600 px wide)
    assert got["overflow"] in ("auto", "scroll") and got["lastRight"] <= got["boxRight"] + 1, got  # all reachable
    assert abs(got["modelMoved"]) < 1, got  # scrolled to the end, the model column is still in view
    html = page.read_text()
    assert '<th class="group" colspan="10">shapes · retrieval</th>' in html  # data · task once over its metrics


def test_a_classification_result_brings_its_per_class_report_into_the_run_report(tmp_path: Path) -> None:
    """docs/examples.md promised the per-class report in the run's report.html; it was not there."""
    from polymodal.tasks.classification import classification_result

    run = _run_dir(tmp_path)
    targets = np.array([0, 0, 1, 1, 2, 2, 2])
    scores = np.eye(3)[[0, 1, 1, 1, 2, 2, 0]]
    result = classification_result(targets, scores, ["cat", "dog", "owl"], [str(i) for i in range(7)], n_boot=0,
                                   data="pets", split="test")
    result.model = "run"
    (run / "eval" / "classification-pets-test.json").write_text(json.dumps(result.to_json()))
    page = write_run_report(run).read_text()
    assert "Per-class report · run · classification · pets" in page
    # dog: precision 2/3, recall 2/2, f1 0.8; support 2
    assert "<tr><td>dog</td><td>0.667</td><td>1.000</td><td>0.800</td><td>2</td></tr>" in page
    assert "<td>macro avg</td>" in page


def test_quickstart_report_shows_stage_times_as_a_table_not_a_dict(tmp_path: Path) -> None:
    from polymodal.quickstart import QuickstartResult
    from polymodal.quickstart_report import stage_rows, write_quickstart_report

    seconds = {"data": 12.0, "before": 3.5, "align": 64.5, "total": 80.0}
    rows = stage_rows(seconds)
    assert rows[0] == ["data", "make the datasets", "12.0 s (12s)", "15%"]
    assert rows[2] == ["align", "LiT alignment (train)", "64.5 s (1m 04s)", "81%"]
    assert rows[-1] == ["total", "", "80.0 s (1m 20s)", "100%"]

    result = QuickstartResult(out_dir=tmp_path, dataset="digits", heldout_classes=["7", "8", "9"])
    result.seconds = seconds
    board = _board()
    board.results = {"base": [], "tuned": []}
    vqa = TaskResult("classification", {"accuracy": Metric(0.5, 0.4, 0.6)}, {}, model="fusion", data="shapes-vqa")
    page = write_quickstart_report(result, board, vqa, tmp_path / "align", tmp_path / "fusion").read_text()
    assert "{&#x27;data&#x27;" not in page and "{'data'" not in page  # no raw Python dict
    assert "<h2>Stage times</h2>" in page and "<td>align</td><td>LiT alignment (train)</td><td>64.5 s (1m 04s)</td>" in page
