"""CLIP ViT-B/32 training step, polymodal vs open_clip (bf16 autocast, eager and torch.compile),
and ``encode`` throughput on a CUDA GPU; ``--dry-run`` runs the same code on the CPU at tiny sizes.

Same towers and batch on both sides: polymodal trains a random-init transformers ``CLIPModel``
(ViT-B/32 config) saved to a folder and loaded through ``polymodal.load`` (the path a hub CLIP
takes), with its own contrastive objective; open_clip trains its ``ViT-B-32`` (QuickGELU, as
the HF config) with ``ClipLoss``. Both see the same images and token ids, the same fused AdamW,
the same ``torch.autocast(dtype=bfloat16)``. No weights are downloaded anywhere.

torch.compile'd runs go to a child process with a time cap: a compile that runs long is killed
and recorded as skipped instead of eating the whole time budget. Normally started by run.sh:

    python benchmarks/gpu/bench.py [--dry-run] [--out PATH] [--no-compile | --compile] [--batch N]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

SOT, EOT, CONTEXT = 49406, 49407, 77  # CLIP's start/end-of-text ids and context length
_CAPTION_WORDS = """a an the one two photo picture drawing of small large red blue green black white old young
dog cat bird horse car bus bike boat man woman child table chair street grass beach room sky on in with near under
and is sitting running parked standing"""
WORDS = _CAPTION_WORDS.split()  # the captions' vocabulary, and the tokenizer's
# open_clip's ViT-B/32 recipe; the same optimizer object type and settings on both sides
ADAMW = {"lr": 5e-4, "betas": (0.9, 0.98), "eps": 1e-6, "weight_decay": 0.2}


@dataclass(frozen=True)
class Plan:
    dry_run: bool
    device: str
    batch: int
    warmup: int
    steps: int
    image_size: int
    compile: bool
    compile_cap_s: float
    encode_texts: int
    encode_images: int
    encode_batch: int


def make_plan(args: argparse.Namespace) -> Plan:
    dry = bool(args.dry_run)
    return Plan(
        dry_run=dry, device="cpu" if dry else "cuda",
        batch=args.batch or (4 if dry else 256), warmup=args.warmup or (1 if dry else 20),
        steps=args.steps or (2 if dry else 50), image_size=32 if dry else 224,
        # compile on a 2-core CPU takes minutes: a dry run compiles only when asked to
        compile=(args.compile if dry else not args.no_compile) and not args.no_compile,
        compile_cap_s=args.compile_cap, encode_texts=16 if dry else 4096,
        encode_images=8 if dry else 1024, encode_batch=8 if dry else 256,
    )


# ------------------------------------------------------------------ models and data
def clip_tokenizer() -> Any:
    """A word-level tokenizer that ends every text with CLIP's <|endoftext|> (49407), where HF's
    CLIP text model pools. Built in code: the packaged MiniLM tokenizer the tests use is an 88 MB
    package that cannot travel to the GPU machine, and nothing can be downloaded there."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i + 1 for i, w in enumerate(WORDS)} | {"[UNK]": 0, "<|startoftext|>": SOT, "<|endoftext|>": EOT}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", SOT), ("<|endoftext|>", EOT)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", unk_token="[UNK]", model_max_length=CONTEXT)


def hf_clip_config(plan: Plan) -> Any:
    import transformers as tf

    if not plan.dry_run:
        return tf.CLIPConfig()  # the defaults are OpenAI's ViT-B/32 (151,277,313 parameters)
    common = {"hidden_size": 32, "intermediate_size": 128, "num_attention_heads": 2, "num_hidden_layers": 2}
    return tf.CLIPConfig(text_config=common, vision_config={**common, "image_size": plan.image_size, "patch_size": 8},
                         projection_dim=16)


def open_clip_model(plan: Plan) -> Any:
    import open_clip

    if not plan.dry_run:
        return open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True, output_dict=True)
    # the dry run's tiny config, the same shape as hf_clip_config's
    vision = {"image_size": plan.image_size, "patch_size": 8, "width": 32, "layers": 2, "head_width": 16}
    text = {"context_length": CONTEXT, "vocab_size": EOT + 1, "width": 32, "heads": 2, "layers": 2}
    return open_clip.CLIP(embed_dim=16, vision_cfg=vision, text_cfg=text, quick_gelu=True, output_dict=True)


