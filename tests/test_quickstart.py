"""`polymodal quickstart --quick` end to end, as CI runs it: files written, numbers sane."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("quickstart")
    env = {**os.environ, "POLYMODAL_CACHE": str(out / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "polymodal.cli.main", "quickstart", "--quick", "--out", str(out / "run")],
        capture_output=True, text=True, env=env, timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return out / "run"


def test_outputs_exist(quick_run: Path) -> None:
    assert (quick_run / "metrics.json").is_file()
    assert (quick_run / "report.html").is_file()
    assert (quick_run / "model" / "model.safetensors").is_file()
    assert (quick_run / "model" / "config.json").is_file()
    assert not list((quick_run / "model").rglob("*.bin")) and not list((quick_run / "model").rglob("*.pt"))


def test_metrics_hold_every_number_with_intervals(quick_run: Path) -> None:
    doc = json.loads((quick_run / "metrics.json").read_text())
    assert doc["quick"] is True and len(doc["heldout_classes"]) == 3
    combos = {(r["model"], r["data"], r["task"]) for r in doc["results"]}
    for model in ("lite-dual (before)", "lite-dual (LiT-aligned)"):
        for data, task in ((doc["dataset"], "zeroshot-classification"),
                           (f"{doc['dataset']}-heldout-classes", "zeroshot-classification"),
                           ("shapes", "retrieval"), ("shapes-heldout-combos", "retrieval")):
            assert (model, data, task) in combos
    for r in doc["results"]:
        for m in r["metrics"].values():
            assert m["low"] <= m["value"] <= m["high"]
    vqa = doc["fusion/vqa"]["metrics"]["accuracy"]
    assert 0.0 <= vqa["value"] <= 1.0
    assert set(doc["seconds"]) >= {"data", "before", "align", "after", "fusion", "total"}


def test_alignment_moves_zero_shot_above_chance(quick_run: Path) -> None:
    doc = json.loads((quick_run / "metrics.json").read_text())
    after = next(r for r in doc["results"] if r["model"] == "lite-dual (LiT-aligned)"
                 and r["data"] == doc["dataset"] and r["task"] == "zeroshot-classification")
    # 10 classes: chance is 0.1; alignment on 7 of them must lift the all-class accuracy clearly
    assert after["metrics"]["acc@1"]["low"] > 0.1
