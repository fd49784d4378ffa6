"""Matplotlib figures for reports, each returned as PNG bytes (Agg backend, no display)."""

from __future__ import annotations

import dataclasses
import io
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Chinese labels (class names, prompts) need a CJK font; Debian's fonts-wqy-zenhei (installed by
# .ci/run) is added as a fallback family after the default one, so Latin text looks as before
CJK_FONTS = (("WenQuanYi Zen Hei", Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")),)


def use_cjk_font() -> str | None:
    """Register the first CJK font found as a fallback family; its name, or None without one."""
    from matplotlib import font_manager

    for name, path in CJK_FONTS:
        if path.is_file():
            manager = font_manager.fontManager
            if name not in {f.name for f in manager.ttflist}:
                manager.addfont(str(path))
            # the collection's faces are weight 500; matplotlib asks for 400 and logs each miss, so
            # they are listed as regular (there is no other weight of them to confuse)
            manager.ttflist = [dataclasses.replace(f, weight=400) if f.name == name and f.weight == 500 else f
                               for f in manager.ttflist]
            # matplotlib falls back glyph by glyph across font.family's entries (not within sans-serif's list)
            families = list(matplotlib.rcParams["font.family"])
            if name not in families:
                matplotlib.rcParams["font.family"] = [*families, name]
            return name
    return None


use_cjk_font()

SKIP_KEYS = {"step", "epoch", "time", "elapsed", "wall", "samples", "tokens"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def to_png(fig: Any, dpi: int = 110, tight: bool = True) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return buf.getvalue()


NON_CURVE_EVENTS = {"start", "end", "config", "summary", "data"}


def series_from_records(records: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """``{name: (steps, values)}`` from metrics.jsonl records.

    A record's ``event`` (or ``split`` / ``phase``) prefixes names without a slash, so the
    trainer's ``{"event": "train", "loss": ...}`` becomes ``train/loss`` beside ``val/loss``.
    Start/end events carry counts, not curves, and are skipped.
    """
    series: dict[str, tuple[list[float], list[float]]] = {}
    for i, rec in enumerate(records):
        step = rec.get("step", i)
        if not isinstance(step, int | float) or rec.get("event") in NON_CURVE_EVENTS:
            continue
        prefix = rec.get("event") or rec.get("split") or rec.get("phase")
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


def _panel(name: str) -> str:
    leaf = name.lower().split("/")[-1]
    if "loss" in leaf:
        return "loss"
    if leaf in {"lr", "learning_rate"}:
        return "learning rate"
    if leaf.endswith("per_s") or leaf.endswith("_per_sec"):
        return "throughput"
    if leaf in {"logit_scale", "temperature"}:
        return "temperature"
    return "metrics"


def curves_figure(series: dict[str, tuple[list[float], list[float]]]) -> bytes | None:
    """Loss, learning rate, metrics (and throughput / temperature when logged), one panel each."""
    order = ["loss", "metrics", "learning rate", "temperature", "throughput"]
    groups: dict[str, list[str]] = {k: [] for k in order}
    for name in sorted(series):
        groups[_panel(name)].append(name)
    panels = [(t, groups[t]) for t in order if groups[t]]
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(panels):]:
        ax.axis("off")
    for ax, (title, names) in zip(flat, panels, strict=False):
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
                    ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if frac[i, j] > 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    return to_png(fig)


def _is_image(item: str) -> bool:
    p = Path(item)
    return p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()


def _thumbnail(path: str) -> np.ndarray | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError):
        return None  # an unreadable file is shown by name instead


CELL = 120  # pixels per grid cell
PAD = 10
GREEN = (26, 150, 65)
RED = (215, 25, 28)


def _fit(pixels: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(pixels)
    scale = size / max(im.size)  # small images (28 px Fashion-MNIST) are enlarged, large ones shrunk
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    im = im.resize((max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))), resample)
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    h, w = im.size[1], im.size[0]
    y, x = (size - h) // 2, (size - w) // 2
    canvas[y : y + h, x : x + w] = np.asarray(im)
    return canvas


def retrieval_grid(examples: list[dict[str, Any]], title: str = "retrieval examples") -> bytes:
    """One row per query: the query, then its top-5 items framed green (hit) or red (miss).

    The cells are composed into one pixel canvas shown on a single axes (one axes per cell
    costs seconds of matplotlib time for a modest grid); texts are drawn on top.
    """
    n = max(1, len(examples))
    k = max((len(e["retrieved"]) for e in examples), default=5)
    step = CELL + 2 * PAD
    canvas = np.full((n * step, (k + 1) * step, 3), 255, dtype=np.uint8)
    labels: list[tuple[float, float, str, str, int]] = []  # x, y, text, colour, size
    for r, ex in enumerate(examples):
        items = [(str(ex["query"]), None)] + [(str(i), bool(h)) for i, h in zip(ex["retrieved"], ex["hits"], strict=True)]
        for c, (item, hit) in enumerate(items):
            y0, x0 = r * step + PAD, c * step + PAD
            if hit is not None:
                colour = GREEN if hit else RED
                canvas[y0 - 5 : y0 + CELL + 5, x0 - 5 : x0 + CELL + 5] = colour
                canvas[y0 : y0 + CELL, x0 : x0 + CELL] = 255
            else:
                canvas[y0 - 1 : y0 + CELL + 1, x0 - 1 : x0 + CELL + 1] = 120
                canvas[y0 : y0 + CELL, x0 : x0 + CELL] = 255
            pixels = _thumbnail(item) if _is_image(item) else None
            if pixels is not None:
                canvas[y0 : y0 + CELL, x0 : x0 + CELL] = _fit(pixels, CELL)
            else:
                label = Path(item).name if Path(item).is_absolute() else item
                text = textwrap.fill(textwrap.shorten(label, 80, placeholder="…"), 16)
                labels.append((x0 + CELL / 2, y0 + CELL / 2, text, "black", 7))
            tag = "query" if hit is None else f"#{c} {'hit' if hit else 'miss'}"
            tag_colour: str = "black" if hit is None else "#1a9641" if hit else "#d7191c"
            labels.append((x0 + CELL / 2, y0 - 6, tag, tag_colour, 7))
    height, width = canvas.shape[:2]
    fig = plt.figure(figsize=(width / 90, height / 90 + 0.5))
    ax = fig.add_axes((0, 0, 1, height / (height + 45)))
    ax.imshow(canvas, interpolation="nearest")
    for x, y, text, text_colour, size in labels:
        ax.text(x, y, text, ha="center", va="center" if not text.startswith(("#", "query")) else "bottom",
                fontsize=size, color=text_colour)
    ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return to_png(fig, tight=False)


def frame_strips(clips: list[dict[str, Any]], size: int = 64) -> bytes | None:
    """One row per clip: its frames (a folder of images) side by side, captioned truth -> predicted.

    Composed into one canvas like ``retrieval_grid``; None when no clip has readable frames.
    """
    rows: list[tuple[np.ndarray, str, bool]] = []
    for clip in clips:
        folder = Path(str(clip.get("path", "")))
        frames = [p for p in sorted(folder.iterdir()) if _is_image(str(p))] if folder.is_dir() else []
        thumbs = [t for t in (_thumbnail(str(p)) for p in frames) if t is not None]
        if not thumbs:
            continue
        strip = np.concatenate([_fit(t, size) for t in thumbs], axis=1)
        truth, pred = clip.get("truth"), clip.get("predicted")
        rows.append((strip, f"{clip.get('id')}: {truth} -> {pred}", truth == pred))
    if not rows:
        return None
    width = max(r[0].shape[1] for r in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(width / 70, len(rows) * (size / 70 + 0.35)), squeeze=False)
    for ax, (strip, caption, right) in zip(axes[:, 0], rows, strict=True):
        ax.imshow(strip, interpolation="nearest")
        ax.set_title(caption, fontsize=8, color="#1a9641" if right else "#d7191c", loc="left")
        ax.axis("off")
    return to_png(fig)
