"""Drawing of the flat coloured shapes used by ``shapes`` and ``moving-shapes``.

Shapes are drawn at twice the target size and downsampled, which gives smooth edges
without an anti-aliasing dependency.
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 200, 20),
    "purple": (140, 40, 170),
    "orange": (245, 130, 20),
}
SUPERSAMPLE = 2


def jitter_color(name: str, rng: random.Random, amount: int = 18) -> tuple[int, int, int]:
    """The named colour with a little seeded noise, so a colour is a region, not one RGB value."""
    r, g, b = COLORS[name]
    return (
        max(0, min(255, r + rng.randint(-amount, amount))),
        max(0, min(255, g + rng.randint(-amount, amount))),
        max(0, min(255, b + rng.randint(-amount, amount))),
    )


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    def point(radius: float, theta: float) -> tuple[float, float]:
        return (cx + radius * math.cos(theta + angle), cy + radius * math.sin(theta + angle))

    if shape == "square":
        return [point(r * 1.2, math.pi / 4 + k * math.pi / 2) for k in range(4)]
    if shape == "triangle":
        return [point(r * 1.15, -math.pi / 2 + k * 2 * math.pi / 3) for k in range(3)]
    if shape == "star":
        return [point(r * (1.15 if k % 2 == 0 else 0.48), -math.pi / 2 + k * math.pi / 5) for k in range(10)]
    if shape == "cross":
        w = r * 0.38
        pts = [
            (-w, -r),
            (w, -r),
            (w, -w),
            (r, -w),
            (r, w),
            (w, w),
            (w, r),
            (-w, r),
            (-w, w),
            (-r, w),
            (-r, -w),
            (-w, -w),
        ]
        cos, sin = math.cos(angle), math.sin(angle)
        return [(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in pts]
    raise ValueError(f"unknown shape {shape!r}")


def draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    fill: tuple[int, int, int],
    center: tuple[float, float],
    radius: float,
    angle: float = 0.0,
) -> None:
    """Draw one filled shape; coordinates are in the canvas' own (supersampled) pixels."""
    cx, cy = center
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    else:
        draw.polygon(_polygon(shape, cx, cy, radius, angle), fill=fill)


def new_canvas(size: int, background: tuple[int, int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A supersampled RGB canvas and its drawing handle."""
    image = Image.new("RGB", (size * SUPERSAMPLE, size * SUPERSAMPLE), background)
    return image, ImageDraw.Draw(image)


def finish(image: Image.Image, size: int) -> Image.Image:
    """Downsample a supersampled canvas to its final size."""
    return image.resize((size, size), Image.Resampling.LANCZOS)