def write_clip_folder(folder: Path, plan: Plan) -> Path:
    """A random-init HF CLIP folder (weights, tokenizer, processor), as the tests make at tiny size."""
    import transformers as tf

    torch.manual_seed(0)
    tf.CLIPModel(hf_clip_config(plan)).save_pretrained(folder)
    clip_tokenizer().save_pretrained(folder)
    s = plan.image_size
    tf.CLIPImageProcessor(size={"shortest_edge": s}, crop_size={"height": s, "width": s}).save_pretrained(folder)
    return folder


def make_batch(plan: Plan, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and full-length token ids (open_clip pads every text to 77), EOT last on every row."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(plan.batch, 3, plan.image_size, plan.image_size, generator=gen)
    ids = torch.randint(1, SOT, (plan.batch, CONTEXT), generator=gen)
    ids[:, -1] = EOT  # HF pools at the first EOT, open_clip at the largest id: the same position
    return images.to(dev), ids.to(dev)


def sentences(n: int) -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))) for _ in range(n)]


def pictures(n: int, size: int) -> list[Any]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)  # larger than the input size, so the processor resizes and crops
    return [Image.fromarray(rng.integers(0, 255, (size + 32, size + 64, 3), dtype=np.uint8)) for _ in range(n)]


# ------------------------------------------------------------------ training step
def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def trainer(impl: str, plan: Plan, folder: Path, dev: torch.device, compiled: bool) -> tuple[Callable[[], torch.Tensor], dict[str, Any]]:
    """One training step of ``impl`` as a closure, and the config it runs."""
    images, ids = make_batch(plan, dev)
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16)
    model: Any
    if impl == "polymodal":
        import polymodal
        from polymodal.config import ContrastiveConfig
        from polymodal.objectives import build_objective

        model = polymodal.load(str(folder)).to(dev).train()
        objective = build_objective(ContrastiveConfig(), model)
        batch = {"image": images, "text": {"input_ids": ids, "attention_mask": torch.ones_like(ids)}}
        desc = {"model": "polymodal.load(random-init transformers CLIPModel folder) -> WrappedDualEncoder",
                "objective": "polymodal ContrastiveLoss (build_objective kind=contrastive)",
                "attn_implementation": model.hf_config._attn_implementation}
    else:
        import open_clip

        torch.manual_seed(0)
        model = open_clip_model(plan).to(dev).train()
        loss_fn = open_clip.ClipLoss()
        desc = {"model": "open_clip " + ("ViT-B-32 (QuickGELU)" if not plan.dry_run else "CLIP (tiny dry-run config)"),
                "objective": "open_clip ClipLoss", "open_clip": open_clip.__version__}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, **ADAMW, fused=True)  # type: ignore[arg-type]
    run = torch.compile(model) if compiled else model

    def step() -> torch.Tensor:
        with autocast:
            if impl == "polymodal":
                loss = objective(run(batch), batch).loss
            else:
                out = run(images, ids)
                loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if impl == "open_clip":  # open_clip_train clamps the temperature after each step
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
        return loss.detach()

    desc |= {"params": sum(p.numel() for p in params), "batch": plan.batch, "image_size": plan.image_size,
             "text_tokens": CONTEXT, "autocast": "bfloat16", "optimizer": {"AdamW": {**ADAMW, "fused": True}},
             "compiled": compiled, "device": str(dev)}
    return step, desc


def measure_train(impl: str, plan: Plan, folder: Path, compiled: bool) -> dict[str, Any]:
    dev = torch.device(plan.device)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    step, config = trainer(impl, plan, folder, dev, compiled)
    sync(dev)
    t0 = time.perf_counter()
    first = step()  # the compile happens here
    sync(dev)
    first_s = time.perf_counter() - t0
    for _ in range(plan.warmup - 1):
        step()
    sync(dev)
    warm_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    for _ in range(plan.steps):
        last = step()
    sync(dev)
    elapsed = time.perf_counter() - t1
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
    result = {
        "config": config, "warmup_steps": plan.warmup, "timed_steps": plan.steps,
        "steps_per_s": round(plan.steps / elapsed, 3), "samples_per_s": round(plan.steps * plan.batch / elapsed, 1),
        "ms_per_step": round(1000 * elapsed / plan.steps, 2), "first_step_s": round(first_s, 2),
        "warmup_s": round(warm_s, 2), "loss_first": round(float(first), 4), "loss_last": round(float(last), 4),
        "peak_memory_gib": round(peak, 2) if peak is not None else None,
    }
    if peak is None:
        result["peak_memory_note"] = "CUDA only"
    return result


