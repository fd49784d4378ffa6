"""One precision decision for training, the frozen-feature precompute, ``encode`` and evaluation.

CPUs differ more than their names suggest: one with AMX or AVX512-BF16 runs a bf16 matmul
2-4x faster than fp32, one with AVX2 only emulates bf16 at ~1% of its fp32 speed (measured
on a 2-core AMD EPYC: 0.8 vs 70 GFLOP/s). So on a CPU, ``auto`` picks bf16 only where a
short probe (a bf16 and an fp32 matmul of a transformer-layer shape, a few milliseconds)
shows bf16 clearly faster. The probe runs once per process and its result is kept on disk
per machine and torch version, so later processes read it instead of timing again.

``POLYMODAL_CPU_BF16=native|emulated`` replaces the probe's verdict (tests force both
branches with it; a user can too). On CUDA, ``auto`` is bf16 where the GPU has it, else fp16.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import torch

from polymodal.errors import TrainingError

MixedPrecision = Literal["no", "bf16", "fp16"]
OVERRIDE_ENV = "POLYMODAL_CPU_BF16"
# bf16 must beat fp32 by this much on the probe: autocast adds casts around every op, so a
# marginal matmul win is a loss for a whole training step
MIN_BF16_SPEEDUP = 1.3
# M x K @ K x N of one MiniLM/ViT-S feed-forward product (a batch of ~8 short sequences)
PROBE_SHAPE = (192, 384, 1536)
PROBE_VERSION = 1


@dataclass(frozen=True)
class CpuProbe:
    """What the probe saw: matmul throughput in fp32 and bf16 on this CPU, threads as set."""

    fp32_gflops: float
    bf16_gflops: float
    onednn_bf16: bool  # oneDNN's own claim (``_is_mkldnn_bf16_supported``), kept for the record
    source: Literal["measured", "cached", "override"]
    cpu: str

    @property
    def speedup(self) -> float:
        return self.bf16_gflops / self.fp32_gflops if self.fp32_gflops > 0 else 0.0

    @property
    def bf16_fast(self) -> bool:
        return self.speedup >= MIN_BF16_SPEEDUP

    def describe(self) -> str:
        if self.source == "override":
            return f"{OVERRIDE_ENV}={'native' if self.bf16_fast else 'emulated'}"
        return (f"probe ({self.source}): bf16 matmul {self.bf16_gflops:.1f} vs fp32 {self.fp32_gflops:.1f} "
                f"GFLOP/s = {self.speedup:.2f}x")


@dataclass(frozen=True)
class PrecisionDecision:
    """Which precision runs (Accelerate's vocabulary: ``no`` / ``bf16`` / ``fp16``) and why."""

    mixed_precision: MixedPrecision
    requested: str
    device: str
    reason: str
    probe: CpuProbe | None = None

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.mixed_precision)

    @property
    def bf16(self) -> bool:
        return self.mixed_precision == "bf16"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"mixed_precision": self.mixed_precision, "requested": self.requested,
                               "device": self.device, "reason": self.reason}
        if self.probe is not None:
            doc["probe"] = {**asdict(self.probe), "speedup": round(self.probe.speedup, 3)}
        return doc


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _machine_key() -> str:
    """CPU model + instruction-set flags + torch build: what a cached verdict is valid for."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                flags = line
                break
    except OSError:
        pass
    # oneDNN / ATen ISA caps change the verdict on the same CPU, so they are part of the key
    caps = [os.environ.get(k, "") for k in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")]
    text = "|".join([cpu_name(), flags, torch.__version__, platform.machine(), *caps, str(PROBE_VERSION)])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def probe_cache_dir() -> Path:
    base = os.environ.get("POLYMODAL_CACHE")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "polymodal"


def _onednn_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _gflops(dtype: torch.dtype, budget_s: float) -> float:
    m, k, n = PROBE_SHAPE
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=gen).to(dtype)
    b = torch.randn(k, n, generator=gen).to(dtype)
    with torch.inference_mode():
        torch.mm(a, b)  # warm-up: oneDNN builds its kernel on the first call
        calls, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= budget_s or calls >= 50:
                break
    return 2.0 * m * k * n * calls / elapsed / 1e9


def measure_cpu() -> CpuProbe:
    """Time the probe now (an emulated bf16 product takes ~50 ms; a native one well under 5 ms)."""
    fp32 = _gflops(torch.float32, 0.01)
    bf16 = _gflops(torch.bfloat16, 0.01)
    return CpuProbe(round(fp32, 2), round(bf16, 2), _onednn_bf16(), "measured", cpu_name())


def _override() -> CpuProbe | None:
    value = os.environ.get(OVERRIDE_ENV, "").strip().lower()
    if not value:
        return None
    if value in ("native", "1", "yes", "true"):
        return CpuProbe(1.0, 2.0, _onednn_bf16(), "override", cpu_name())
    if value in ("emulated", "0", "no", "false"):
        return CpuProbe(1.0, 0.01, _onednn_bf16(), "override", cpu_name())
    raise TrainingError(f"{OVERRIDE_ENV}={value!r}: use 'native' or 'emulated' (or unset it to measure)")


@lru_cache(maxsize=1)
def _probe_for_process() -> CpuProbe:
    path = probe_cache_dir() / "cpu_probe.json"
    key = _machine_key()
    try:
        cached = json.loads(path.read_text(encoding="utf-8")).get(key)
        if cached:
            return CpuProbe(**{**cached, "source": "cached"})
    except (OSError, ValueError, TypeError):
        pass
    probe = measure_cpu()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
            table = table if isinstance(table, dict) else {}
        except (OSError, ValueError):
            table = {}
        table[key] = asdict(probe)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, indent=1), encoding="utf-8")
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old table or the new one
    except OSError:
        pass  # a read-only home only costs re-measuring in the next process
    return probe


_probe_lock = threading.Lock()


def cpu_probe() -> CpuProbe:
    """This CPU's bf16 verdict: the override if set, else the cached or freshly measured probe."""
    override = _override()
    if override is not None:
        return override
    with _probe_lock:  # concurrent first callers wait for one measurement instead of timing at once
        return _probe_for_process()


