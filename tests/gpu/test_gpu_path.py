"""The GPU path: training and ``encode`` on CUDA (skipped without a GPU), and the CPU dry run of
``benchmarks/gpu/run.sh``, which must stay complete while no GPU is at hand."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")


@pytest.mark.gpu
@needs_cuda
def test_training_on_cuda_resolves_auto_to_bf16(tmp_path: Path) -> None:
    from polymodal.config import config_from_dict
    from polymodal.data.builtin import make_dataset
    from polymodal.train import train
    from polymodal.train.run import choose_precision

    manifest = make_dataset("shapes", tmp_path / "shapes", n=48)
    cfg = config_from_dict({
        "model": {"preset": "tiny-dual", "kind": "dual"},
        "data": {"manifest": str(manifest), "batch_size": 8, "image": {"size": 64}},
        "objective": {"kind": "contrastive"},
        "train": {"epochs": 1, "lr": 1e-3, "log_every": 1, "progress": False, "mixed_precision": "auto"},
    })
    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    assert choose_precision(cfg).mixed_precision == expected

    result = train(cfg, tmp_path / "run")
    assert result.steps > 0
    decision = json.loads((tmp_path / "run" / "precision.json").read_text())
    assert (decision["device"], decision["mixed_precision"]) == ("cuda", expected)
    losses = [e["loss"] for e in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
              if e["event"] == "train" and "loss" in e]
    assert losses and all(math.isfinite(x) for x in losses)


@pytest.mark.gpu
@needs_cuda
def test_encode_on_cuda_matches_cpu(images: list, texts: list[str]) -> None:
    from polymodal.models.build import build_preset

    model = build_preset("tiny-dual")  # stays on the CPU: encode(device="cuda") runs a cached copy there
    for modality, items in (("text", texts), ("image", images)):
        cpu = model.encode(modality, items, bf16=False, device="cpu")
        cuda = model.encode(modality, items, bf16=False, device="cuda")
        # float32 both sides; cuDNN may run the ViT's patch convolution in TF32
        torch.testing.assert_close(cuda, cpu, rtol=1e-3, atol=1e-3)
        auto = model.encode(modality, items, device="cuda")  # bf16 on a GPU that has it
        assert torch.nn.functional.cosine_similarity(auto, cpu).min() > 0.99


def _load_bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu" / "bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _figures_or_reason(section: dict, keys: tuple[str, ...]) -> None:
    if "skipped" in section:
        assert isinstance(section["skipped"], str) and section["skipped"], section
        return
    assert "error" not in section, section
    for key in keys:
        assert isinstance(section[key], int | float) and section[key] > 0, (key, section)


@pytest.mark.slow
def test_dry_run_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    env = {**os.environ, "PYTHON": sys.executable}
    start = time.monotonic()
    proc = subprocess.run(["bash", "benchmarks/gpu/run.sh", "--dry-run", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    took = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"results written to {out}" in proc.stdout
    result = json.loads(out.read_text())

    assert result["dry_run"] is True and result["plan"]["device"] == "cpu"
    assert result["machine"]["torch"] == torch.__version__ and result["machine"]["cpu"]
    assert "skipped" in result["gpu_tests"]
    for impl in ("polymodal", "open_clip"):
        for mode in ("eager", "compiled"):
            section = result["train_step"][impl][mode]
            _figures_or_reason(section, ("steps_per_s", "samples_per_s", "ms_per_step"))
            if "skipped" not in section:
                assert math.isfinite(section["loss_first"]) and math.isfinite(section["loss_last"])
                assert section["config"]["autocast"] == "bfloat16" and section["config"]["text_tokens"] == 77
    # polymodal's own path always runs; open_clip may be absent, and then says so
    assert "samples_per_s" in result["train_step"]["polymodal"]["eager"]
    for mode in ("eager", "compiled"):
        _figures_or_reason(result["ratios"][mode], ("polymodal_over_open_clip",))
    for name in ("clip_text", "clip_image", "minilm_text"):
        _figures_or_reason(result["encode"][name], ("items_per_s", "preprocess_only_items_per_s"))
    assert took < 120, f"the dry run took {took:.0f} s"


def test_a_compile_that_runs_past_its_cap_is_recorded_and_killed(tmp_path: Path) -> None:
    bench = _load_bench()
    plan = bench.Plan(dry_run=True, device="cpu", batch=2, warmup=1, steps=1, image_size=32, compile=True,
                      compile_cap_s=2.0, encode_texts=2, encode_images=2, encode_batch=2)
    folder = bench.write_clip_folder(tmp_path / "clip", plan)
    # importing torch and compiling a training step on a CPU takes far longer than 2 s
    result = bench.run_child("polymodal", plan, folder, 2.0, tmp_path)
    assert "cap of 2 s" in result["skipped"]
