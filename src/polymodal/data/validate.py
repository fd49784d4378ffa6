"""Row validation: every row checked once, before any training, with one reason per bad row.

Before any row, ``check_columns`` looks at the manifest as a whole: a column the run needs
that no row has (``label`` when the labels are in ``topic``; ``image`` when the paths are in
``filepath``) is one error naming the columns found and the ``data.columns`` mapping that
fixes it, not one line per row.

Checks run cheapest first and stop at a row's first problem: id (missing, duplicate),
split (missing, unknown), label columns (missing, not in the label set), modality values
(missing, empty text -- always, whether or not the run reads text --, absolute path, ``..``
leaving the root, symlink leading outside the root, file not found) and finally a real decode of every referenced file (images fully
decoded under the pixel limit; audio read and checked for length and silence; video's
first frame). Decoding runs in a process pool over the machine's cores.

``apply_policy`` turns a report into the rows to use: ``fail`` raises :class:`DataError`
listing the bad rows, ``skip`` writes them to a quarantine JSONL file with their reasons
(:mod:`polymodal.data.quarantine`, which also takes the rows that fail later, while loading).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from polymodal.config import DataConfig
from polymodal.data.quarantine import Quarantine
from polymodal.data.sources import AUDIO_EXTS, IMAGE_EXTS, MODALITIES, RESERVED, VIDEO_EXTS, Manifest
from polymodal.errors import DataError

FILE_MODALITIES = ("image", "audio", "video")
POOL_THRESHOLD = 256  # below this many files a process pool costs more than it saves
LABELS_FILE = "labels.json"
# (row, data root, data.columns) -> (column, reason) when the row is unusable, else None
RowCheck = Callable[[dict[str, Any], Path, dict[str, str]], "tuple[str, str] | None"]


@dataclass(frozen=True)
class RowIssue:
    """Why one row is unusable. ``row`` is the 1-based line in the manifest file."""

    row: int
    id: str | None
    field: str
    reason: str

    def line(self) -> str:
        return f"row {self.row} (id {self.id if self.id is not None else '-'}): {self.field}: {self.reason}"


@dataclass
class ValidationReport:
    rows: int
    valid: list[dict[str, Any]]
    invalid: list[RowIssue]
    valid_lines: list[int] = field(default_factory=list)
    invalid_records: list[dict[str, Any]] = field(default_factory=list)
    quarantined: int = 0
    source: str = ""

    @property
    def ok(self) -> bool:
        return not self.invalid

    def lines_by_id(self) -> dict[str, int]:
        """Manifest line of each valid row, by id (what a later message about the row names)."""
        return {str(row.get("id")): line for row, line in zip(self.valid, self.valid_lines, strict=False)}

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "valid": len(self.valid), "invalid": [asdict(i) for i in self.invalid]}

    def summary(self) -> str:
        text = f"{self.rows} rows: {len(self.valid)} valid, {len(self.invalid)} invalid"
        return text + (f" ({self.quarantined} quarantined)" if self.quarantined else "")


# --------------------------------------------------------------------------- paths
def resolve_inside(root: Path, value: object) -> Path:
    """The file a manifest value names, or :class:`DataError` when it is not a path inside ``root``."""
    if not isinstance(value, str) or not value.strip():
        raise DataError("expected a relative file path")
    root_real = root.resolve()
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or value.startswith("\\"):
        # confined like any other path: only inside the root (the manifest's folder by default),
        # so a manifest of absolute paths anywhere is read with --root / (data.root: /)
        target = Path(value).resolve() if Path(value).is_absolute() else None
        if target is None or not target.is_relative_to(root_real):
            raise DataError("absolute path not allowed outside the data root (paths are relative to the data "
                            "root; --root / or data.root: / allows absolute paths)")
        if not target.exists():
            raise DataError("file not found")
        return target
    if os.path.normpath(value).replace("\\", "/").split("/")[0] == "..":
        raise DataError("path escapes the data root (..)")
    target = (root_real / value).resolve()
    if not target.is_relative_to(root_real):
        raise DataError("path leads outside the data root through a symlink")
    if not target.exists():
        raise DataError("file not found")
    return target


# --------------------------------------------------------------------------- labels
def load_label_sets(path: str | Path) -> dict[str, list[str]]:
    """Read ``{"<label column>": ["name", ...], ...}`` from a JSON file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot read label sets ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise DataError(f'{p}: label sets must be a JSON object {{"column": ["name", ...]}}')
    return {str(k): [str(x) for x in v] for k, v in data.items()}


