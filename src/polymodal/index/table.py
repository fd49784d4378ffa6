"""The item table of an index: one row per item (``id``, ``path``, ``caption``, ``label``).

Read from a manifest, a class-folder tree or a flat folder of media; stored as JSON lines
(``items.jsonl``), never pickled. ``path`` is relative to the collection's root, so the
server can only ever send files inside that root.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from polymodal.errors import DataError


@dataclass(frozen=True)
class Item:
    id: str
    path: str | None  # media file, relative to the collection root
    caption: str | None
    label: str | None


def _label(row: dict[str, Any]) -> str | None:
    value = row.get("label")
    if value in (None, ""):
        return None
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def read_collection(data: str | Path, modality: str | None = None,
                    root: str | Path | None = None) -> tuple[list[Item], str, Path]:
    """(items, modality, root) of a collection. ``modality`` defaults to image when rows have
    images, else text (a caption index). Media paths must stay inside ``root``."""
    from polymodal.data.sources import load_manifest
    from polymodal.data.validate import resolve_inside
    from polymodal.embed import flat_folder_items

    path = Path(data)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir() and modality in (None, "image"):
        flat = flat_folder_items(path, "image")
        if flat is not None:
            names, _ = flat
            return [Item(n, n, None, None) for n in names], "image", path.resolve()
    manifest = load_manifest(path, root)
    found = manifest.modalities()
    if modality is None:
        modality = "image" if "image" in found else "text" if "text" in found else None
        if modality is None:
            raise DataError(f"{path}: rows have neither images nor text to index (found: {', '.join(found) or 'none'})")
    if modality not in ("image", "text"):
        raise DataError(f"index modality {modality!r}: choose image or text")
    base = manifest.root.resolve()
    items: list[Item] = []
    seen: set[str] = set()
    for row, line in zip(manifest.rows, manifest.line_numbers, strict=True):
        value = row.get(modality)
        if value in (None, ""):
            continue
        item_id = str(row.get("id"))
        if item_id in seen:
            raise DataError(f"{manifest.path}: line {line}: id {item_id!r} appears twice; ids name items in the index")
        seen.add(item_id)
        rel: str | None = None
        image = row.get("image")
        if image not in (None, ""):
            try:
                rel = os.path.relpath(resolve_inside(base, str(image)), base)
            except DataError as exc:
                raise DataError(f"{manifest.path}: line {line}: {image}: {exc}") from None
        text = row.get("text")
        items.append(Item(item_id, rel, None if text in (None, "") else str(text), _label(row)))
    if not items:
        raise DataError(f"{path}: no rows with a {modality!r} column")
    return items, modality, base


def write_items(path: Path, items: list[Item]) -> None:
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_items(path: Path) -> list[Item]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(Item(str(row["id"]), row.get("path"), row.get("caption"), row.get("label")))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: line {n}: not an item row ({exc})") from None
    return out


def embed_inputs(items: list[Item], modality: str, root: Path) -> list[str]:
    """What the model encodes for each item: the image file (absolute, inside root) or the caption."""
    if modality == "image":
        return [str(root / item.path) for item in items if item.path is not None]
    return [item.caption or "" for item in items]
