"""The one precision decision: a measured CPU probe (cached per machine), an override that
forces either branch on any machine, and every consumer (training, quickstart, examples,
``encode``) asking the same function."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from polymodal.runtime import precision as P

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Each test sees its own probe cache folder and no cached verdict in this process."""
    monkeypatch.setenv("POLYMODAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(P.OVERRIDE_ENV, raising=False)
    P._probe_for_process.cache_clear()
    P._warned.clear()
    yield
    P._probe_for_process.cache_clear()


def test_probe_measures_both_dtypes_and_caches_per_machine(tmp_path: Path) -> None:
    probe = P.cpu_probe()
    assert probe.source == "measured" and probe.fp32_gflops > 0 and probe.bf16_gflops > 0
    table = json.loads((tmp_path / "cache" / "cpu_probe.json").read_text())
    assert len(table) == 1 and next(iter(table.values()))["fp32_gflops"] == probe.fp32_gflops
    # a new process reads the verdict instead of timing again
    code = "from polymodal.runtime.precision import cpu_probe; p = cpu_probe(); print(p.source, p.bf16_fast)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "POLYMODAL_CACHE": str(tmp_path / "cache")}).stdout.split()
    assert out == ["cached", str(probe.bf16_fast)]


def test_unreadable_cache_is_measured_again(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "cpu_probe.json").write_text("{not json")
    assert P.cpu_probe().source == "measured"
    assert json.loads((tmp_path / "cache" / "cpu_probe.json").read_text())  # rewritten whole


def test_probe_agrees_with_what_this_cpu_does() -> None:
    """Whatever the CPU, the verdict follows the measured ratio, not the CPU's name."""
    probe = P.measure_cpu()
    assert probe.bf16_fast == (probe.bf16_gflops / probe.fp32_gflops >= P.MIN_BF16_SPEEDUP)


@pytest.mark.parametrize("forced, expected", [("native", "bf16"), ("emulated", "no")])
def test_override_forces_each_branch(monkeypatch: pytest.MonkeyPatch, forced: str, expected: str) -> None:
    monkeypatch.setenv(P.OVERRIDE_ENV, forced)
    decision = P.decide_precision("auto", "cpu")
    assert decision.mixed_precision == expected
    assert P.OVERRIDE_ENV in decision.reason and decision.probe is not None and decision.probe.source == "override"
    assert P.decide_precision("no", "cpu").mixed_precision == "no"


def test_bad_override_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(P.OVERRIDE_ENV, "maybe")
    with pytest.raises(P.TrainingError, match="native.*emulated"):
        P.decide_precision("auto", "cpu")


def test_explicit_bf16_on_an_emulating_cpu_warns_once_with_the_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(P.OVERRIDE_ENV, "emulated")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = P.decide_precision("bf16", "cpu")
        P.decide_precision("bf16", "cpu")
    assert first.mixed_precision == "bf16"  # honoured: the user asked for it
    slow = [w for w in caught if "without native bf16" in str(w.message)]
    assert len(slow) == 1 and "slower than float32" in str(slow[0].message) and "auto" in str(slow[0].message)


def test_fp16_on_a_cpu_and_unknown_values_are_refused() -> None:
    with pytest.raises(P.TrainingError, match="needs a GPU"):
        P.decide_precision("fp16", "cpu")
    with pytest.raises(P.TrainingError, match="auto, no, bf16 or fp16"):
        P.decide_precision("half", "cpu")


def test_decision_records_what_ran_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(P.OVERRIDE_ENV, "native")
    doc = P.decide_precision("auto", "cpu").to_json()
    assert doc["mixed_precision"] == "bf16" and doc["requested"] == "auto" and doc["probe"]["source"] == "override"
    json.dumps(doc)


# ----------------------------------------------------------------------------- consumers
def _configs() -> dict[str, object]:
    from polymodal.config import load_config
    from polymodal.quickstart import QUICK, align_config, fusion_config

    out: dict[str, object] = {
        "quickstart-align": align_config(Path("unused.jsonl"), QUICK),
        "quickstart-fusion": fusion_config(Path("unused.jsonl"), QUICK),
    }
    for name in ("text_classification", "image_classification", "clip_multimodal_classification", "tiny_contrastive"):
        out[name] = load_config(ROOT / "examples" / f"{name}.yaml")
    return out


def test_every_shipped_config_asks_for_auto() -> None:
    from polymodal.config import RunConfig

    assert RunConfig().train.mixed_precision == "auto"
    for name, cfg in _configs().items():
        assert cfg.train.mixed_precision == "auto", name  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.parametrize("forced", ["native", "emulated"])
def test_quickstart_and_example_models_resolve_by_the_probe(monkeypatch: pytest.MonkeyPatch, forced: str) -> None:
    """Emulated: float32 everywhere. Native: bf16, except where a convolutional tower trains."""
    from polymodal.models import build_model
    from polymodal.train.run import choose_precision
    from polymodal.train.strategies import apply_strategy

    monkeypatch.setenv(P.OVERRIDE_ENV, forced)
    configs = _configs()
    for name in ("quickstart-align", "quickstart-fusion", "image_classification"):
        cfg = configs[name]
        if name == "image_classification":  # the offline stand-in for the Hub ViT, as CI runs it
            cfg = cfg.model_copy(update={"model": cfg.model.model_copy(  # type: ignore[attr-defined]
                update={"preset": cfg.model.fallback, "towers": cfg.model.fallback_towers})})  # type: ignore[attr-defined]
        heads = {"answer": ["a", "b"]} if name == "quickstart-fusion" else {"label": ["a", "b"]}
        model = build_model(cfg.model, heads if cfg.model.kind != "dual" else {})  # type: ignore[attr-defined]
        apply_strategy(model, cfg.train)  # type: ignore[attr-defined]
        decision = choose_precision(cfg, model)  # type: ignore[arg-type]
        want = "no" if forced == "emulated" or name == "image_classification" else "bf16"
        assert decision.mixed_precision == want, (name, decision.reason)
        if name == "image_classification" and forced == "native":
            assert "not bf16-safe" in decision.reason


@pytest.mark.parametrize("forced", ["native", "emulated"])
def test_encode_follows_the_decision(monkeypatch: pytest.MonkeyPatch, forced: str) -> None:
    from polymodal.models.build import build_preset

    monkeypatch.setenv(P.OVERRIDE_ENV, forced)
    model = build_preset("tiny-dual")
    texts = ["a red circle", "two blue squares", "a green triangle left of a red square"]
    auto = model.encode_text(texts)
    fp32, bf16 = model.encode_text(texts, bf16=False), model.encode_text(texts, bf16=True)
    assert auto.dtype == torch.float32
    assert not torch.equal(fp32, bf16)  # the two paths differ, so the comparison below can fail
    assert torch.equal(auto, bf16 if forced == "native" else fp32)
    assert torch.nn.functional.cosine_similarity(fp32, bf16).min() > 0.99


@pytest.mark.slow
def test_runs_in_one_process_switch_precision_record_it_and_agree(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A bf16 run then a float32 run in one process (Accelerate keeps one precision per
    process unless told otherwise); each run dir says what ran and why; losses agree."""
    from polymodal.config import config_from_dict
    from polymodal.data.builtin import make_dataset
    from polymodal.train import train

    manifest = make_dataset("shapes", tmp_path / "shapes", n=64)
    cfg = config_from_dict({
        "model": {"preset": "tiny-dual", "kind": "dual"},
        "data": {"manifest": str(manifest), "batch_size": 16, "image": {"size": 32}},
        "train": {"epochs": 2, "lr": 1e-3, "log_every": 1, "progress": False},
    })
    losses = {}
    for forced, want in (("native", "bf16"), ("emulated", "no")):
        monkeypatch.setenv(P.OVERRIDE_ENV, forced)
        run = tmp_path / forced
        result = train(cfg, run)
        doc = json.loads((run / "precision.json").read_text())
        assert doc["mixed_precision"] == want and doc["requested"] == "auto" and P.OVERRIDE_ENV in doc["reason"]
        start = next(json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                     if json.loads(line).get("event") == "start")
        assert start["mixed_precision"] == want and start["precision"]["reason"] == doc["reason"]
        losses[forced] = result.final_metrics["val/loss"]
    assert losses["native"] == pytest.approx(losses["emulated"], rel=0.05)
