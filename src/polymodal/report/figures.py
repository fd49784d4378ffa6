"""Matplotlib figures for reports, each returned as PNG bytes (Agg backend, no display)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SKIP_KEYS = {"step", "epoch", "time", "elapsed", "wall", "samples", "tokens"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def to_png(fig: Any, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def series_from_records(records: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """``{name: (steps, values)}`` from metrics.jsonl records; a ``split``/``phase`` field prefixes names."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for i, rec in enumerate(records):
        step = rec.get("step", i)
        if not isinstance(step, int | float):
            continue
        prefix = rec.get("split") or rec.get("phase")
        for key, value in rec.items():
            if key in SKIP_KEYS or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not np.isfinite(value):
                continue
            name = f"{prefix}/{key}" if isinstance(prefix, str) and "/" not in key else key
            xs, ys = series.setdefault(name, ([], []))
            xs.append(float(step))
            ys.append(float(value))
    return series


def curves_figure(series: dict[str, tuple[list[float], list[float]]]) -> bytes | None:
    """Loss curves, learning rate and other metrics in up to three panels sharing the step axis."""
    groups: dict[str, list[str]] = {"loss": [], "learning rate": [], "metrics": []}
    for name in sorted(series):
        low = name.lower()
        key = "loss" if "loss" in low else "learning rate" if low.split("/")[-1] in {"lr", "learning_rate"} else "metrics"
        groups[key].append(name)
    panels = [(t, names) for t, names in groups.items() if names]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False)
    for ax, (title, names) in zip(axes[0], panels, strict=True):
        for name in names[:12]:
            xs, ys = series[name]
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=name)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig)


def confusion_figure(cm: Any, class_names: list[str], title: str = "confusion matrix") -> bytes:
    """Row-normalised colours with raw counts written in each cell."""
    m = np.asarray(cm, dtype=np.float64)
    rows = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    size = max(3.5, 0.45 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(class_names))
    labels = [textwrap.shorten(c, 18) for c in class_names]
    ax.set_xticks(list(ticks), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(list(ticks), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(class_names) <= 25:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if m[i, j]:
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if frac[i, j] > 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    return to_png(fig)


def _is_image(item: str) -> bool:
    p = Path(item)
    return p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()


def _show(ax: Any, item: str, hit: bool | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if _is_image(item):
        from PIL import Image

        with Image.open(item) as im:
            ax.imshow(np.asarray(im.convert("RGB")))
    else:
        label = Path(item).name if Path(item).is_absolute() else item
        ax.text(0.5, 0.5, textwrap.fill(label, 22), ha="center", va="center", fontsize=8, wrap=True)
    if hit is not None:
        colour = "#1a9641" if hit else "#d7191c"
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(4)


def retrieval_grid(examples: list[dict[str, Any]], title: str = "retrieval examples") -> bytes:
    """One row per query: the query, then its top-5 items framed green (hit) or red (miss)."""
    n = max(1, len(examples))
    k = max((len(e["retrieved"]) for e in examples), default=5)
    fig, axes = plt.subplots(n, k + 1, figsize=(1.9 * (k + 1), 1.9 * n), squeeze=False)
    for r in range(n):
        for c in range(k + 1):
            axes[r][c].axis("off")
    for r, ex in enumerate(examples):
        ax = axes[r][0]
        ax.axis("on")
        _show(ax, str(ex["query"]), None)
        ax.set_title("query", fontsize=8)
        for c, (item, hit) in enumerate(zip(ex["retrieved"], ex["hits"], strict=True), start=1):
            ax = axes[r][c]
            ax.axis("on")
            _show(ax, str(item), bool(hit))
            ax.set_title(f"#{c} {'hit' if hit else 'miss'}", fontsize=8, color="#1a9641" if hit else "#d7191c")
    fig.suptitle(title)
    fig.tight_layout()
    return to_png(fig)
