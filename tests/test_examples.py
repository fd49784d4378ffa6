"""The three worked examples (examples/*.yaml): each loads and validates when pointed at a
manifest with ``--set data.manifest=PATH``, and each runs end to end offline through the real
CLI (train for two steps on a tiny built-in set, then ``polymodal eval``), falling back from
its Hub preset to the packaged stand-in."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from polymodal.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# name -> (hub preset, offline fallback, model kind, label column)
EXPECTED = {
    "clip_multimodal_classification": ("clip-vit-b32", "lite-dual", "fusion", "answer"),
    "text_classification": ("bert-base-cased", "minilm", "classifier", "label"),
    "image_classification": ("vit-base-in21k", "efficientnet-lite0", "classifier", "label"),
}
# tiny data per example: (built-in dataset, rows, Debian path it needs or None)
DATA = {
    "clip_multimodal_classification": ("shapes", 40, None),
    "text_classification": ("wordnet", 140, Path("/usr/share/wordnet/data.noun")),
    "image_classification": ("fashion-mnist", 100, Path("/usr/share/datasets/fashion-mnist")),
}
# a 32 px EfficientNet keeps the two-step runs to seconds (the examples' own sizes are
# what the measured results in their headers used)
SMALL_IMAGE = "[{modality: image, source: efficientnet-lite0, options: {image_size: 32}}]"


def _path(name: str) -> Path:
    return EXAMPLES / f"{name}.yaml"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_validates_with_a_manifest_override(name: str, tmp_path: Path) -> None:
    manifest = tmp_path / "mine" / "manifest.jsonl"
    cfg = load_config(_path(name), [f"data.manifest={manifest}"])
    preset, fallback, kind, label = EXPECTED[name]
    assert cfg.data.manifest == str(manifest)
    assert (cfg.model.preset, cfg.model.fallback, cfg.model.kind) == (preset, fallback, kind)
    assert label in cfg.model.heads
    assert cfg.objective.kind == "classification"
    # the file itself points at no data: the user's manifest always comes from --set
    assert load_config(_path(name)).data.manifest is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_header_says_how_to_run_it_and_what_it_reached(name: str) -> None:
    header = "".join(line for line in _path(name).read_text(encoding="utf-8").splitlines(keepends=True)
                     if line.startswith("#"))
    assert f"polymodal train examples/{name}.yaml" in header
    assert "--set data.manifest=" in header
    assert "polymodal eval" in header
    # a measured accuracy and a wall time, not a placeholder
    assert re.search(r"Result here.*\n(#.*\n)*#.*accuracy \d+\.\d%", header), header
    assert re.search(r"\d+ min|\d+ s\b", header), header


def test_example_with_a_wrong_key_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.manifests: unknown key"):
        load_config(_path("text_classification"), [f"data.manifests={tmp_path / 'm.jsonl'}"])


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"  # the Hub preset must fail fast so the fallback is what runs
    return subprocess.run([sys.executable, "-m", "polymodal.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_example_without_a_manifest_says_so() -> None:
    proc = _cli("train", str(_path("text_classification")), "--out", "/nonexistent/never-written")
    assert proc.returncode == 2, proc.stderr
    assert "data.manifest is not set" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def _make(name: str, out: Path) -> Path:
    from polymodal.data.builtin import make_dataset

    dataset, rows, needs = DATA[name]
    if needs is not None and not needs.exists():
        pytest.skip(f"{dataset} needs {needs} (Debian package)")
    return make_dataset(dataset, out, n=rows)


def _metric(metrics: dict[str, Any], key: str) -> float:
    value = metrics[key]
    return float(value["value"] if isinstance(value, dict) else value)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_end_to_end_offline(name: str, tmp_path: Path) -> None:
    manifest = _make(name, tmp_path / "data")
    run = tmp_path / "run"
    sets = [f"data.manifest={manifest}", "train.max_steps=2", "data.batch_size=4", "data.eval_batch_size=8",
            "data.limit=16", "train.progress=false", "train.epochs=1", "train.log_every=1"]
    if name == "image_classification":  # its offline tower comes from model.fallback_towers
        sets.append(f"model.fallback_towers={SMALL_IMAGE}")
    elif name != "text_classification":
        sets.append(f"model.towers={SMALL_IMAGE}")
    proc = _cli("train", str(_path(name)), *[f"--set={s}" for s in sets], "--out", str(run))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    preset, fallback, _, label = EXPECTED[name]
    assert f"using model.fallback {fallback!r}" in proc.stderr
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "train"] == [1, 2]
    assert [e["step"] for e in events if e["event"] == "end"] == [2]
    assert (run / "model").is_dir()

    proc = _cli("eval", str(run), "--task", "classification", "--data", str(manifest), "--split", "test",
                "--label-column", label, "--json", "--bootstrap", "50", "--no-cache")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    metrics = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert 0.0 <= _metric(metrics, "accuracy") <= 1.0
    assert 0.0 <= _metric(metrics, "macro_f1") <= 1.0
    result = json.loads(next((run / "eval").glob("classification-*-test.json")).read_text())
    test_rows = sum(1 for line in manifest.read_text().splitlines() if json.loads(line)["split"] == "test")
    assert result["details"]["n"] == test_rows
    report = result["details"]["report"]  # scikit-learn's classification report, per class
    assert {"accuracy", "macro avg"} <= set(report)
    assert abs(report["accuracy"] - _metric(metrics, "accuracy")) < 1e-9


def test_image_example_gives_a_small_dataset_enough_steps_and_fashion_mnist_the_same() -> None:
    """Issue #17: on a 1,438-image digits tree the example's 2 epochs were 44 steps (0.872 test
    accuracy even with BatchNorm fixed); 5 epochs (110 steps) reached 0.956. Fashion-MNIST's
    measured run (2 epochs = 1,718 steps, a cosine over 1,718) must stay as it was."""
    cfg = load_config(_path("image_classification"), ["data.manifest=unused.jsonl"])
    tc, bs = cfg.train, cfg.data.batch_size

    def steps(train_rows: int) -> int:
        total = (train_rows // bs) * tc.epochs
        return min(total, tc.max_steps) if tc.max_steps else total

    assert steps(1438) >= 110
    assert steps(55000) == 1718


# the hear-and-watch examples (issue #15): model kind, objective, and a measured result in the header
HEAR_WATCH = {
    "speech_recognition": ("ctc", "ctc", r"WER \d\.\d+ \["),
    "text_audio_alignment": ("dual", "contrastive", r"R@1 0\.000 \[0\.000, 0\.000\] before -> 0\.\d+ \["),
    "text_video_alignment": ("dual", "swap-contrastive", r"0\.\d+ \[0\.\d+, 0\.\d+\]"),
}


@pytest.mark.parametrize("name", sorted(HEAR_WATCH))
def test_hear_watch_example_loads_and_records_its_result(name: str, tmp_path: Path) -> None:
    kind, objective, result = HEAR_WATCH[name]
    cfg = load_config(_path(name), [f"data.manifest={tmp_path / 'm.jsonl'}"])
    assert (cfg.model.kind, cfg.objective.kind) == (kind, objective)
    header = "".join(line for line in _path(name).read_text(encoding="utf-8").splitlines(keepends=True)
                     if line.startswith("#"))
    assert f"polymodal train examples/{name}.yaml" in header and "Result here" in header
    assert re.search(result, header), header
    assert re.search(r"\d+ min", header), header