def find_label_sets(manifest: Manifest) -> dict[str, list[str]] | None:
    """The ``labels.json`` beside a manifest file, when there is one."""
    candidate = manifest.path.parent / LABELS_FILE if manifest.path.is_file() else manifest.path / LABELS_FILE
    return load_label_sets(candidate) if candidate.is_file() else None


def _label_problem(value: Any, allowed: set[str] | None) -> str | None:
    values = value if isinstance(value, list) else [value]
    if value is None or value == "" or (isinstance(value, list) and not value):
        return "missing label"
    for v in values:
        if isinstance(v, dict | list) or v is None:
            return f"label value {v!r} is not a name or number"
        if allowed is not None and str(v) not in allowed:
            return f"unknown label {str(v)!r} (not in the label set)"
    return None


# --------------------------------------------------------------------------- columns
_FILE_EXTS = {"image": IMAGE_EXTS, "audio": AUDIO_EXTS, "video": VIDEO_EXTS}


def _file_modality(values: list[Any]) -> str | None:
    """The modality whose file extension every value carries (a column of paths), or None."""
    if not values or not all(isinstance(v, str) for v in values):
        return None
    kinds = {m for v in values for m, exts in _FILE_EXTS.items() if PurePosixPath(v).suffix.lower() in exts}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    return kind if all(PurePosixPath(v).suffix.lower() in _FILE_EXTS[kind] for v in values) else None


def check_columns(
    manifest: Manifest,
    modalities: list[str],
    label_columns: list[str],
    cfg: DataConfig | None = None,
    *,
    guessed: list[str] | None = None,
) -> None:
    """One :class:`DataError` for the columns a run needs that no row of ``manifest`` has.

    ``modalities`` and ``label_columns`` are needed (each read through ``data.columns``);
    ``guessed`` label columns (taken from the manifest, not asked for) that hold file paths of a
    modality no column feeds are reported too: ``filepath`` is an image column under another
    name, not a label. The message names the columns found and the mapping that fixes it.
    """
    cfg = cfg or DataConfig()
    if not manifest.rows:
        return
    present = list(dict.fromkeys(k for row in manifest.rows for k in row))
    values = {c: [row[c] for row in manifest.rows if row.get(c) not in (None, "")] for c in present}
    kinds = {c: _file_modality(values[c]) for c in present}
    # columns a label could come from: not reserved, not mapped, not a label asked for by name
    used = set(cfg.columns.values()) | (set(label_columns) - set(guessed or [])) | set(modalities)
    spare = [c for c in present if c not in RESERVED and c not in used and not c.startswith("_")]

    def suggest(target: str, modality: str | None) -> str:
        if modality in _FILE_EXTS:
            fits = [c for c in present if kinds[c] == modality and c != target]
        else:  # a label (or text): any spare column that is not a column of paths
            fits = [c for c in spare if kinds[c] is None]
        key = modality or target
        if len(fits) == 1:
            return f"map yours with data.columns.{key}={fits[0]}"
        return f"map one with data.columns.{key}=COLUMN" + (f" (maybe {' or '.join(fits)})" if fits else "")

    problems = []
    for m in modalities:
        column = cfg.columns.get(m, m)
        if column not in present:
            problems.append(f"no column {column!r} for {m}: {suggest(column, m)}")
    for col in label_columns:
        source = cfg.columns.get(col, col)
        if source not in present:
            problems.append(f"no label column {source!r}: {suggest(col, None)}")
    for col in guessed or []:
        kind = kinds.get(col)
        if kind is not None and cfg.columns.get(kind, kind) not in present:
            problems.append(f"column {col!r} holds {kind} file paths but nothing maps it to {kind}, so it "
                            f"would be read as a label: map it with data.columns.{kind}={col}")
    if problems:
        raise DataError("\n".join([
            f"{manifest.path}: the columns do not fit (every row would fail the same way):",
            *[f"  {p}" for p in problems],
            f"the manifest's columns are: {', '.join(present)}",
            "(a run config: --set data.columns.KEY=COLUMN; polymodal data validate: --column KEY=COLUMN)",
        ]))


