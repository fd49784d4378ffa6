"""``digits``: scikit-learn's 8x8 handwritten digits (1,797 images), upscaled.

Pixel values 0-16 are scaled to 0-255 and each image is resized bilinearly to 32x32
(grayscale PNG, light ink on black like MNIST). Columns: ``image``, ``text`` ("a
handwritten digit 7", a few wordings), ``label`` (the digit's name, "seven"), ``digit``
("7"). ``n`` caps the total (seeded, stratified by digit); splits are 80/10/10,
stratified by digit.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from polymodal.data.builtin import _common as common

NAME = "digits"
IMAGE_SIZE = 32
FILES_DIR = "images"
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEMPLATES = (
    "a handwritten digit {d}",
    "a handwritten {w}",
    "the number {w} written by hand",
    "a scan of a handwritten {d}",
)


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 8, 8) float 0-16, targets (N,)) from scikit-learn's bundled copy."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.asarray(bunch.images), np.asarray(bunch.target)


def upscale(pixels: np.ndarray, size: int = IMAGE_SIZE) -> Image.Image:
    """An 8x8 array of 0-16 values as a ``size`` x ``size`` grayscale image."""
    scaled = np.clip(np.rint(pixels * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled).resize((size, size), Image.Resampling.BILINEAR)


def make(out_dir: str | Path, n: int | None = None, seed: int = 0) -> Path:
    images, targets = load_digits_arrays()
    common.check_n(NAME, n, len(targets))
    labels = [DIGIT_NAMES[int(t)] for t in targets]
    keep = list(range(len(labels)))
    if n is not None:
        keep = common.stratified_take(labels, n, random.Random(f"{seed}-{NAME}-take"))
    splits = common.stratified_splits([labels[i] for i in keep], random.Random(f"{seed}-{NAME}-splits"))
    out = common.prepare_out_dir(out_dir, FILES_DIR)
    (out / FILES_DIR).mkdir()
    rows: list[dict[str, Any]] = []
    with common.progress(len(keep), NAME) as advance:
        for i, split in zip(keep, splits, strict=True):
            row_id = f"digits-{i:04d}"
            rel = f"{FILES_DIR}/{row_id}.png"
            upscale(images[i]).save(out / rel, format="PNG")
            digit = int(targets[i])
            rng = common.row_rng(seed, NAME, i)
            text = rng.choice(TEMPLATES).format(d=digit, w=DIGIT_NAMES[digit])
            rows.append(
                {
                    "id": row_id,
                    "split": split,
                    "image": rel,
                    "text": text,
                    "label": labels[i],
                    "digit": str(digit),
                }
            )
            advance(1)
    info = {
        "name": NAME,
        "seed": seed,
        "source": "sklearn.datasets.load_digits (UCI optical recognition of handwritten digits)",
        "image_size": IMAGE_SIZE,
        "label": "digit name",
        "classes": list(DIGIT_NAMES),
    }
    return common.write_manifest(out, rows, info, FILES_DIR, {"label": list(DIGIT_NAMES)})
