"""The compression trade-off table: size, speed, agreement and accuracy of a model and its variants.

``tradeoff({"fp32": path, "int8": path, ...}, out_dir, zeroshot=MANIFEST, retrieval=MANIFEST)``
measures every variant in the same process, on the same items:

- size on disk (every file of the folder) and parameters (tensor elements; an ONNX graph's
  initializers);
- latency per item at batch 1 and throughput at batch 64 (items/s), per tower: every variant is
  loaded and warmed (``warm_up``, at most ``warm`` passes), then all are timed in turns over
  ``max(3, repeats)`` rounds (the order rotated each round), each figure the median over rounds;
- min / mean cosine of each variant's embeddings to the first variant's (the original);
- zero-shot acc@1 and retrieval R@1 with bootstrap 95% intervals when data is given.

PyTorch runs in float32 unless ``bf16=True`` (the runtime's bf16 path would otherwise be chosen
on CPUs with fast bf16, and the baseline would not be float32). Peak memory (``peak=True``, the
default) is the resident-set high-water mark of one fresh process per variant that loads it and
encodes one batch of 64 per tower (a process's peak cannot be reset, so it cannot share one). It writes
``tradeoff.{md,json}`` and ``tradeoff.html`` with size-vs-accuracy and latency-vs-accuracy plots.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from polymodal.errors import ModelError

THROUGHPUT_BATCH = 64


@dataclass
class VariantRow:
    name: str
    path: str
    size_mb: float
    params: int
    latency_ms: dict[str, float] = field(default_factory=dict)  # per tower, batch 1, per item
    throughput: dict[str, float] = field(default_factory=dict)  # per tower, items/s at batch 64
    cosine_min: dict[str, float] = field(default_factory=dict)
    cosine_mean: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, list[float]] = field(default_factory=dict)  # name -> [value, low, high]
    peak_mb: float | None = None  # resident-set peak of a fresh process: load + one batch of 64 per tower


# run in a fresh process per variant: a process's peak RSS can only grow, so variants cannot share one
_PEAK = """
import resource, sys
import polymodal
from polymodal.compress.report import THROUGHPUT_BATCH, _items
model = polymodal.load(sys.argv[1])
for modality in model.modalities:
    model.encode(modality, _items(model, modality, THROUGHPUT_BATCH), batch_size=THROUGHPUT_BATCH, bf16=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def peak_memory_mb(folder: Path) -> float:
    """Peak resident memory (MiB, Linux ru_maxrss) of loading ``folder`` and encoding a batch per tower."""
    proc = subprocess.run([sys.executable, "-c", _PEAK, str(folder)], capture_output=True, text=True,
                          timeout=900, env=dict(os.environ))
    if proc.returncode != 0:
        raise ModelError(f"{folder}: the peak-memory process failed: {proc.stderr.strip().splitlines()[-1:]}")
    return round(float(proc.stdout.strip().splitlines()[-1]), 1)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def count_params(model: Any, folder: Path) -> int:
    graphs = sorted((folder / "onnx").glob("*.onnx"))
    if graphs:
        from polymodal.export.onnx_model import count_graph_parameters

        return sum(count_graph_parameters(g) for g in graphs)
    return int(sum(t.numel() for t in model.state_dict().values()))


def _items(model: Any, modality: str, n: int) -> list[Any]:
    from polymodal.export.onnx import _samples

    return _samples(model.tower(modality), n, 7)


WARM_PASSES = 6  # at most this many batch-64 warm-up passes per tower
SETTLED = 0.05  # warm once a pass is no more than 5% faster than the one before


def warm_up(model: Any, modality: str, items: list[Any], bf16: bool, max_passes: int = WARM_PASSES) -> int:
    """Run ``modality``'s tower until its batch-64 time stops falling; the passes it took.

    The first passes of a process or of a new set of layer shapes pay for kernel selection
    (oneDNN primitives for each conv shape), thread pools, packing and onnxruntime's sessions;
    one pass was not enough: the first variant of a table measured slower than the same tower
    later (1.4x on EfficientNet-Lite0)."""
    last, passes = float("inf"), 0
    while passes < max_passes:
        t0 = time.perf_counter()
        model.encode(modality, items, batch_size=THROUGHPUT_BATCH, bf16=bf16)
        took, passes = time.perf_counter() - t0, passes + 1
        if took >= last * (1 - SETTLED):
            break
        last = took
    for item in items[:3]:
        model.encode(modality, [item], bf16=bf16)
    return passes


def _interleaved_speed(models: dict[str, Any], modality: str, items: list[Any], repeats: int, bf16: bool,
                       warm: int) -> dict[str, tuple[float, float]]:
    """(latency ms at batch 1, items/s at batch 64) of ``modality``'s tower in every model, timed in turns.

    Each round times one batch-64 pass and a few single items of every model, the order rotated
    from round to round; each figure is the median over rounds. Timing one variant after another
    let the machine's drift land on whichever ran at a bad moment: two identical towers in one
    table measured 37.7 vs 98.0 items/s on a shared machine."""
    for model in models.values():
        warm_up(model, modality, items, bf16, warm)
    names = list(models)
    rounds = max(3, repeats)
    single: dict[str, list[float]] = {n: [] for n in names}
    batch: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            model = models[name]
            for i in range(2):
                t0 = time.perf_counter()
                model.encode(modality, [items[(2 * r + i) % len(items)]], bf16=bf16)
                single[name].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            model.encode(modality, items, batch_size=THROUGHPUT_BATCH, bf16=bf16)
            batch[name].append(time.perf_counter() - t0)
    return {n: (1000 * statistics.median(single[n]), len(items) / statistics.median(batch[n])) for n in names}


def cpu_name() -> str:
    """The CPU's model name plus the matmul features that decide int8/bf16 speed (AVX512-BF16, AMX, VNNI)."""
    name, flags = platform.processor() or platform.machine(), set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    have = [label for flag, label in (("avx512_bf16", "AVX512-BF16"), ("avx512_vnni", "AVX512-VNNI"),
                                      ("amx_tile", "AMX")) if flag in flags]
    return f"{name} ({', '.join(have) or 'no AVX512-BF16/VNNI/AMX'})"


def tradeoff(variants: dict[str, str | Path], out_dir: str | Path, *, zeroshot: str | Path | None = None,
             retrieval: str | Path | None = None, repeats: int = 8, bootstrap: int = 200, bf16: bool = False,
             split: str = "test", peak: bool = True, warm: int = WARM_PASSES) -> dict[str, Any]:
    """Measure each variant (the first is the original) and write the table + plots; see the module docstring."""
    from polymodal.models.loading import load_model
    from polymodal.tasks import evaluate

    if len(variants) < 1:
        raise ModelError("the trade-off table needs at least one model")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[VariantRow] = []
    reference: dict[str, torch.Tensor] = {}
    items: dict[str, list[Any]] = {}
    models: dict[str, Any] = {}
    for name, path in variants.items():
        folder = Path(path)
        if not folder.is_dir():
            raise ModelError(f"{folder}: the trade-off table measures saved folders (save a preset first)")
        model = models[name] = load_model(folder)
        row = VariantRow(name, str(folder), folder_size(folder) / 1e6, count_params(model, folder))
        if peak:
            row.peak_mb = peak_memory_mb(folder)
        for modality in model.modalities:
            if modality not in items:
                items[modality] = _items(model, modality, THROUGHPUT_BATCH)
            z = model.encode(modality, items[modality], bf16=bf16)
            reference.setdefault(modality, z)
            cos = F.cosine_similarity(z, reference[modality], dim=-1)
            row.cosine_min[modality], row.cosine_mean[modality] = float(cos.min()), float(cos.mean())
        for task, data, metric in (("zeroshot-classification", zeroshot, "acc@1"),
                                   ("retrieval", retrieval, "image_to_text/R@1")):
            if data is not None:
                result = evaluate(model, task, data, split, bootstrap=bootstrap, cache=False)
                m = result.metrics[metric]
                row.metrics[f"{task}:{metric}"] = [m.value, m.low, m.high]
        rows.append(row)
    # speed last, all variants held at once and timed in turns (see _interleaved_speed)
    for modality, modality_items in items.items():
        having = {n: m for n, m in models.items() if modality in m.modalities}
        speeds = _interleaved_speed(having, modality, modality_items, repeats, bf16, warm)
        for row in rows:
            if row.name in speeds:
                latency, rate = speeds[row.name]
                row.latency_ms[modality], row.throughput[modality] = round(latency, 3), round(rate, 1)
    models.clear()
    meta = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "pytorch_precision": "bf16" if bf16 else "float32", "repeats": repeats, "bootstrap": bootstrap,
            "zeroshot": str(zeroshot) if zeroshot else None, "retrieval": str(retrieval) if retrieval else None}
    table = {"meta": meta, "rows": [asdict(r) for r in rows]}
    (out / "tradeoff.json").write_text(json.dumps(table, indent=2), encoding="utf-8")
    (out / "tradeoff.md").write_text(to_markdown(table), encoding="utf-8")
    _html(table, out / "tradeoff.html")
    return table


