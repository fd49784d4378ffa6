"""Which FAISS index a collection gets, and building it.

Exact search (``IndexFlatIP``) up to ``EXACT_MAX`` vectors: always right, and a flat scan of
100k x 384 floats took ~9 ms per query on one core here (benchmarks/serve/bench_index.py).
Above it HNSW (graph search, no training; recall and latency per ``ef_search`` are measured by
that script and recorded in benchmarks/RESULTS.md); IVF (``ivf``) builds faster and smaller
but needs a training pass and a tuned ``nprobe``. Vectors are
L2-normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from polymodal.errors import DataError

EXACT_MAX = 100_000
KINDS = ("auto", "flat", "hnsw", "ivf")
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64


def choose_kind(n: int, kind: str = "auto", exact_max: int = EXACT_MAX) -> tuple[str, str]:
    """(kind, reason) for ``n`` vectors."""
    if kind not in KINDS:
        raise DataError(f"index kind {kind!r}: choose one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind, f"asked for {kind}"
    if n <= exact_max:
        return "flat", f"{n} items <= {exact_max}: exact search"
    return "hnsw", f"{n} items > {exact_max}: approximate search (HNSW)"


def build_faiss(vectors: np.ndarray, kind: str, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """A FAISS index over ``vectors`` (n, d) float32 and the parameters it was built with."""
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    params: dict[str, Any]
    index: Any
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
        params = {}
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        params = {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH}
    elif kind == "ivf":
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = x if n <= 256 * nlist else x[rng.choice(n, 256 * nlist, replace=False)]
        index.train(sample)
        index.nprobe = min(nlist, 32)
        params = {"nlist": nlist, "nprobe": index.nprobe}
    else:
        raise DataError(f"index kind {kind!r}: choose flat, hnsw or ivf")
    if n:
        index.add(x)
    return index, params


def set_search_params(index: Any, params: dict[str, Any]) -> None:
    """Restore the search-time knobs FAISS does not keep in the file."""
    import faiss

    if "ef_search" in params:
        hnsw: Any = faiss.downcast_index(index)
        hnsw.hnsw.efSearch = int(params["ef_search"])
    if "nprobe" in params:
        ivf: Any = faiss.extract_index_ivf(index)
        ivf.nprobe = int(params["nprobe"])
