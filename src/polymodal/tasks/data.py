"""The evaluation view of a dataset: rows of a split, items per modality, label spaces.

Tasks read a manifest through the data layer (``polymodal.data.sources.load_manifest``);
anything with ``rows`` and ``root`` attributes works too. Media paths are resolved
against the manifest root and must stay inside it; models receive strings for text, paths
for images and decoded waveforms / frame lists for audio / video (``decode_media``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polymodal.errors import DataError

MEDIA = ("image", "audio", "video")


@dataclass
class EvalData:
    rows: list[dict[str, Any]]
    root: Path
    name: str
    path: Path | None = None

    def split_rows(self, split: str) -> list[dict[str, Any]]:
        """Rows of ``split``; a manifest without split columns is used whole."""
        if not any("split" in r for r in self.rows):
            return list(self.rows)
        rows = [r for r in self.rows if r.get("split") == split]
        if not rows:
            splits = sorted({str(r.get("split")) for r in self.rows})
            raise DataError(f"{self.name}: no rows in split {split!r} (splits present: {', '.join(splits)})")
        return rows

    def with_columns(self, columns: dict[str, str]) -> EvalData:
        """This data with ``columns`` (``data.columns``: key -> the column that holds it) applied:
        each row also carries its ``topic`` value under ``label``, its ``body`` under ``text``."""
        mapping = {k: v for k, v in columns.items() if k != v}
        if not mapping:
            return self
        rows = [{**r, **{k: r[v] for k, v in mapping.items() if v in r}} for r in self.rows]
        return EvalData(rows=rows, root=self.root, name=self.name, path=self.path)

    def has_split(self, split: str) -> bool:
        return any(r.get("split") == split for r in self.rows)

    def item(self, row: dict[str, Any], modality: str, index: int) -> Any:
        value = row.get(modality)
        if value in (None, ""):
            raise DataError(f"{self.name}: row {row.get('id', index)!r} has no {modality!r} value")
        if modality == "text":
            return value if isinstance(value, list) else str(value)
        return str(resolve_inside(self.root, str(value), where=f"{self.name} row {row.get('id', index)!r}"))

    def class_names(self, column: str = "label") -> list[str]:
        """Label names over ALL rows, ordered as the data layer orders label spaces (the order a
        trained head uses), so every split shares one label space."""
        from polymodal.data.loader import build_label_spaces

        for i, row in enumerate(self.rows):
            if isinstance(row.get(column), dict):
                raise DataError(f"{self.name}: row {row.get('id', i)!r} has a mapping in label column {column!r}")
        names = build_label_spaces(self.rows, [column]).get(column, [])
        if not names:
            raise DataError(f"{self.name}: no class labels in column {column!r}")
        return names

    def media_modality(self, rows: list[dict[str, Any]]) -> str:
        for m in MEDIA:
            if any(r.get(m) not in (None, "") for r in rows):
                return m
        if any(r.get("text") not in (None, "") for r in rows):
            return "text"
        raise DataError(f"{self.name}: rows have none of the columns image, audio, video, text")


def resolve_inside(root: Path, value: str, where: str = "") -> Path:
    """The data layer's path confinement, with the row named in the message."""
    from polymodal.data.validate import resolve_inside as _resolve

    try:
        return _resolve(root, value)
    except DataError as exc:
        raise DataError(f"{where}: {value!r}: {exc}") from None


def as_eval_data(data: Any) -> EvalData:
    """Accept an :class:`EvalData`, a data-layer ``Manifest`` or a manifest path."""
    if isinstance(data, EvalData):
        return data
    if isinstance(data, str | Path):
        from polymodal.data.sources import load_manifest

        manifest = load_manifest(data)
        path = Path(data)
        return EvalData(rows=list(manifest.rows), root=Path(manifest.root), name=_data_name(path), path=path)
    rows = getattr(data, "rows", None)
    root = getattr(data, "root", None)
    if rows is None or root is None:
        raise DataError(f"cannot evaluate on {type(data).__name__}: expected a manifest path or a Manifest")
    where = getattr(data, "path", None)
    name = _data_name(Path(where)) if where else Path(root).name
    return EvalData(rows=list(rows), root=Path(root), name=name, path=Path(where) if where else None)


def _data_name(path: Path) -> str:
    """A built-in dataset's own name (``dataset.json``), else the manifest's folder or stem."""
    folder = path if path.is_dir() else path.parent
    info = folder / "dataset.json"
    if info.is_file():
        try:
            meta = json.loads(info.read_text(encoding="utf-8"))
            name = (meta.get("builtin") or {}).get("name") or meta.get("name")
            if isinstance(name, str) and name:
                return name
        except (OSError, ValueError, AttributeError):
            pass  # an unreadable description only costs the nicer name
    if path.is_dir():
        return path.name
    if path.stem in {"manifest", "data", "test", "train", "index"}:
        return path.parent.name or path.stem
    return path.stem


def decode_media(model: Any, modality: str, items: list[Any]) -> list[Any]:
    """Audio and video items decoded by the runtime's one decode path (waveforms at the tower's
    rate, frame lists of its frame count): what any model's ``encode`` takes for them.

    Images stay paths: a polymodal model's ``encode`` decodes them a batch at a time through the
    same path (a chunk of decoded photos is large), and other models take image paths. Text
    stays text.
    """
    if modality not in ("audio", "video"):
        return items
    from polymodal.runtime.decode import decode_items

    return decode_items(model, modality, items)
