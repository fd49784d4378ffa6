"""Vector indexes over a collection: ``build_index`` (resumable, shardable across processes)
and ``open_index`` / :class:`Index` (FAISS search + the item table)."""

from polymodal.index.build import BuildResult, build_index
from polymodal.index.store import Hit, Index, open_index

__all__ = ["BuildResult", "Hit", "Index", "build_index", "open_index"]
