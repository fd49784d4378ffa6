"""Index benchmark: HNSW (what `polymodal index build` picks above its exact-search size) vs exact search.

Synthetic clustered vectors (a Gaussian mixture, L2-normalised: shaped like real embeddings;
uniform random vectors have no neighbours worth finding). Reports build time, file size,
recall@10 against exact search and single-query latency.

Usage: python benchmarks/serve/bench_index.py [--n 1000000] [--dim 384] [--latent 32] [--queries 1000] [--kind hnsw]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from polymodal.index.faiss_kinds import build_faiss

HERE = Path(__file__).resolve().parent


def vectors(n: int, dim: int, seed: int = 0, clusters: int = 1000, latent: int = 0) -> np.ndarray:
    """A Gaussian mixture; with ``latent`` > 0 drawn in that many dimensions and mapped to ``dim`` by a
    fixed random matrix (a low intrinsic dimension, as real embeddings have), else isotropic noise in
    all ``dim`` (the hard case: neighbours inside a cluster are nearly tied)."""
    space = latent or dim
    base = np.random.default_rng(1234)  # centres and projection shared by the collection and the queries
    centres = base.standard_normal((clusters, space)).astype(np.float32)
    proj = base.standard_normal((space, dim)).astype(np.float32) if latent else None
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        z = centres[rng.integers(0, clusters, hi - lo)] + 0.6 * rng.standard_normal((hi - lo, space))
        out[lo:hi] = z @ proj if proj is not None else z
    faiss.normalize_L2(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--kind", default="hnsw", choices=["hnsw", "ivf"])
    ap.add_argument("--latent", type=int, default=32, help="intrinsic dimension (0: isotropic in all --dim)")
    ap.add_argument("--ef", default="64,128,256", help="HNSW efSearch values to measure")
    ap.add_argument("--out", type=Path, default=HERE / "index_results.json")
    args = ap.parse_args()
    x = vectors(args.n, args.dim, latent=args.latent)
    q = vectors(args.queries, args.dim, seed=1, latent=args.latent)
    t0 = time.perf_counter()
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(x)
    _, truth = exact.search(q, 10)
    exact_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index, params = build_faiss(x, args.kind)
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "index.faiss")
        faiss.write_index(index, path)
        size = os.path.getsize(path)
    def measure() -> dict[str, float]:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        _, got = index.search(q, 10)
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth, strict=True)]))
        faiss.omp_set_num_threads(1)  # one query at a time, one thread: what a request costs
        lat = []
        for i in range(min(args.queries, 500)):
            t = time.perf_counter()
            index.search(q[i : i + 1], 10)
            lat.append((time.perf_counter() - t) * 1000)
        return {"recall_at_10": round(recall, 4), "query_ms_p50": round(float(np.percentile(lat, 50)), 3),
                "query_ms_p99": round(float(np.percentile(lat, 99)), 3)}

    sweep = {}
    if args.kind == "hnsw":
        for ef in (int(e) for e in args.ef.split(",")):
            faiss.downcast_index(index).hnsw.efSearch = ef
            sweep[f"ef_search={ef}"] = measure()
    else:
        sweep[f"nprobe={params['nprobe']}"] = measure()
    faiss.omp_set_num_threads(1)
    t = time.perf_counter()
    for i in range(100):
        exact.search(q[i : i + 1], 10)
    exact_ms = (time.perf_counter() - t) * 10
    res = {"n": args.n, "dim": args.dim, "latent_dim": args.latent, "kind": args.kind, "build_params": params,
           "build_s": round(build_s, 1), "size_mb": round(size / 2**20, 1), "search": sweep,
           "exact_query_ms": round(exact_ms, 3), "exact_ground_truth_s": round(exact_s, 1),
           "note": "machine shared with other jobs during the run"}
    print(json.dumps(res, indent=1))
    args.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