def run_child(impl: str, plan: Plan, folder: Path, timeout_s: float, work: Path) -> dict[str, Any]:
    """measure_train(compiled=True) in a fresh process, killed at ``timeout_s``."""
    spec, out, log = work / f"{impl}.spec.json", work / f"{impl}.result.json", work / f"{impl}.log"
    spec.write_text(json.dumps({"impl": impl, "plan": asdict(plan), "folder": str(folder), "out": str(out)}))
    with log.open("w") as fh:
        # its own process group: inductor compiles in worker processes, which must die with it
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(spec)], stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return {"skipped": f"torch.compile run did not finish within its cap of {timeout_s:.0f} s "
                               "(--compile-cap, or the time budget left)"}
    if proc.returncode != 0 or not out.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        return {"error": f"child exited {proc.returncode}", "log_tail": tail}
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def guarded(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``fn()``, or its error: one failing measurement must not cost the others' figures."""
    try:
        return fn()
    except Exception as exc:  # recorded in the result; main() then exits 3
        lines = traceback.format_exc().strip().splitlines()[-8:]
        return {"error": f"{type(exc).__name__}: {exc}"[:500], "traceback_tail": lines}


def free(dev: str) -> None:
    gc.collect()
    if dev == "cuda":
        torch.cuda.empty_cache()


# ------------------------------------------------------------------ encode
def timed_encode(model: Any, modality: str, items: list[Any], plan: Plan) -> dict[str, Any]:
    tower = model.tower(modality)
    model.encode(modality, items[: plan.encode_batch], batch_size=plan.encode_batch, device=plan.device)  # warm-up
    t0 = time.perf_counter()
    tower.preprocess(items)  # the CPU's share: tokenising / resizing alone
    prep_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = model.encode(modality, items, batch_size=plan.encode_batch, device=plan.device)
    elapsed = time.perf_counter() - t0  # encode returns CPU tensors, so the GPU is done here
    return {"items": len(items), "batch_size": plan.encode_batch, "device": plan.device, "dim": int(out.shape[1]),
            "items_per_s": round(len(items) / elapsed, 1), "seconds": round(elapsed, 3),
            "preprocess_only_items_per_s": round(len(items) / prep_s, 1)}


def measure_encode(plan: Plan, folder: Path) -> dict[str, Any]:
    import polymodal
    from polymodal.runtime.precision import decide_precision

    decision = decide_precision("auto", plan.device)  # what encode picks for bf16-safe towers
    clip = polymodal.load(str(folder))
    texts = sentences(plan.encode_texts)
    result: dict[str, Any] = {
        "precision": {"auto": decision.mixed_precision, "reason": decision.reason},
        "clip_text": {"model": "random-init CLIP text tower (polymodal.load folder)", **timed_encode(clip, "text", texts, plan)},
        "clip_image": {"model": "random-init CLIP vision tower (polymodal.load folder)",
                       **timed_encode(clip, "image", pictures(plan.encode_images, plan.image_size), plan)},
    }
    del clip
    free(plan.device)
    try:  # the packaged all-MiniLM-L6-v2 (an 88 MB package, absent on machines that cannot install it)
        minilm = polymodal.load("minilm")
    except Exception as exc:  # any loading failure is a skip, with its reason
        result["minilm_text"] = {"skipped": f"minilm preset not loadable here: {type(exc).__name__}: {exc}"[:300]}
    else:
        result["minilm_text"] = {"model": "minilm preset (all-MiniLM-L6-v2)", **timed_encode(minilm, "text", texts, plan)}
    return result


# ------------------------------------------------------------------ report
def machine_info(plan: Plan) -> dict[str, Any]:
    import transformers

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "transformers": transformers.__version__, "cuda": torch.version.cuda,
                            "cpu": _cpu_name(), "cpu_threads": torch.get_num_threads()}
    try:
        import open_clip

        info["open_clip"] = open_clip.__version__
    except ImportError:
        info["open_clip"] = None
    if plan.device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def ratios(train: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("eager", "compiled"):
        ours, theirs = train["polymodal"].get(mode, {}), train["open_clip"].get(mode, {})
        if "samples_per_s" in ours and "samples_per_s" in theirs:
            out[mode] = {"polymodal_over_open_clip": round(ours["samples_per_s"] / theirs["samples_per_s"], 3)}
        else:
            missing = "polymodal" if "samples_per_s" not in ours else "open_clip"
            out[mode] = {"skipped": f"no {mode} {missing} figure: " + str((ours if missing == "polymodal" else theirs)
                                                                          .get("skipped") or "see train_step")}
    return out


def gpu_tests(args: argparse.Namespace) -> dict[str, Any]:
    if args.tests_rc is None:
        return {"skipped": "dry run: not run (GPU tests skip without CUDA)" if args.dry_run else "not run (run.sh runs them)"}
    lines = [ln for ln in Path(args.tests_log).read_text(errors="replace").splitlines() if ln.strip()] if args.tests_log else []
    return {"command": "python -m pytest -q -m gpu tests/gpu", "exit_code": args.tests_rc,
            "summary": lines[-1] if lines else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, seconds")
    p.add_argument("--out", help="result JSON (default benchmarks/gpu/result.json; a temp folder in a dry run)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile runs")
    p.add_argument("--compile", action="store_true", help="also compile in a dry run (slow on a CPU)")
    p.add_argument("--compile-cap", type=float, default=180.0, help="seconds one compiled run may take")
    p.add_argument("--budget-s", type=float, default=420.0, help="seconds this whole script may take")
    p.add_argument("--batch", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--tests-rc", type=int, help=argparse.SUPPRESS)
    p.add_argument("--tests-log", help=argparse.SUPPRESS)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:  # one compiled measurement, for run_child
        spec = json.loads(Path(args.child).read_text())
        res = measure_train(spec["impl"], Plan(**spec["plan"]), Path(spec["folder"]), compiled=True)
        Path(spec["out"]).write_text(json.dumps(res))
        return 0

    start = time.perf_counter()
    plan = make_plan(args)
    if plan.device == "cuda" and not torch.cuda.is_available():
        print("bench.py: no CUDA GPU here; use --dry-run for the CPU check", file=sys.stderr)
        return 2
    out = Path(args.out or (Path(tempfile.gettempdir()) / "polymodal-gpu-dry-run" / "result.json" if plan.dry_run
                            else Path(__file__).with_name("result.json")))
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        import open_clip  # noqa: F401
        has_open_clip = True
    except ImportError:
        has_open_clip = False
    no_open_clip = {"skipped": "open_clip not installed (pip install open_clip_torch)"}
    result: dict[str, Any] = {
        "benchmark": "benchmarks/gpu", "dry_run": plan.dry_run, "command": " ".join(sys.argv),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "git_commit": _git_commit(),
        "machine": machine_info(plan), "plan": asdict(plan), "gpu_tests": gpu_tests(args),
    }
    train: dict[str, dict[str, Any]] = {"polymodal": {}, "open_clip": {}}
    impls = ["polymodal", "open_clip"] if has_open_clip else ["polymodal"]
    with tempfile.TemporaryDirectory(prefix="polymodal-gpu-bench-") as tmp:
        folder = write_clip_folder(Path(tmp) / "clip", plan)
        for impl in impls:  # eager first: cheap, and the figure that matters most
            print(f"train step, {impl}, eager ...", flush=True)
            train[impl]["eager"] = guarded(partial(measure_train, impl, plan, folder, compiled=False))
            free(plan.device)
        print("encode ...", flush=True)
        result["encode"] = guarded(lambda: measure_encode(plan, folder))
        free(plan.device)
        for n, impl in enumerate(impls):
            if not plan.compile:
                why = "--no-compile" if args.no_compile else "dry run: not compiled (pass --compile to try it on the CPU)"
                train[impl]["compiled"] = {"skipped": why}
                continue
            left = args.budget_s - (time.perf_counter() - start) - 10  # 10 s to write the result
            share = left / (len(impls) - n)  # the time left, shared fairly by the compiled runs to come
            if share < 30:
                train[impl]["compiled"] = {"skipped": f"time budget spent ({left:.0f} s left of --budget-s {args.budget_s:.0f})"}
                continue
            cap = min(plan.compile_cap_s, share)
            print(f"train step, {impl}, torch.compile (cap {cap:.0f} s) ...", flush=True)
            train[impl]["compiled"] = run_child(impl, plan, folder, cap, Path(tmp))
    if not has_open_clip:
        train["open_clip"] = {"eager": no_open_clip, "compiled": no_open_clip}
    result["train_step"] = train
    result["ratios"] = ratios(train)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"train_step": {i: {m: v.get("samples_per_s", v.get("skipped") or v.get("error"))
                                         for m, v in d.items()} for i, d in train.items()},
                      "ratios": result["ratios"], "wall_s": result["wall_s"]}, indent=1))
    print(f"results: {out}")
    failed = [f"{i}/{m}" for i, d in train.items() for m, v in d.items() if "error" in v]
    failed += ["encode"] if "error" in result["encode"] else []
    if failed:
        print(f"bench.py: failed: {', '.join(failed)} (errors recorded in the result)", file=sys.stderr)
    return 3 if failed else 0  # 3: written, with failed measurements (run.sh tells it apart)


if __name__ == "__main__":
    sys.exit(main())
