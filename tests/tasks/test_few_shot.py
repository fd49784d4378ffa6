"""Few-shot task: K per class over seeded draws, prototype / linear probe / zero-shot prior, compare, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from planted_models import PlantedEncoder, write_manifest
from typer.testing import CliRunner

from polymodal.cli.main import app
from polymodal.errors import DataError
from polymodal.tasks import compare, evaluate
from polymodal.tasks.few_shot import draw_support, t_interval

NAMES = ["circle", "square", "star"]


def _data(tmp_path: Path, signal: float, name: str = "fs") -> tuple[PlantedEncoder, Path]:
    """3 classes, 12 support rows and 20 test rows each; image = signal * centre + noise.
    Class prompts point at the centres (a perfect zero-shot prior)."""
    rng = np.random.default_rng(1)
    centres = np.eye(3, 6, dtype=np.float32)
    media, rows = {}, []
    for split, per_class in (("train", 12), ("test", 20)):
        for c in range(3):
            for j in range(per_class):
                file = f"{split}-{c}-{j}.png"
                media[file] = signal * centres[c] + rng.normal(scale=0.4, size=6).astype(np.float32)
                rows.append({"id": file, "split": split, "image": file, "label": NAMES[c]})
    model = PlantedEncoder({n: centres[i] for i, n in enumerate(NAMES)}, media, extra_dims=0)
    return model, write_manifest(tmp_path / f"{name}-{signal}", rows)


def test_draws_are_seeded_per_class_and_short_classes_are_named() -> None:
    labels = np.array([0] * 5 + [1] * 3)
    a = draw_support(labels, ["a", "b"], 3, seed=4, where="x")
    assert np.array_equal(a, draw_support(labels, ["a", "b"], 3, seed=4, where="x"))
    assert sorted(labels[a].tolist()) == [0, 0, 0, 1, 1, 1] and len(set(a.tolist())) == 6
    assert not np.array_equal(a, draw_support(labels, ["a", "b"], 3, seed=5, where="x"))
    with pytest.raises(DataError, match="x: class 'b' has 3 labelled rows, fewer than 4 shots"):
        draw_support(labels, ["a", "b"], 4, seed=0, where="x")
    mean, low, high = t_interval([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6) and high - mean == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-5)
    assert t_interval([0.4]) == (0.4, 0.4, 0.4)


def test_separable_features_are_learned_from_few_shots_noise_is_not(tmp_path: Path) -> None:
    model, manifest = _data(tmp_path, signal=2.0)
    r = evaluate(model, "few-shot", manifest, shots=[1, 5], draws=4, prior=False)
    assert set(r.metrics) == {f"{m}/{k}-shot/accuracy" for m in ("prototype", "linear-probe") for k in (1, 5)}
    assert r.metrics["prototype/5-shot/accuracy"].value >= 0.9
    assert r.metrics["linear-probe/5-shot/accuracy"].value >= 0.9
    per_draw = r.details["accuracy_per_draw"]["prototype/1-shot/accuracy"]
    assert len(per_draw) == 4 and r.metrics["prototype/1-shot/accuracy"].value == pytest.approx(np.mean(per_draw))
    m = r.metrics["prototype/1-shot/accuracy"]
    assert m.low <= m.value <= m.high and m.n == 60
    noise_model, noise = _data(tmp_path, signal=0.0)
    n = evaluate(noise_model, "few-shot", noise, shots=5, draws=3, prior=False)
    assert n.metrics["prototype/5-shot/accuracy"].value < 0.6


def test_prompt_prior_spans_zero_shot_and_prototype(tmp_path: Path) -> None:
    model, manifest = _data(tmp_path, signal=0.6)
    tmpl = ["a {}."]
    zs = evaluate(model, "zeroshot-classification", manifest, templates=tmpl, bootstrap=0).metrics["acc@1"].value

    def prior(weight: float) -> float:
        r = evaluate(model, "few-shot", manifest, shots=1, draws=3, prior=True, prior_weight=weight, templates=tmpl,
                     methods=["prototype", "zeroshot-prior"])
        return r.metrics["zeroshot-prior/1-shot/accuracy"].value, r.metrics["prototype/1-shot/accuracy"].value

    all_prior, proto = prior(1e9)
    assert all_prior == pytest.approx(zs)  # prompts only: the zero-shot answer on every draw
    no_prior, proto0 = prior(1e-9)
    assert no_prior == pytest.approx(proto0)  # images only: the prototype's answer
    mixed, _ = prior(1.0)
    assert mixed > proto  # one noisy shot per class gains from a perfect prior


def test_compare_ranks_models_on_few_shot_with_paired_tests(tmp_path: Path) -> None:
    good, manifest = _data(tmp_path, signal=2.0)
    good.name = "good"
    poor, _ = _data(tmp_path, signal=0.3, name="poor")
    poor.name = "poor"
    # the poor model's own planted table, keyed by the same file names as the manifest's
    board = compare([good, poor], ["few-shot"], [manifest], tmp_path / "board", bootstrap=200,
                    task_opts={"few-shot": {"shots": [5], "draws": 3, "prior": False}})
    col = "few-shot: prototype/5-shot/accuracy"
    assert board.best(col) == "good"
    assert board.paired[col].diff > 0.3 and board.paired[col].p_value < 0.01
    assert col in json.loads((tmp_path / "board" / "leaderboard.json").read_text())["paired"]["tests"]


def test_cli_few_shot_on_a_real_tiny_model(tmp_path: Path, shapes_dir: Path) -> None:
    manifest = shapes_dir / "manifest.jsonl"
    out = tmp_path / "fs.json"
    res = CliRunner().invoke(app, ["eval", "tiny-dual", "--task", "few-shot", "--data", str(manifest), "--shots", "1",
                                   "--shots", "2", "--draws", "2", "--label-column", "shape", "--out", str(out), "--no-cache", "--json"])
    assert res.exit_code == 0, res.output
    saved = json.loads(out.read_text())
    assert saved["details"]["shots"] == [1, 2] and saved["details"]["draws"] == 2
    # a dual encoder with a text tower gets the prompt prior without asking
    assert {"prototype/2-shot/accuracy", "linear-probe/2-shot/accuracy", "zeroshot-prior/2-shot/accuracy"} <= set(saved["metrics"])
    bad = CliRunner().invoke(app, ["eval", "tiny-dual", "--task", "linear-probe", "--data", str(manifest), "--shots", "1"])
    assert bad.exit_code == 2 and "--task few-shot only" in bad.output
