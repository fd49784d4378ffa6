"""Where rows come from: JSONL/CSV manifests, class-folder trees, Hugging Face datasets.

Every source produces the same thing, a :class:`Manifest`: a list of plain dict rows
(``id``, ``split``, modality columns, label columns), the data root every file path must
stay inside, and the label columns. Reading problems that make the whole source unusable
(file missing, a malformed JSONL line, a CSV row with the wrong number of fields) raise
:class:`DataError` naming the file and line; problems with one row's *content* are left
to :mod:`polymodal.data.validate`, which reports them per row.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.errors import DataError

MODALITIES: tuple[str, ...] = ("image", "text", "audio", "video")
# columns that are never labels; anything else in a manifest is a label column
RESERVED: frozenset[str] = frozenset({"id", "split", "meta", *MODALITIES})
SPLITS: tuple[str, ...] = ("train", "val", "test")

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
AUDIO_EXTS = frozenset({".wav", ".flac", ".ogg"})
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mkv", ".webm", ".mov"})


@dataclass
class Manifest:
    """Rows of one dataset plus where they live.

    ``line_numbers[i]`` is the 1-based line of ``rows[i]`` in the manifest file (the row
    number users see in validation reports); for folder trees and HF datasets it is the
    1-based position.
    """

    rows: list[dict[str, Any]]
    root: Path
    path: Path
    label_columns: list[str]
    line_numbers: list[int] = field(default_factory=list)
    kind: str = "jsonl"

    def __post_init__(self) -> None:
        if not self.line_numbers:
            self.line_numbers = list(range(1, len(self.rows) + 1))

    def modalities(self) -> list[str]:
        """Modality columns present in at least one row, in canonical order."""
        return [m for m in MODALITIES if any(row.get(m) not in (None, "") for row in self.rows)]


def label_columns_of(rows: list[dict[str, Any]]) -> list[str]:
    """Every non-reserved, non-private column seen in any row; ``label`` first."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key not in RESERVED and not key.startswith("_"):
                seen[key] = None
    cols = list(seen)
    return sorted(cols, key=lambda c: (c != "label", cols.index(c)))


def assign_splits(
    rows: list[dict[str, Any]], ratio: tuple[float, float, float], seed: int, by: str | None = "label"
) -> None:
    """Give rows without a split a seeded train/val/test split, stratified by ``by`` when present."""
    if sum(ratio) <= 0 or any(r < 0 for r in ratio):
        raise DataError(f"split ratio {ratio} must be non-negative and not all zero")
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        key = row.get(by) if by else None
        groups.setdefault(json.dumps(key, sort_keys=True, default=str), []).append(i)
    rng = random.Random(seed)
    total = float(sum(ratio))
    for key in sorted(groups):
        idx = groups[key]
        rng.shuffle(idx)
        n_train = round(len(idx) * ratio[0] / total)
        n_val = round(len(idx) * ratio[1] / total)
        for j, i in enumerate(idx):
            rows[i]["split"] = "train" if j < n_train else "val" if j < n_train + n_val else "test"


# --------------------------------------------------------------------------- JSONL / CSV
def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read manifest ({exc.strerror or exc})") from None
    for number, line in enumerate(raw.splitlines(), start=1):
        # surrogateescape keeps invalid UTF-8 bytes so validation can report them per row
        text = line.decode("utf-8", errors="surrogateescape").strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{number}: malformed JSON line ({exc.msg} at column {exc.colno})"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{number}: each line must be a JSON object, got {type(obj).__name__}")
        rows.append(obj)
        lines.append(number)
    return rows, lines


def _csv_cell(value: str) -> Any:
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        # a JSON list in a cell is a multi-label value
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        return parsed if isinstance(parsed, list) else value
    return value