# --------------------------------------------------------------------------- decoding
def _decode_one(task: tuple[str, str, dict[str, Any]]) -> str | None:
    """Decode one file; the reason it is unusable, or None. Runs in pool workers."""
    modality, path, opts = task
    try:
        if modality == "image":
            from polymodal.data.image import check_image

            check_image(path, max_pixels=opts["max_pixels"])
        elif modality == "audio":
            from polymodal.data.audio import check_audio

            check_audio(path, min_seconds=opts["min_seconds"])
        else:
            from polymodal.data.video import check_video

            check_video(path, max_pixels=opts["max_pixels"])
    except DataError as exc:
        message = str(exc)
        return message[len(path) + 2 :] if message.startswith(path + ": ") else message
    except Exception as exc:  # a decoder bug must mark the row, not abort validation
        return f"cannot decode ({type(exc).__name__}: {exc})"
    return None


def _pool_context() -> BaseContext:
    """``fork`` where available: spawn/forkserver re-import the caller's ``__main__``, which
    re-runs an unguarded user script. The workers only call Pillow/soundfile/PyAV, so
    inheriting the parent's state is harmless."""
    methods = get_all_start_methods()
    return get_context("fork" if "fork" in methods else "spawn")


def _run_decodes(
    tasks: list[tuple[str, str, dict[str, Any]]],
    workers: int | None,
    progress: Callable[[int, int], None] | None,
) -> list[str | None]:
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    results: list[str | None] = []
    if n_workers <= 1 or len(tasks) < POOL_THRESHOLD:
        iterator: Iterable[str | None] = map(_decode_one, tasks)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=_pool_context())
        iterator = pool.map(_decode_one, tasks, chunksize=max(1, min(256, len(tasks) // (n_workers * 8))))
    try:
        for result in iterator:
            results.append(result)
            if progress is not None and (len(results) % 100 == 0 or len(results) == len(tasks)):
                progress(len(results), len(tasks))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return results


# --------------------------------------------------------------------------- rows
def _cheap_issue(
    row: dict[str, Any],
    manifest: Manifest,
    seen: dict[str, int],
    line: int,
    modalities: list[str],
    labels: dict[str, set[str] | None],
    splits: set[str],
    cfg: DataConfig,
    files: dict[str, Path],
) -> tuple[str, str] | None:
    from polymodal.data.text import clean_text

    rid = row.get("id")
    if rid is None or str(rid).strip() == "":
        return "id", "missing id"
    key = str(rid)
    if key in seen:
        return "id", f"duplicate id (first seen at row {seen[key]})"
    seen[key] = line
    split = row.get("split")
    if split is None or split == "":
        return "split", f"missing split (expected one of {', '.join(sorted(splits))})"
    if str(split) not in splits:
        return "split", f"unknown split {split!r} (expected one of {', '.join(sorted(splits))})"
    for col, allowed in labels.items():
        source = cfg.columns.get(col, col)  # data.columns.label=topic: the label is read from topic
        if source not in row:
            return source, f"missing label column {source!r}"
        problem = _label_problem(row[source], allowed)
        if problem:
            return source, problem
    for m in MODALITIES:
        column = cfg.columns.get(m, m)  # data.columns: read a modality from another column
        value = row.get(column)
        if value is None or (value == "" and m != "text"):  # empty text falls to clean_text: always invalid
            if m in modalities:
                return column, f"missing {m}" if value is None else f"empty {m}"
            continue
        try:
            if m == "text":
                clean_text(value, cfg.text, where="text")
            else:
                files[m] = resolve_inside(manifest.root, value)
        except DataError as exc:
            reason = str(exc).removeprefix("text: ")
            return column, reason if m == "text" else f"{value}: {reason}"
    return None


def validate_rows(
    manifest: Manifest,
    *,
    modalities: list[str] | None = None,
    label_sets: dict[str, list[str]] | None = None,
    splits: Iterable[str] | None = None,
    decode: bool = True,
    options: DataConfig | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    row_check: RowCheck | None = None,
) -> ValidationReport:
    """Check every row of ``manifest``; see the module docstring for the checks and their order.

    ``modalities`` must be present in every row (default: none required, each present value
    is checked). Label columns required in every row are ``label_sets``' keys plus
    ``options.label_columns`` (default: every label column of the manifest); values must lie
    in ``label_sets[col]`` when given. ``splits`` defaults to the config's split names.
    ``row_check(row, root, columns) -> (column, reason) | None`` is what the model to be trained
    needs of a row beyond these (a CTC model: transcript characters in its vocabulary, a clip
    long enough for its transcript); it runs after the row's cheap checks passed.
    """
    cfg = options or DataConfig()
    split_names = set(splits) if splits is not None else {cfg.train_split, cfg.val_split, cfg.test_split}
    required = list(modalities or [])
    unknown = [m for m in required if m not in MODALITIES]
    if unknown:
        raise DataError(f"unknown modality {unknown[0]!r} (expected one of {', '.join(MODALITIES)})")
    mapped = set(cfg.columns.values())  # a column read as a modality (or as a named label) is not a label
    columns = [c for c in (cfg.label_columns or manifest.label_columns) if c not in mapped]
    # labels read from another column (data.columns.label=topic) are checked under their own name
    for col in [*[k for k in cfg.columns if k not in MODALITIES], *(label_sets or {})]:
        if col not in columns:
            columns.append(col)
    explicit = set(cfg.label_columns or []) | set(label_sets or {}) | {k for k in cfg.columns if k not in MODALITIES}
    check_columns(manifest, required, columns, cfg, guessed=[c for c in columns if c not in explicit])
    # an empty label set is a regression column (build_label_spaces gives it []): no class check
    labels: dict[str, set[str] | None] = {
        c: (set(label_sets[c]) if label_sets and label_sets.get(c) else None) for c in columns
    }
    opts = {"max_pixels": cfg.image.max_pixels, "min_seconds": cfg.audio.min_seconds}

    issues: dict[int, tuple[str, str]] = {}
    seen: dict[str, int] = {}
    tasks: list[tuple[str, str, dict[str, Any]]] = []
    owners: list[tuple[int, str, str]] = []  # (row index, modality, manifest value) per task
    for i, row in enumerate(manifest.rows):
        files: dict[str, Path] = {}
        issue = _cheap_issue(
            row, manifest, seen, manifest.line_numbers[i], required, labels, split_names, cfg, files
        )
        if issue is None and row_check is not None:
            issue = row_check(row, manifest.root, dict(cfg.columns))
        if issue is not None:
            issues[i] = issue
            continue
        if decode:
            for m, path in files.items():
                column = cfg.columns.get(m, m)
                tasks.append((m, str(path), opts))
                owners.append((i, column, str(row[column])))
    for (i, column, value), reason in zip(owners, _run_decodes(tasks, workers, progress), strict=True):
        if reason is not None and i not in issues:
            issues[i] = (column, f"{value}: {reason}")

    report = ValidationReport(rows=len(manifest.rows), valid=[], invalid=[], source=str(manifest.path))
    for i, row in enumerate(manifest.rows):
        line = manifest.line_numbers[i]
        if i in issues:
            fld, reason = issues[i]
            rid = row.get("id")
            report.invalid.append(RowIssue(line, None if rid is None else str(rid), fld, reason))
            report.invalid_records.append(row)
        else:
            report.valid.append(row)
            report.valid_lines.append(line)
    return report


def apply_policy(
    report: ValidationReport, on_error: str = "fail", quarantine_path: str | Path | None = None
) -> list[dict[str, Any]]:
    """The rows to use. ``fail``: raise listing bad rows; ``skip``: quarantine them to a JSONL file.

    The quarantine file's validation lines are rewritten on every call (a resumed run validates
    again); lines of rows that failed later, while loading, are kept while those rows are in use."""
    if on_error not in ("fail", "skip"):
        raise DataError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    if report.invalid and on_error == "fail":
        shown = [issue.line() for issue in report.invalid[:20]]
        more = len(report.invalid) - len(shown)
        tail = [f"... and {more} more"] if more else []
        if len(report.invalid) == report.rows:  # skipping would drop them all: do not suggest it
            advice = "every row is invalid (data.on_error=skip would leave nothing); fix the manifest"
        else:
            advice = "fix them, or set data.on_error=skip to quarantine them"
        raise DataError(
            "\n".join(
                [f"{report.source}: {len(report.invalid)} of {report.rows} rows are invalid:", *shown, *tail]
                + [advice]
            )
        )
    if quarantine_path is not None:
        entries = [{**asdict(issue), "stage": "validate", "record": record}
                   for issue, record in zip(report.invalid, report.invalid_records, strict=True)]
        Quarantine(quarantine_path).rewrite_validation(entries, {str(r.get("id")) for r in report.valid})
    report.quarantined = len(report.invalid)
    return report.valid
