"""Worker threads for CPU inference, and the intra-op thread count each one runs with.

Small batches of short sequences leave intra-op threads idle between tiny kernels (attention
over 12 heads x 25 tokens is mostly per-call overhead), so on CPU the runtime runs whole
batches on separate threads, fewer intra-op threads each (``worker_plan``).

How torch's thread setting behaves (OpenMP backend, measured with torch 2.14): the intra-op
count is per thread. ``torch.set_num_threads(n)`` sets the calling thread's count AND a
process-wide default that every thread picks up lazily, at its first parallel op; a thread
that calls ``set_num_threads`` before that first op is reset to the default by it. So:

- a worker first initialises its own count (``torch.get_num_threads()``), then sets it;
- the default is put back right after a pool's workers are set up, under ``THREADS_LOCK``,
  and the runtime reads a caller's count under the same lock, so no caller picks up a
  worker's count as its own;
- pools live as long as the process (one per plan), so this happens once per plan, not once
  per call, and concurrent ``encode`` calls share the workers instead of multiplying them.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

from polymodal.runtime.cpu import usable_threads

MAX_WORKERS = 4
THREADS_LOCK = threading.Lock()
_START_TIMEOUT_S = 60.0


def worker_plan(n_batches: int, device: torch.device) -> tuple[int, int]:
    """(worker threads, intra-op threads each) for ``n_batches`` batches on ``device``.

    Threads are counted from the cores this process may use (affinity mask, cgroup quota),
    never more than the calling thread's torch setting."""
    with THREADS_LOCK:  # never read a count while a pool's setup has the default changed
        threads = usable_threads()
    if device.type != "cpu" or n_batches < 2 or threads < 2:
        return 1, threads
    workers = min(threads, MAX_WORKERS, n_batches)
    return workers, max(1, threads // workers)


def _set_worker_threads(threads: int) -> None:
    torch.get_num_threads()  # this thread's lazy init first: it would reset the count set below
    torch.set_num_threads(threads)


class WorkerPools:
    """Thread pools keyed by plan ``(workers, threads each)``, created once and then shared."""

    def __init__(self) -> None:
        self._pools: dict[tuple[int, int], ThreadPoolExecutor] = {}
        self._pid = os.getpid()

    def get(self, workers: int, threads_each: int) -> ThreadPoolExecutor:
        with THREADS_LOCK:
            if self._pid != os.getpid():  # a forked child inherits the pools but not their threads
                self._pools, self._pid = {}, os.getpid()
            pool = self._pools.get((workers, threads_each))
            if pool is None:
                pool = self._pools[(workers, threads_each)] = self._start(workers, threads_each)
            return pool

    @staticmethod
    def _start(workers: int, threads_each: int) -> ThreadPoolExecutor:
        default = torch.get_num_threads()  # the caller's count: what new threads should get again
        pool = ThreadPoolExecutor(workers, thread_name_prefix=f"polymodal-encode-{threads_each}t",
                                  initializer=_set_worker_threads, initargs=(threads_each,))
        # every worker thread starts now (each blocks on the barrier, so the pool cannot reuse
        # one), sets its count, and only then is the process default put back
        barrier = threading.Barrier(workers + 1, timeout=_START_TIMEOUT_S)
        for _ in range(workers):
            pool.submit(barrier.wait)
        try:
            barrier.wait()
        finally:
            torch.set_num_threads(default)
        return pool
