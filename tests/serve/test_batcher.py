from __future__ import annotations

import threading
import time

import pytest

from polymodal.serve.batcher import DynamicBatcher, QueueFull, Stopped


def test_items_within_the_window_share_one_call_and_get_their_own_rows() -> None:
    calls: list[list[int]] = []
    b = DynamicBatcher(lambda xs: (calls.append(list(xs)), [x * 10 for x in xs])[1], max_batch=8, window_s=0.2)
    futs = [b.submit(i) for i in range(5)]
    assert [f.result(5) for f in futs] == [0, 10, 20, 30, 40]
    assert calls == [[0, 1, 2, 3, 4]]
    b.stop()


def test_max_batch_splits_and_a_full_queue_refuses_at_once() -> None:
    gate = threading.Event()
    sizes: list[int] = []

    def slow(xs: list[int]) -> list[int]:
        gate.wait(5)
        sizes.append(len(xs))
        return xs

    b = DynamicBatcher(slow, max_batch=2, window_s=0.05, max_pending=3)
    futs = [b.submit(i) for i in range(3)]
    with pytest.raises(QueueFull):
        b.submit(99)
    gate.set()
    assert [f.result(5) for f in futs] == [0, 1, 2] and sizes == [2, 1]
    assert b.pending == 0
    b.submit(7).result(5)  # room again
    b.stop()


def test_a_cancelled_request_is_dropped_and_errors_reach_every_caller() -> None:
    seen: list[list[str]] = []

    def fn(xs: list[str]) -> list[str]:
        seen.append(list(xs))
        if "boom" in xs:
            raise ValueError("boom")
        return xs

    b = DynamicBatcher(fn, max_batch=8, window_s=0.2)
    keep, drop = b.submit("keep"), b.submit("drop")
    assert drop.cancel()
    assert keep.result(5) == "keep" and seen == [["keep"]]
    a, c = b.submit("boom"), b.submit("x")
    for f in (a, c):
        with pytest.raises(ValueError):
            f.result(5)
    b.stop()


def test_stop_finishes_what_was_submitted_then_refuses() -> None:
    b = DynamicBatcher(lambda xs: [x + 1 for x in xs], max_batch=2, window_s=1.0)
    futs = [b.submit(i) for i in range(5)]
    t0 = time.monotonic()
    b.stop(10)
    assert [f.result(0) for f in futs] == [1, 2, 3, 4, 5] and time.monotonic() - t0 < 5
    with pytest.raises(Stopped):
        b.submit(1)