def _read_csv(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    try:
        handle = path.open(encoding="utf-8", errors="surrogateescape", newline="")
    except OSError as exc:
        raise DataError(f"{path}: cannot read manifest ({exc.strerror or exc})") from None
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: empty CSV manifest (no header line)") from None
        except csv.Error as exc:
            raise DataError(f"{path}:1: malformed CSV header ({exc})") from None
        header = [h.strip() for h in header]
        # a spreadsheet export rarely has ids: its line numbers are stable ids while the file is unchanged
        numbered = "id" not in header
        dupes = [h for h, c in Counter(header).items() if c > 1]
        if dupes:
            raise DataError(f"{path}:1: CSV header repeats column(s) {', '.join(dupes)}")
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise DataError(f"{path}:{reader.line_num}: malformed CSV line ({exc})") from None
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise DataError(
                    f"{path}:{reader.line_num}: expected {len(header)} columns ({', '.join(header)}), "
                    f"got {len(cells)}"
                )
            # an empty cell means "absent", like a missing key in JSONL
            row = {h: _csv_cell(c) for h, c in zip(header, cells, strict=True) if c.strip() != ""}
            if numbered:
                row = {"id": str(reader.line_num), **row}
            rows.append(row)
            lines.append(reader.line_num)
    return rows, lines


# --------------------------------------------------------------------------- folders
def _modality_of(path: Path) -> str | None:
    ext = path.suffix.lower()
    if ext in IMAGE_EXTS:
        return "image"
    if ext in AUDIO_EXTS:
        return "audio"
    if ext in VIDEO_EXTS:
        return "video"
    return None


def _read_folder(root: Path) -> tuple[list[dict[str, Any]], bool]:
    """``root/<class>/<file>`` or ``root/<split>/<class>/<file>``; returns rows and whether splits were given."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise DataError(f"{root}: class-folder tree has no sub-folders (expected root/<class>/<file>)")
    given_splits = all(p.name in SPLITS for p in subdirs)
    tops = [(p.name, p) for p in subdirs] if given_splits else [(None, root)]
    rows: list[dict[str, Any]] = []
    for split, top in tops:
        for class_dir in sorted(p for p in top.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for file in sorted(class_dir.iterdir()):
                modality = _modality_of(file)
                if modality is None or file.name.startswith("."):
                    continue
                rel = file.relative_to(root).as_posix()
                row: dict[str, Any] = {"id": rel, modality: rel, "label": class_dir.name}
                if split is not None:
                    row["split"] = split
                rows.append(row)
    if not rows:
        raise DataError(f"{root}: no image, audio or video files found under root/<class>/")
    return rows, given_splits


# --------------------------------------------------------------------------- Hugging Face
def _read_hf(name_or_path: str) -> list[dict[str, Any]]:
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DataError(
            f"{name_or_path}: reading Hugging Face datasets needs the optional 'datasets' package "
            "(pip install 'polymodal[hf]')"
        ) from None
    try:
        if Path(name_or_path).is_dir():
            loaded = datasets.load_from_disk(name_or_path)
        else:
            loaded = datasets.load_dataset(name_or_path)
    except Exception as exc:  # the datasets library raises many unrelated types
        raise DataError(f"{name_or_path}: cannot load Hugging Face dataset ({exc})") from None
    parts = loaded.items() if isinstance(loaded, dict) else [("train", loaded)]
    rows: list[dict[str, Any]] = []
    for split, ds in parts:
        split_name = {"validation": "val", "valid": "val"}.get(split, split)
        for i, item in enumerate(ds):
            row = dict(item)
            row.setdefault("id", f"{split}-{i}")
            row["split"] = split_name
            rows.append(row)
    return rows


def _is_hf_folder(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file()


# --------------------------------------------------------------------------- entry point
def load_manifest(
    path: str | Path,
    root: str | Path | None = None,
    *,
    label_columns: list[str] | None = None,
    split_ratio: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> Manifest:
    """Read a dataset description into a :class:`Manifest`.

    ``path`` is a ``.jsonl`` / ``.csv`` manifest, a class-folder root, ``hf:NAME`` or a saved
    HF dataset folder. ``root`` (default: the manifest's folder) is where relative paths
    resolve and what they must stay inside. A manifest with no ``split`` column at all gets
    a seeded, label-stratified split by ``split_ratio``.
    """
    text = str(path)
    if text.startswith("hf:"):
        rows = _read_hf(text[3:])
        base = Path(root) if root else Path.cwd()
        return Manifest(rows, base.resolve(), Path(text), label_columns or label_columns_of(rows), kind="hf")
    p = Path(path)
    if p.is_dir():
        if _is_hf_folder(p):
            rows = _read_hf(str(p))
            kind = "hf"
        else:
            rows, given = _read_folder(p)
            if not given:
                assign_splits(rows, split_ratio, seed)
            kind = "folder"
        base = Path(root) if root else p
        return Manifest(rows, base.resolve(), p, label_columns or label_columns_of(rows), kind=kind)
    if not p.exists():
        raise DataError(f"{p}: manifest not found")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        rows, lines = _read_jsonl(p)
        kind = "jsonl"
    elif suffix in (".csv", ".tsv"):
        rows, lines = _read_csv(p)
        kind = "csv"
    else:
        raise DataError(f"{p}: unknown manifest type {suffix!r} (expected .jsonl, .csv or a folder)")
    if rows and not any("split" in row for row in rows):
        assign_splits(rows, split_ratio, seed)
    base = Path(root) if root else p.parent
    return Manifest(rows, base.resolve(), p, label_columns or label_columns_of(rows), lines, kind)


def manifest_stats(manifest: Manifest) -> dict[str, Any]:
    """Counts per split, per label value (each label column) and per modality; no decoding."""
    splits: Counter[str] = Counter(str(row.get("split", "<none>")) for row in manifest.rows)
    modalities: Counter[str] = Counter()
    labels: dict[str, Counter[str]] = {c: Counter() for c in manifest.label_columns}
    for row in manifest.rows:
        for m in MODALITIES:
            if row.get(m) not in (None, ""):
                modalities[m] += 1
        for col in manifest.label_columns:
            value = row.get(col)
            values = value if isinstance(value, list) else [value]
            for v in values:
                labels[col]["<missing>" if v is None else str(v)] += 1
    return {
        "rows": len(manifest.rows),
        "splits": dict(sorted(splits.items())),
        "modalities": {m: modalities[m] for m in MODALITIES if modalities[m]},
        "labels": {c: dict(sorted(cnt.items())) for c, cnt in labels.items()},
    }
