"""What ``polymodal predict`` reads and writes: its inputs (a manifest, a folder, files) and its CSV.

Inputs (``read_inputs``): one manifest (JSONL / CSV / class-folder tree / ``hf:NAME``, paths
confined to its root as everywhere else), or files and folders of files the user names, read
as given (a model with one input; a ``.txt`` file holds one text per line for a text model).

The CSV (``write_predictions``): ``id``, the input column(s) as written in the source, the
source's own label column for a head (the truth) where it has one, then per head:
classification ``predicted``, ``probability``, ``prob_<class>`` for every class (up to
``MAX_CLASS_COLUMNS`` classes; beyond, or with ``top_k``, ``top1``, ``top1_prob``, ... instead);
multi-label ``predicted`` (the classes at or above the threshold, ``;``-joined) and the same
probability columns; regression ``predicted`` (``predicted_<i>`` for several outputs). With
several heads every prediction column starts with ``<head column>_``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from polymodal.errors import DataError

if TYPE_CHECKING:
    from polymodal.predict import Prediction

MANIFEST_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json", ".csv", ".tsv"})
TEXT_SUFFIXES = frozenset({".txt", ".text"})
MAX_CLASS_COLUMNS = 20  # more classes than this get top-k columns (a 1,000-class head would write 1,000)
DEFAULT_TOP_K = 5


def model_inputs(model: Any) -> list[str]:
    """The modalities a model's heads read (``FusionModel.inputs``), in order."""
    return list(getattr(model, "inputs", None) or getattr(model, "modalities", None) or [])


def head_kind(head: Any) -> str:
    """How a head's outputs are read; a registered kind other than these is read as classification."""
    kind = str(getattr(head, "kind", "classification"))
    return kind if kind in ("multilabel", "regression") else "classification"


def class_names(head: Any, width: int) -> list[str]:
    """The head's class names (saved with it), else the class indices."""
    labels = getattr(head, "labels", None)
    return [str(c) for c in labels] if labels and len(labels) == width else [str(i) for i in range(width)]


@dataclass
class PredictInputs:
    """Items to predict and what the CSV shows beside them, one entry per item."""

    ids: list[str]
    items: list[dict[str, Any]]  # {modality: value the runtime decodes}
    shown: list[dict[str, str]]  # {source column: value as written there}
    truth: list[dict[str, Any]]  # {head column: the source's label}, where the source has one
    from_manifest: bool = False  # ids are a manifest's row ids (else file names / text lines)


def _suffixes(modality: str) -> frozenset[str]:
    from polymodal.data.sources import AUDIO_EXTS, IMAGE_EXTS, VIDEO_EXTS

    return {"image": IMAGE_EXTS, "audio": AUDIO_EXTS, "video": VIDEO_EXTS}.get(modality, TEXT_SUFFIXES)


def _is_manifest(text: str) -> bool:
    path = Path(text)
    if text.startswith("hf:") or path.suffix.lower() in MANIFEST_SUFFIXES:
        return True
    # a folder with sub-folders is a class-folder tree (root/<class>/<file>) or a saved HF dataset
    return path.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir())


def read_inputs(
    model: Any, data: Sequence[str | Path], *, split: str | None = None, columns: Mapping[str, str] | None = None,
    root: str | Path | None = None,
) -> PredictInputs:
    """The items of ``data`` for ``model`` (see the module docstring for what ``data`` may be)."""
    paths = [str(d) for d in data]
    if not paths:
        raise DataError("no data: give a manifest, a class-folder tree, a folder of files or files")
    inputs = model_inputs(model)
    if len(paths) == 1 and _is_manifest(paths[0]):
        return _from_manifest(model, paths[0], inputs, split, dict(columns or {}), root)
    manifests = [p for p in paths if _is_manifest(p)]
    if manifests:
        raise DataError(f"{manifests[0]}: a manifest or class-folder tree is read on its own, not with other files")
    if split is not None:
        raise DataError("--split picks rows of a manifest or class-folder tree; files have no split")
    if len(inputs) != 1:
        raise DataError(f"this model reads {' and '.join(inputs)}: give a manifest (JSONL or CSV) with a column "
                        "for each, not files")
    return _from_files(inputs[0], [Path(p) for p in paths])


def _from_files(modality: str, paths: list[Path]) -> PredictInputs:
    ids: list[str] = []
    values: list[str] = []
    wanted = _suffixes(modality)
    for path in paths:
        if not path.exists():
            raise DataError(f"{path}: no such file or folder")
        if modality == "text":
            if path.is_dir() or path.suffix.lower() not in TEXT_SUFFIXES:
                raise DataError(f"{path}: this model reads text: give a .txt file (one text per line) or a "
                                "manifest with a text column")
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
            texts = [ln for ln in lines if ln]
            prefix = f"{path.name}:" if len(paths) > 1 else ""
            ids += [f"{prefix}line-{i}" for i in range(len(texts))]
            values += texts
        elif path.is_dir():  # a folder of files, no class sub-folders: every file of this modality
            files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in wanted
                           and not any(part.startswith(".") for part in f.relative_to(path).parts))
            if not files:
                raise DataError(f"{path}: no {modality} files here ({', '.join(sorted(wanted))})")
            prefix = f"{path.name}/" if len(paths) > 1 else ""
            ids += [prefix + f.relative_to(path).as_posix() for f in files]
            values += [str(f) for f in files]
        elif path.suffix.lower() not in wanted:
            raise DataError(f"{path}: not an {modality} file; this model reads {modality} "
                            f"({', '.join(sorted(wanted))})")
        else:
            ids.append(path.name)
            values.append(str(path))
    if len(set(ids)) != len(ids):  # two files of one name in different folders: their paths tell them apart
        ids = list(values) if modality != "text" else ids
    return PredictInputs(ids, [{modality: v} for v in values], [{modality: v} for v in values], [{} for _ in ids])


