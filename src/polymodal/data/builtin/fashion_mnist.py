"""``fashion-mnist``: the real Fashion-MNIST from the Debian package ``dataset-fashion-mnist``.

The IDX files are parsed with numpy and written as 28x28 grayscale PNGs under
``images/<split>/<class>/<id>.png`` (so the output is also a class-folder tree).
Splits: the official test set is ``test``; of the official 60,000 training images the
last 5,000 are ``val`` and the rest ``train``. ``n`` caps the total: a seeded sample,
stratified by class within each split, keeps the 55/5/10 split proportions.
Columns: ``image``, ``text`` ("a photo of a sneaker", a few wordings), ``label`` (class name).
"""

from __future__ import annotations

import gzip
import os
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.data.builtin import _common as common
from polymodal.errors import DataError

NAME = "fashion-mnist"
SOURCE_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES_DIR = "images"
VAL_SIZE = 5000
CLASS_NAMES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
# how a caption names each class ("a photo of a pair of trousers")
NOUNS = {"trouser": "pair of trousers"}
TEMPLATES = (
    "a photo of {a} {c}",
    "a picture of {a} {c}",
    "a black and white photo of {a} {c}",
    "a low-resolution photo of {a} {c}",
)
CHUNK = 2000


def read_idx(path: Path, expected_dims: int) -> np.ndarray:
    """Parse a gzipped IDX file (big-endian header: magic, dims; then uint8 data)."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    dims = raw[3]
    if dims != expected_dims:
        raise DataError(f"{path}: expected {expected_dims} dimensions, found {dims}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=dims, offset=4))
    offset = 4 + 4 * dims
    size = int(np.prod(shape))
    if len(raw) - offset != size:
        raise DataError(f"{path}: holds {len(raw) - offset} data bytes, header promises {size}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def load_arrays(source: Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (images, labels), "t10k": (...)}; DataError naming the package when absent."""
    source = SOURCE_DIR if source is None else source
    missing = [
        str(source / f"{part}-{kind}-ubyte.gz")
        for part in ("train", "t10k")
        for kind in ("images-idx3", "labels-idx1")
        if not (source / f"{part}-{kind}-ubyte.gz").is_file()
    ]
    if missing:
        raise DataError(
            f"fashion-mnist: {', '.join(missing)} not found; install the Debian package "
            "dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"
        )
    out = {}
    for part in ("train", "t10k"):
        images = read_idx(source / f"{part}-images-idx3-ubyte.gz", 3)
        labels = read_idx(source / f"{part}-labels-idx1-ubyte.gz", 1)
        if len(images) != len(labels) or images.shape[1:] != (28, 28):
            raise DataError(f"{source}: {part} images {images.shape} do not match labels {labels.shape}")
        if labels.size and int(labels.max()) >= len(CLASS_NAMES):
            raise DataError(f"{source}: {part} labels hold class {int(labels.max())}, expected 0-9")
        out[part] = (images, labels)
    return out


def _write_chunk(out: str, paths: list[str], images: np.ndarray) -> int:
    """Write PNGs for one chunk (runs in a worker process)."""
    from PIL import Image

    for rel, pixels in zip(paths, images, strict=True):
        Image.fromarray(np.ascontiguousarray(pixels)).save(os.path.join(out, rel), format="PNG")
    return len(paths)


def _folder(label: str) -> str:
    return label.replace(" ", "_")


def make(out_dir: str | Path, n: int | None = None, seed: int = 0, workers: int | None = None) -> Path:
    arrays = load_arrays()
    train_images, train_labels = arrays["train"]
    test_images, test_labels = arrays["t10k"]
    n_train = len(train_labels) - VAL_SIZE
    pools = {
        "train": [("train", j) for j in range(n_train)],
        "val": [("train", j) for j in range(n_train, len(train_labels))],
        "test": [("t10k", j) for j in range(len(test_labels))],
    }
    available = sum(len(p) for p in pools.values())
    common.check_n(NAME, n, available)
    label_of = {"train": train_labels, "t10k": test_labels}
    if n is not None:
        quotas = common.apportion(n, [len(pools[s]) for s in common.SPLITS])
        for split, quota in zip(common.SPLITS, quotas, strict=True):
            pool = pools[split]
            labels = [CLASS_NAMES[int(label_of[part][j])] for part, j in pool]
            picked = common.stratified_take(labels, quota, random.Random(f"{seed}-{NAME}-{split}"))
            pools[split] = [pool[k] for k in picked]
    out = common.prepare_out_dir(out_dir, FILES_DIR)
    rows: list[dict[str, Any]] = []
    jobs: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "t10k": ([], [])}
    for split in common.SPLITS:
        for label in CLASS_NAMES:
            (out / FILES_DIR / split / _folder(label)).mkdir(parents=True, exist_ok=True)
        for part, j in pools[split]:
            label = CLASS_NAMES[int(label_of[part][j])]
            row_id = f"fmnist-{'test' if part == 't10k' else 'train'}-{j:05d}"
            rel = f"{FILES_DIR}/{split}/{_folder(label)}/{row_id}.png"
            rng = common.row_rng(seed, NAME, row_id)
            noun = NOUNS.get(label, label)
            text = rng.choice(TEMPLATES).format(a="an" if noun[0] in "aeiou" else "a", c=noun)
            rows.append({"id": row_id, "split": split, "image": rel, "text": text, "label": label})
            jobs[part][0].append(rel)
            jobs[part][1].append(j)
    _write_images(out, jobs, {"train": train_images, "t10k": test_images}, len(rows), workers)
    info = {
        "name": NAME,
        "seed": seed,
        "source": str(SOURCE_DIR),
        "license": "MIT (Zalando Research)",
        "image_size": 28,
        "label": "Fashion-MNIST class name",
        "classes": list(CLASS_NAMES),
    }
    return common.write_manifest(out, rows, info, FILES_DIR, {"label": list(CLASS_NAMES)})


def _write_images(
    out: Path,
    jobs: dict[str, tuple[list[str], list[int]]],
    images: dict[str, np.ndarray],
    total: int,
    workers: int | None,
) -> None:
    """Encode PNGs in chunks; with two or more cores and many files, across processes."""
    chunks = []
    for part, (paths, idx) in jobs.items():
        for start in range(0, len(paths), CHUNK):
            sel = idx[start : start + CHUNK]
            chunks.append((paths[start : start + CHUNK], images[part][sel]))
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if total >= 4 * CHUNK else 1
    with common.progress(total, NAME) as advance:
        if workers <= 1:
            for paths, pixels in chunks:
                advance(_write_chunk(str(out), paths, pixels))
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_write_chunk, str(out), paths, pixels) for paths, pixels in chunks]
            for future in futures:
                advance(future.result())