def _fmt_metric(v: list[float]) -> str:
    return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"


def headers_and_rows(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = table["rows"]
    towers = list(rows[0]["throughput"]) if rows else []
    metrics = sorted({k for r in rows for k in r["metrics"]})
    headers = ["variant", "size MB", "x smaller", "params", "peak RSS MB"]
    headers += [f"{m} ms/item b1" for m in towers] + [f"{m} items/s b64" for m in towers] + ["speed-up b64"]
    headers += [f"{m} cos min/mean" for m in towers] + metrics
    base = rows[0] if rows else None
    out = []
    for r in rows:
        assert base is not None
        total = sum(1 / r["throughput"][m] for m in towers)
        base_total = sum(1 / base["throughput"][m] for m in towers)
        cells = [r["name"], f"{r['size_mb']:.1f}", f"{base['size_mb'] / r['size_mb']:.2f}x", f"{r['params']:,}",
                 f"{r['peak_mb']:.0f}" if r.get("peak_mb") is not None else "-"]
        cells += [f"{r['latency_ms'][m]:.2f}" for m in towers] + [f"{r['throughput'][m]:.1f}" for m in towers]
        cells += [f"{base_total / total:.2f}x"]
        cells += [f"{r['cosine_min'][m]:.4f} / {r['cosine_mean'][m]:.4f}" for m in towers]
        cells += [_fmt_metric(r["metrics"][k]) if k in r["metrics"] else "-" for k in metrics]
        out.append(cells)
    return headers, out


def to_markdown(table: dict[str, Any]) -> str:
    headers, rows = headers_and_rows(table)
    meta = table["meta"]
    lines = [f"CPU: {meta['cpu']}, {meta['threads']} torch threads; PyTorch in {meta['pytorch_precision']}; "
             "speed-up b64 = text+image encode time of the original / the variant's, batch 64.", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _plots(table: dict[str, Any]) -> list[tuple[str, bytes]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from polymodal.report.figures import to_png

    rows = table["rows"]
    metric = next(iter(sorted({k for r in rows for k in r["metrics"]})), None)
    if metric is None:
        return []
    figs = []
    for title, xs, label in (
        ("size vs accuracy", [r["size_mb"] for r in rows], "size on disk (MB)"),
        ("latency vs accuracy", [sum(r["latency_ms"].values()) for r in rows], "latency per item, batch 1, all towers (ms)"),
    ):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for r, x in zip(rows, xs, strict=True):
            v = r["metrics"].get(metric)
            if v is None:
                continue
            ax.errorbar([x], [v[0]], yerr=[[v[0] - v[1]], [v[2] - v[0]]], fmt="o", capsize=3)
            ax.annotate(r["name"], (x, v[0]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel(metric)
        ax.set_title(title)
        figs.append((title, to_png(fig)))
        plt.close(fig)
    return figs


def _html(table: dict[str, Any], path: Path) -> None:
    from polymodal.report import Report

    report = Report("polymodal compression trade-offs")
    headers, rows = headers_and_rows(table)
    report.add_text("Machine", json.dumps(table["meta"]))
    report.add_table("Trade-off table", headers, rows)
    for title, png in _plots(table):
        report.add_figure(title, png)
    report.write(path)


