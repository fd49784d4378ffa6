"""``build_index``: embed a collection chunk by chunk, then write a FAISS index and its item table.

Layout of an index folder::

    info.json      what was built: model, modality, dim, count, kind (+ why), FAISS params, root
    index.faiss    the FAISS index (FAISS's own format; row i = items.jsonl line i)
    items.jsonl    the item table: id, path (relative to root), caption, label
    build/         while building: plan.json, chunk-000000.npy ..., done.jsonl (removed at the end)

Resumable: each chunk of ``chunk_size`` items is written atomically and listed in
``build/done.jsonl``; a killed build started again with the same inputs embeds only the chunks
not listed. Shardable: under ``accelerate launch --num_processes N`` (or ``rank``/``world``
given) process r embeds chunks r, r+N, ...; after a barrier rank 0 merges the chunks, so N
processes give the same index as one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import DataError
from polymodal.index.faiss_kinds import EXACT_MAX, build_faiss, choose_kind
from polymodal.index.table import Item, embed_inputs, read_collection, write_items

FORMAT = "polymodal-index"
VERSION = 1
CHUNK_SIZE = 512


@dataclass
class BuildResult:
    path: Path
    count: int
    dim: int
    kind: str
    reason: str
    resumed_chunks: int
    seconds: float


def _model_fingerprint(model_name: str) -> str:
    """The name, plus size and mtime of a local model's top files (a retrained folder is a new plan)."""
    parts = [model_name]
    path = Path(model_name).expanduser()
    for folder in (path, path / "model"):
        if folder.is_dir():
            for f in sorted(folder.iterdir()):
                if f.is_file():
                    st = f.stat()
                    parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def _plan(model_name: str, modality: str, items: list[Item], root: Path, chunk_size: int) -> dict[str, Any]:
    h = hashlib.sha256()
    h.update(_model_fingerprint(model_name).encode())
    for item in items:
        h.update(json.dumps(asdict(item), sort_keys=True).encode())
    return {"model": model_name, "modality": modality, "count": len(items), "root": str(root),
            "chunk_size": chunk_size, "fingerprint": h.hexdigest()}


