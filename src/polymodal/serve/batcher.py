"""Dynamic batching: requests that arrive within a short window run as one model call.

One worker thread per batcher takes the first waiting item, waits up to ``window_s`` for
more (at most ``max_batch``), calls ``fn(items)`` once and hands each caller its own row. The
number of requests waiting or running is bounded (``max_pending``): past it ``submit`` raises
:class:`QueueFull` at once (the server answers 503) instead of letting latency grow without
bound. A caller that gave up (its future cancelled, e.g. on a timeout) is dropped before its
batch runs. ``stop()`` finishes everything already submitted (graceful drain).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class QueueFull(Exception):
    """The batcher already holds ``max_pending`` requests."""


class Stopped(Exception):
    """The batcher no longer takes work (the server is shutting down)."""


_STOP = object()


class DynamicBatcher(Generic[T, R]):
    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, max_batch: int = 32, window_s: float = 0.005,
                 max_pending: int = 256, name: str = "batcher") -> None:
        self.fn = fn
        self.max_batch = max_batch
        self.window_s = window_s
        self.max_pending = max_pending
        self.name = name
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0
        self._accepting = True
        self._thread = threading.Thread(target=self._loop, name=f"polymodal-{name}", daemon=True)
        self._thread.start()
        self.batches = 0  # model calls made (for tests and /stats)
        self.items = 0

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def submit(self, item: T) -> Future[R]:
        with self._lock:
            if not self._accepting:
                raise Stopped(self.name)
            if self._pending >= self.max_pending:
                raise QueueFull(self.name)
            self._pending += 1
        fut: Future[R] = Future()
        fut.add_done_callback(self._release)
        self._queue.put((item, fut))
        return fut

    def _release(self, _fut: Future[R]) -> None:
        with self._lock:
            self._pending -= 1

    def _collect(self, first: tuple[T, Future[R]]) -> tuple[list[tuple[T, Future[R]]], bool]:
        batch = [first]
        deadline = time.monotonic() + self.window_s
        stop = False
        while len(batch) < self.max_batch:
            left = deadline - time.monotonic()
            try:
                entry = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if entry is _STOP:
                stop = True
                break
            batch.append(entry)
        return batch, stop

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = self._collect(first)
            live = [(item, fut) for item, fut in batch if fut.set_running_or_notify_cancel()]
            if live:
                self._run(live)
            if stop:
                self._drain_rest()
                return

    def _drain_rest(self) -> None:
        rest = []
        while True:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
            if entry is not _STOP:
                rest.append(entry)
        for start in range(0, len(rest), self.max_batch):
            live = [(i, f) for i, f in rest[start:start + self.max_batch] if f.set_running_or_notify_cancel()]
            if live:
                self._run(live)

    def _run(self, live: list[tuple[T, Future[R]]]) -> None:
        try:
            results = self.fn([item for item, _ in live])
            if len(results) != len(live):
                raise RuntimeError(f"{self.name}: got {len(results)} results for {len(live)} items")
        except BaseException as exc:  # noqa: BLE001 - every caller gets the error
            for _, fut in live:
                fut.set_exception(exc)
            return
        self.batches += 1
        self.items += len(live)
        for (_, fut), res in zip(live, results, strict=True):
            fut.set_result(res)

    def stop(self, timeout: float | None = None) -> None:
        """Take no more work, finish what was submitted, end the worker thread."""
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
        self._queue.put(_STOP)
        self._thread.join(timeout)
