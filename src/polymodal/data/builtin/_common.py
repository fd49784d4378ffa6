"""Helpers shared by the built-in dataset makers: output folder, splits, manifest, progress.

Every maker follows the same shape: check its inputs, prepare ``out_dir`` (refusing to
write into a folder it did not make), pick rows with a seeded RNG, write files under one
sub-folder, then write ``manifest.jsonl`` and ``dataset.json``. Nothing here carries a
timestamp, so the same seed gives the same bytes.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from polymodal.errors import DataError

SPLITS: tuple[str, str, str] = ("train", "val", "test")
DEFAULT_RATIOS: tuple[float, float, float] = (0.8, 0.1, 0.1)
MANIFEST_NAME = "manifest.jsonl"
INFO_NAME = "dataset.json"
# the label sets file the validator reads beside a manifest (polymodal.data.validate.LABELS_FILE)
LABELS_NAME = "labels.json"


def check_n(name: str, n: int | None, available: int | None = None) -> None:
    """Reject a non-positive ``n`` or one larger than what the dataset can provide."""
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DataError(f"{name}: n must be a positive integer, got {n!r}")
    if available is not None and n > available:
        raise DataError(f"{name}: n={n} exceeds the {available} rows this dataset can provide")


def prepare_out_dir(out_dir: str | Path, files_dir: str) -> Path:
    """Create ``out_dir``; clear a previous make of a built-in dataset there, refuse anything else.

    Only what an earlier make wrote (its manifest, info file and files sub-folder) is
    removed, so re-running with another ``n`` leaves no stale files behind.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    entries = list(out.iterdir())
    if not entries:
        return out
    info_path = out / INFO_NAME
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        previous = info["builtin"]["files_dir"] if isinstance(info, dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        previous = None
    if previous is None:
        raise DataError(
            f"{out}: folder is not empty and holds no earlier built-in dataset; choose an empty or new folder"
        )
    for name in {str(previous), files_dir}:
        target = out / name
        # never follow a link out of the folder when clearing it
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir() and target.resolve().parent == out.resolve():
            shutil.rmtree(target)
    for name in (MANIFEST_NAME, INFO_NAME, LABELS_NAME):
        (out / name).unlink(missing_ok=True)
    return out


def apportion(count: int, ratios: Sequence[float] = DEFAULT_RATIOS) -> list[int]:
    """Split ``count`` into integer parts proportional to ``ratios`` (largest remainder)."""
    total = float(sum(ratios))
    exact = [count * r / total for r in ratios]
    parts = [int(x) for x in exact]
    order = sorted(range(len(ratios)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[: count - sum(parts)]:
        parts[i] += 1
    return parts


def split_sequence(count: int, ratios: Sequence[float] = DEFAULT_RATIOS) -> list[str]:
    """Split names for ``count`` consecutive items, keeping every prefix close to ``ratios``.

    Each position goes to the split furthest behind its share, so a run of items of one
    class (see :func:`stratified_splits`) is itself split in the right proportions.
    """
    total = float(sum(ratios))
    shares = [r / total for r in ratios]
    taken = [0] * len(shares)
    out: list[str] = []
    for i in range(count):
        deficits = [shares[k] * (i + 1) - taken[k] for k in range(len(shares))]
        k = max(range(len(shares)), key=lambda j: (deficits[j], -j))
        taken[k] += 1
        out.append(SPLITS[k])
    return out


def stratified_splits(
    labels: Sequence[str], rng: random.Random, ratios: Sequence[float] = DEFAULT_RATIOS
) -> list[str]:
    """A split name per item: classes shuffled within themselves, then split proportionally."""
    order = sorted(range(len(labels)), key=lambda i: labels[i])
    by_class: dict[str, list[int]] = {}
    for i in order:
        by_class.setdefault(labels[i], []).append(i)
    ordered: list[int] = []
    for cls in sorted(by_class):
        members = by_class[cls]
        rng.shuffle(members)
        ordered.extend(members)
    result = [""] * len(labels)
    for i, split in zip(ordered, split_sequence(len(ordered), ratios), strict=True):
        result[i] = split
    return result


def stratified_take(labels: Sequence[str], k: int, rng: random.Random) -> list[int]:
    """Indices of a seeded sample of ``k`` items keeping class proportions (sorted)."""
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    classes = sorted(by_class)
    quotas = apportion(k, [len(by_class[c]) for c in classes])
    chosen: list[int] = []
    for cls, quota in zip(classes, quotas, strict=True):
        chosen.extend(rng.sample(by_class[cls], quota))
    return sorted(chosen)


def row_rng(seed: int, *key: object) -> random.Random:
    """An RNG for one row, independent of the order (or process) rows are made in."""
    return random.Random("-".join(str(part) for part in (seed, *key)))


def write_manifest(
    out: Path,
    rows: list[dict[str, Any]],
    info: dict[str, Any],
    files_dir: str,
    label_sets: dict[str, list[str]] | None = None,
) -> Path:
    """Write ``manifest.jsonl`` (one row per line, key order kept), ``dataset.json`` and,
    when given, ``labels.json`` (the full class list per label column, so a small ``n`` or
    a held-out class still has its place in the label space)."""
    path = out / MANIFEST_NAME
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {s: 0 for s in SPLITS}
    for row in rows:
        counts[row["split"]] = counts.get(row["split"], 0) + 1
    meta = {"builtin": {**info, "files_dir": files_dir, "rows": len(rows), "splits": counts}}
    (out / INFO_NAME).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if label_sets:
        text = json.dumps(
            {col: sorted(names) for col, names in label_sets.items()}, indent=2, ensure_ascii=False
        )
        (out / LABELS_NAME).write_text(text + "\n", encoding="utf-8")
    return path


@contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(k)``: a rich bar on a terminal, plain periodic lines in a log file
    (``polymodal.progress``); nothing for small jobs (under 200 items)."""
    if total < 200:

        def skip(k: int = 1) -> None:
            return None

        yield skip
        return
    from polymodal.progress import PlainProgress, on_terminal

    if not on_terminal():
        plain = PlainProgress(description, total)

        def write(k: int = 1) -> None:
            plain.advance(k)

        yield write
        plain.finish()
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(k: int = 1) -> None:
            bar.advance(task, k)

        yield advance