def _done_chunks(build: Path, n_chunks: int) -> set[int]:
    done_file = build / "done.jsonl"
    if not done_file.exists():
        return set()
    done = set()
    for line in done_file.read_text(encoding="utf-8").splitlines():
        try:
            k = int(json.loads(line)["chunk"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill: that chunk is redone
        if 0 <= k < n_chunks and (build / f"chunk-{k:06d}.npy").exists():
            done.add(k)
    return done


def _mark_done(build: Path, k: int, rows: int) -> None:
    line = (json.dumps({"chunk": k, "rows": rows}) + "\n").encode()
    fd = os.open(build / "done.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one O_APPEND write: safe from several processes
    finally:
        os.close(fd)


def _distributed() -> Any | None:
    """accelerate's PartialState when launched with several processes, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # gloo between CPU processes, as train does
    if state.num_processes <= 1:  # every process would write every chunk
        raise DataError(f"launched as one of {os.environ['WORLD_SIZE']} processes, but accelerate set up a "
                        "single one; launch with `accelerate launch --multi_gpu --num_processes N`")
    return state


def _check(out: Path, plan: dict[str, Any], overwrite: bool) -> None:
    """Refuse what would be overwritten (every process checks, before any of them writes)."""
    build = out / "build"
    if (out / "info.json").exists() and not overwrite:
        raise DataError(f"{out}: an index is already there; pass --overwrite to rebuild it")
    if out.exists() and any(out.iterdir()) and not (out / "info.json").exists() and not (build / "plan.json").exists():
        raise DataError(f"{out}: folder exists and is not an index; pick a new --out")
    plan_file = build / "plan.json"
    if plan_file.exists() and not overwrite and json.loads(plan_file.read_text(encoding="utf-8")) != plan:
        raise DataError(f"{out}: an unfinished build of other inputs (model, data or chunk size) is there; "
                        "pass --overwrite to start again")


def _prepare(out: Path, plan: dict[str, Any], overwrite: bool) -> None:
    """Make ``out/build`` ready for ``plan`` (the main process only)."""
    build = out / "build"
    plan_file = build / "plan.json"
    if plan_file.exists() and json.loads(plan_file.read_text(encoding="utf-8")) != plan:
        shutil.rmtree(build)  # _check allowed it: --overwrite
    if overwrite and (out / "info.json").exists():
        for name in ("info.json", "index.faiss", "items.jsonl"):
            (out / name).unlink(missing_ok=True)
    build.mkdir(parents=True, exist_ok=True)
    plan_file.write_text(json.dumps(plan, indent=1), encoding="utf-8")


def build_index(
    model_name: str,
    data: str | Path,
    out: str | Path,
    *,
    modality: str | None = None,
    root: str | Path | None = None,
    kind: str = "auto",
    exact_max: int = EXACT_MAX,
    chunk_size: int = CHUNK_SIZE,
    batch_size: int = 64,
    overwrite: bool = False,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    model: Any = None,
) -> BuildResult | None:
    """Embed every item of ``data`` with ``model_name`` and write the index to ``out``.

    Returns the result on the main process, None on the others of a distributed launch.
    ``model`` may be passed already loaded (it must be ``model_name``'s).
    """
    from polymodal.embed import embed_items
    from polymodal.runtime.decode import DecodeError

    t0 = time.perf_counter()
    if chunk_size < 1:
        raise DataError("chunk size must be at least 1")
    out = Path(out)
    state = _distributed()
    rank, world = (state.process_index, state.num_processes) if state is not None else (0, 1)
    items, modality, base = read_collection(data, modality, root)
    plan = _plan(model_name, modality, items, base, chunk_size)
    _check(out, plan, overwrite)
    if state is not None:
        state.wait_for_everyone()  # every process has checked before the main one writes
    if rank == 0:
        _prepare(out, plan, overwrite)
    if state is not None:
        state.wait_for_everyone()
    build = out / "build"
    n_chunks = (len(items) + chunk_size - 1) // chunk_size
    done = _done_chunks(build, n_chunks)
    mine = [k for k in range(n_chunks) if k % world == rank]
    todo = [k for k in mine if k not in done]
    if on_total is not None:
        on_total(sum(min(chunk_size, len(items) - k * chunk_size) for k in mine))
    if on_progress is not None and len(mine) > len(todo):
        on_progress(sum(min(chunk_size, len(items) - k * chunk_size) for k in mine if k in done))
    inputs = embed_inputs(items, modality, base)
    if todo:
        if model is None:
            import polymodal

            model = polymodal.load(model_name)
        for k in todo:
            lo, hi = k * chunk_size, min(len(items), (k + 1) * chunk_size)
            try:
                vectors = embed_items(model, inputs[lo:hi], modality, batch_size=batch_size, chunk=hi - lo)
            except DecodeError as exc:
                raise DataError(f"{data}: item {items[lo + exc.index].id!r}: {exc}") from None
            target = build / f"chunk-{k:06d}.npy"
            tmp = build / f"chunk-{k:06d}.partial.npy"
            np.save(tmp, vectors, allow_pickle=False)
            tmp.replace(target)
            _mark_done(build, k, hi - lo)
            if on_progress is not None:
                on_progress(hi - lo)
    if state is not None:
        state.wait_for_everyone()
        if rank != 0:
            return None
    missing = [k for k in range(n_chunks) if k not in _done_chunks(build, n_chunks)]
    if missing:
        raise DataError(f"{out}: chunks {missing[:5]} were not embedded; run the build again to finish it")
    vectors = np.concatenate([np.load(build / f"chunk-{k:06d}.npy", allow_pickle=False) for k in range(n_chunks)])
    kind, reason = choose_kind(len(items), kind, exact_max)
    index, params = build_faiss(vectors, kind)
    import faiss

    faiss.write_index(index, str(out / "index.faiss.partial"))
    (out / "index.faiss.partial").replace(out / "index.faiss")
    write_items(out / "items.jsonl", items)
    info = {"format": FORMAT, "version": VERSION, "model": model_name, "modality": modality,
            "dim": int(vectors.shape[1]), "count": len(items), "kind": kind, "kind_reason": reason,
            "params": params, "metric": "cosine (inner product of L2-normalised embeddings)",
            "root": str(base), "data": str(Path(data).resolve()), "processes": world,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (out / "info.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    resumed = len(done)
    shutil.rmtree(build)
    return BuildResult(out, len(items), int(vectors.shape[1]), kind, reason, resumed, time.perf_counter() - t0)
