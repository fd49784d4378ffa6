"""An index on disk, opened for search: FAISS + the item table + where the media live."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import DataError
from polymodal.index.faiss_kinds import set_search_params
from polymodal.index.table import Item, read_items


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    caption: str | None
    label: str | None
    has_media: bool


class Index:
    """Search an index folder written by :func:`polymodal.index.build_index` (thread-safe reads)."""

    def __init__(self, path: Path, info: dict[str, Any], faiss_index: Any, items: list[Item]) -> None:
        self.path = path
        self.info = info
        self.faiss = faiss_index
        self.items = items
        self.by_id = {item.id: item for item in items}
        self.root = Path(info["root"])

    @property
    def dim(self) -> int:
        return int(self.info["dim"])

    @property
    def model(self) -> str:
        return str(self.info["model"])

    def __len__(self) -> int:
        return len(self.items)

    def search(self, queries: np.ndarray, k: int = 10) -> list[list[Hit]]:
        """Top-``k`` items for each query row (L2-normalised embeddings of the index's model)."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise DataError(f"query has {q.shape[1]} dimensions, the index {self.dim}; use the index's model "
                            f"({self.model})")
        k = max(1, min(int(k), len(self.items)))
        scores, rows = self.faiss.search(q, k)
        out = []
        for srow, irow in zip(scores, rows, strict=True):
            hits = []
            for s, i in zip(srow, irow, strict=True):
                if i < 0:
                    continue
                item = self.items[int(i)]
                hits.append(Hit(item.id, float(s), item.caption, item.label, item.path is not None))
            out.append(hits)
        return out

    def media_path(self, item_id: str) -> Path | None:
        """The stored media file of ``item_id`` (inside the index's root), or None."""
        from polymodal.data.validate import resolve_inside

        item = self.by_id.get(item_id)
        if item is None or item.path is None:
            return None
        try:
            return resolve_inside(self.root, item.path)
        except DataError:
            return None


def open_index(path: str | Path) -> Index:
    """Open an index folder (``info.json``, ``index.faiss``, ``items.jsonl``)."""
    import faiss

    folder = Path(path)
    info_file = folder / "info.json"
    if not info_file.is_file():
        hint = " (the build did not finish; run it again to resume)" if (folder / "build").is_dir() else ""
        raise DataError(f"{folder}: not an index folder, no info.json{hint}")
    info = json.loads(info_file.read_text(encoding="utf-8"))
    if info.get("format") != "polymodal-index":
        raise DataError(f"{info_file}: not a polymodal index")
    index = faiss.read_index(str(folder / "index.faiss"))
    set_search_params(index, info.get("params", {}))
    items = read_items(folder / "items.jsonl")
    if index.ntotal != len(items):
        raise DataError(f"{folder}: index.faiss holds {index.ntotal} vectors but items.jsonl {len(items)} rows")
    return Index(folder, info, index, items)


def search_text(model: Any, index: Index, query: str, k: int = 10) -> list[Hit]:
    """Top-``k`` items for a text query."""
    vec = model.encode("text", [query], convert_to_numpy=True)
    return index.search(vec, k)[0]