def cpu_bf16_fast() -> bool:
    return cpu_probe().bf16_fast


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def decide_precision(requested: str = "auto", device: str | torch.device | None = None) -> PrecisionDecision:
    """The precision a run on ``device`` uses for ``requested`` (``auto``, ``no``, ``bf16``, ``fp16``)."""
    if requested not in ("auto", "no", "bf16", "fp16"):
        raise TrainingError(f"mixed_precision={requested!r}: use auto, no, bf16 or fp16")
    dev = torch.device(device) if device is not None else \
        torch.device("cuda" if torch.cuda.is_available() else "cpu")
    where = dev.type
    if where == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if requested == "auto":
            mp: MixedPrecision = "bf16" if bf16_ok else "fp16"
            return PrecisionDecision(mp, requested, where, f"auto on CUDA: {'bf16 supported' if bf16_ok else 'no bf16: fp16'}")
        return PrecisionDecision(requested, requested, where, "set in the config")  # type: ignore[arg-type]
    if where != "cpu":
        chosen: MixedPrecision = "no" if requested == "auto" else requested  # type: ignore[assignment]
        return PrecisionDecision(chosen, requested, where, f"{where}: float32 unless asked otherwise")
    if requested == "fp16":
        raise TrainingError("mixed_precision=fp16 needs a GPU; on a CPU use auto (bf16 where it is fast) or no")
    if requested == "no":
        return PrecisionDecision("no", requested, where, "float32: set in the config")
    probe = cpu_probe()
    if requested == "auto":
        if probe.bf16_fast:
            return PrecisionDecision("bf16", requested, where, f"auto: bf16 is native here ({probe.describe()})", probe)
        return PrecisionDecision("no", requested, where, f"auto: bf16 is not faster here, float32 ({probe.describe()})", probe)
    # bf16 asked for explicitly: honoured, but a CPU that emulates it gets told what it costs
    if not probe.bf16_fast:
        slowdown = f"{1 / probe.speedup:.0f}x slower" if probe.speedup > 0 else "much slower"
        _warn_once("bf16-slow", f"mixed_precision=bf16 on a CPU without native bf16: its matmuls ran {slowdown} "
                   f"than float32 here ({probe.describe()}); use mixed_precision: auto")
        return PrecisionDecision("bf16", requested, where, f"bf16 set in the config; not native here ({probe.describe()})", probe)
    return PrecisionDecision("bf16", requested, where, f"bf16 set in the config ({probe.describe()})", probe)