def _from_manifest(
    model: Any, source: str, inputs: list[str], split: str | None, columns: dict[str, str], root: str | Path | None,
) -> PredictInputs:
    from polymodal.data.sources import load_manifest
    from polymodal.data.validate import resolve_inside

    manifest = load_manifest(source, root)
    rows = manifest.rows
    if split is not None:
        rows = [r for r in rows if r.get("split") == split]
        if not rows:
            present = sorted({str(r.get("split")) for r in manifest.rows})
            raise DataError(f"{source}: no rows in split {split!r} (splits present: {', '.join(present)})")
    saved = dict(getattr(model, "input_columns", None) or {})
    mapping = {m: columns.get(m) or saved.get(m) or m for m in inputs}
    heads = list(getattr(model, "heads", None) or [])
    out = PredictInputs([], [], [], [], from_manifest=True)
    for i, row in enumerate(rows):
        rid = str(row.get("id", i))
        item: dict[str, Any] = {}
        shown: dict[str, str] = {}
        for m, col in mapping.items():
            value = row.get(col)
            if value is None or value == "":
                found = [k for k in row if k != "split" and not str(k).startswith("_")]
                raise DataError(
                    f"{source}: row {rid!r} has no {col!r} value: this model reads {m} from column {col!r}; "
                    f"columns found: {', '.join(found)}; map another column to it with --column {m}=NAME "
                    f"(columns={{{m!r}: NAME}} in Python)")
            if m != "text" and isinstance(value, str):
                try:
                    value = str(resolve_inside(manifest.root, value))
                except DataError as exc:
                    raise DataError(f"{source}: row {rid!r}: {exc}") from None
            item[m] = value
            shown[col] = str(row.get(col))
        out.ids.append(rid)
        out.items.append(item)
        out.shown.append(shown)
        out.truth.append({c: row[c] for c in heads if row.get(c) not in (None, "")})
    if not out.ids:
        raise DataError(f"{source}: no rows to predict")
    return out


# --------------------------------------------------------------------------- the CSV
def _fmt(value: float) -> str:
    return f"{value:.6f}"


def _truth(value: Any) -> str:
    return ";".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _head_columns(col: str, head: Any, prefix: str, top_k: int | None) -> tuple[list[str], Any]:
    """(header, fn(HeadPrediction) -> cells) for one head."""
    from polymodal.predict import HeadPrediction

    kind = head_kind(head)
    if kind == "regression":
        width = int(getattr(head, "num_outputs", 1) or 1)
        if width == 1:
            return [f"{prefix}predicted"], lambda hp: [_fmt(float(hp.label))]
        return [f"{prefix}predicted_{i}" for i in range(width)], lambda hp: [_fmt(float(v)) for v in hp.label]
    names = class_names(head, int(getattr(head, "num_outputs", 0) or 0))
    k = top_k if top_k is not None else (len(names) if len(names) <= MAX_CLASS_COLUMNS else DEFAULT_TOP_K)
    header = [f"{prefix}predicted"] + ([f"{prefix}probability"] if kind == "classification" else [])
    per_class = k >= len(names)
    if per_class:
        header += [f"{prefix}prob_{n}" for n in names]
    else:
        for i in range(1, k + 1):
            header += [f"{prefix}top{i}", f"{prefix}top{i}_prob"]

    def cells(hp: HeadPrediction) -> list[str]:
        row = [";".join(str(v) for v in hp.label) if isinstance(hp.label, list) else str(hp.label)]
        if kind == "classification":
            row.append(_fmt(hp.score or 0.0))
        if per_class:
            return row + [_fmt(hp.probabilities[n]) for n in names]
        best = sorted(hp.probabilities.items(), key=lambda kv: -kv[1])[:k]
        for name, p in best:
            row += [name, _fmt(p)]
        return row

    return header, cells


def write_predictions(
    model: Any, preds: Sequence[Prediction], inputs: PredictInputs, out: str | Path | IO[str], *,
    top_k: int | None = None,
) -> Path | None:
    """Write the CSV (see the module docstring) to a path (atomically) or a stream; returns the path."""
    if top_k is not None and top_k < 1:
        raise DataError(f"top_k must be at least 1, got {top_k}")
    heads = dict(getattr(model, "heads", {}).items())
    input_cols = list(dict.fromkeys(c for shown in inputs.shown for c in shown))
    truth_cols = [c for c in heads if any(c in t for t in inputs.truth) and c not in input_cols]
    header = ["id", *input_cols, *truth_cols]
    writers = []
    for col, head in heads.items():
        cols, cells = _head_columns(col, head, "" if len(heads) == 1 else f"{col}_", top_k)
        header += cols
        writers.append((col, cells))
    rows = [[pred.id, *(shown.get(c, "") for c in input_cols), *(_truth(truth[c]) if c in truth else ""
             for c in truth_cols), *(cell for col, cells in writers for cell in cells(pred.heads[col]))]
            for pred, shown, truth in zip(preds, inputs.shown, inputs.truth, strict=True)]
    if not isinstance(out, str | Path):
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
        return None
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)
    return path
