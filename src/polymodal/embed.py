"""Batch embedding of a manifest's (or a text file's) items with any polymodal model.

Work is ordered by length (text) so each batch carries little padding, then put back in
input order; ``model.encode`` (the runtime) decodes the items (paths of images, audio,
video) through the same decode path as training, batches them and picks the precision.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import DataError

MODALITIES = ("text", "image", "audio", "video")


def flat_folder_items(folder: Path, modality: str) -> tuple[list[str], list[Any]] | None:
    """(file names, paths) of the ``modality`` files directly in ``folder``, a plain folder of
    photos (or clips, recordings) with no sub-folders; None for anything else (a class tree,
    a saved Hugging Face dataset), which the data layer reads."""
    from polymodal.data.sources import AUDIO_EXTS, IMAGE_EXTS, VIDEO_EXTS

    exts = {"image": IMAGE_EXTS, "audio": AUDIO_EXTS, "video": VIDEO_EXTS}
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if any(p.is_dir() for p in entries):
        return None
    kinds = {m for p in entries for m, e in exts.items() if p.suffix.lower() in e}
    if not kinds:
        return None
    files = [p for p in entries if p.is_file() and p.suffix.lower() in exts.get(modality, frozenset())]
    if not files:
        raise DataError(f"{folder}: no {modality} files in this folder (it holds {', '.join(sorted(kinds))} files; "
                        "pick that --modality)")
    from polymodal.data.validate import resolve_inside

    paths = []
    for p in files:  # the folder is the root: a symlink leading out of it is refused, as in a manifest
        try:
            paths.append(str(resolve_inside(folder, p.name)))
        except DataError as exc:
            raise DataError(f"{p}: {exc}") from None
    return [p.name for p in files], paths


def read_items(
    data: str | Path, modality: str, split: str | None = None, root: str | Path | None = None
) -> tuple[list[str], list[Any]]:
    """Return (ids, items) for one modality from a manifest, a class-folder tree, a flat folder
    of media files (ids = file names), or a plain text file (text only).

    Paths in a manifest are resolved against ``root`` (default: the manifest's folder) and must
    stay inside it.
    """
    if modality not in MODALITIES:
        raise DataError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
    path = Path(data)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file() and path.suffix.lower() in {".txt", ".text"}:
        if modality != "text":
            raise DataError(f"{path}: a plain text file holds sentences; use --modality text")
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        items = [ln for ln in lines if ln]
        return [f"line-{i}" for i in range(len(items))], list(items)

    if path.is_dir():
        flat = flat_folder_items(path, modality)
        if flat is not None:
            if split is not None:
                raise DataError(f"{path}: a flat folder of files has no splits; leave out --split")
            return flat

    from polymodal.data.sources import load_manifest
    from polymodal.data.validate import resolve_inside

    manifest = load_manifest(path, root)
    ids: list[str] = []
    items_out: list[Any] = []
    for row in manifest.rows:
        if split is not None and row.get("split") != split:
            continue
        value = row.get(modality)
        if value in (None, ""):
            continue
        ids.append(str(row.get("id")))
        if modality == "text":
            items_out.append(str(value))
        else:
            items_out.append(str(resolve_inside(manifest.root, str(value))))
    if not items_out:
        where = f" in split {split!r}" if split else ""
        raise DataError(f"{path}: no rows with a {modality!r} column{where}")
    return ids, items_out


def length_order(items: Sequence[Any], modality: str) -> list[int]:
    """Indices that visit texts longest first (others keep their order)."""
    if modality != "text":
        return list(range(len(items)))
    return sorted(range(len(items)), key=lambda i: -len(str(items[i])))


# embed_items' chunks: model.encode runs a chunk at a time (its worker threads drain at each
# chunk's end), and progress is reported after each. Chunks are sized from the measured speed
# to about CHUNK_SECONDS each, in whole batches, at most CHUNK_MAX items, so a slow image
# model still reports every few seconds (an ETA early) and a fast text model wastes no time.
CHUNK_SECONDS = 2.0
CHUNK_MAX = 512


def _next_chunk(batch_size: int, seconds_per_item: float) -> int:
    want = int(CHUNK_SECONDS / max(seconds_per_item, 1e-9))
    return max(batch_size, min(CHUNK_MAX, want) // batch_size * batch_size)


def embed_items(
    model: Any,
    items: Sequence[Any],
    modality: str,
    *,
    batch_size: int = 64,
    chunk: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Embed ``items`` with ``model.encode(modality, ...)`` -> float32 array (n, d) in input order.

    ``on_progress(k)`` is called after each chunk of ``k`` items; ``chunk`` fixes the chunk size
    (default: two batches first, then sized from the measured speed, see ``CHUNK_SECONDS``).
    """
    from polymodal.runtime.decode import DecodeError

    order = length_order(items, modality)
    parts: list[np.ndarray] = []
    start, size = 0, chunk or 2 * batch_size
    while start < len(order):
        idx = order[start : start + size]
        t0 = time.perf_counter()
        try:
            out = model.encode(modality, [items[i] for i in idx], batch_size=batch_size)
        except DecodeError as exc:  # name the item by its position in ``items``
            raise exc.at(idx[exc.index]) from None
        # a tensor (polymodal models) or an array (any model offering encode(modality, list))
        parts.append(np.asarray(out.detach().float().cpu() if hasattr(out, "detach") else out, dtype=np.float32))
        start += len(idx)
        if chunk is None:
            size = _next_chunk(batch_size, (time.perf_counter() - t0) / len(idx))
        if on_progress is not None:
            on_progress(len(idx))
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    stacked = np.concatenate(parts, axis=0)
    result = np.empty_like(stacked)
    result[np.asarray(order)] = stacked
    return result.astype(np.float32, copy=False)


def embed_to_file(
    model_name: str,
    data: str | Path,
    modality: str,
    out: str | Path,
    *,
    split: str | None = None,
    batch_size: int = 64,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    root: str | Path | None = None,
) -> tuple[Path, int, int]:
    """Load ``model_name``, embed the items, write ``out`` (.npy) and ``out``.ids.txt.

    Returns (path, rows, dim).
    """
    import polymodal

    ids, items = read_items(data, modality, split, root)
    if on_total is not None:
        on_total(len(items))
    from polymodal.runtime.decode import DecodeError

    model = polymodal.load(model_name)
    try:
        vectors = embed_items(model, items, modality, batch_size=batch_size, on_progress=on_progress)
    except DecodeError as exc:
        raise DataError(f"{data}: row {ids[exc.index]!r}: {exc}") from None
    out_path = Path(out)
    if out_path.suffix != ".npy":
        out_path = out_path.with_suffix(".npy")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".partial.npy")
    np.save(tmp, vectors, allow_pickle=False)
    tmp.replace(out_path)
    out_path.with_suffix(".ids.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    return out_path, vectors.shape[0], vectors.shape[1]
