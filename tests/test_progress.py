"""Plain progress lines (``polymodal.progress``): what a log file shows of long work."""

from __future__ import annotations

import io

import pytest

from polymodal.progress import PlainProgress, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_are_periodic_with_rate_and_eta() -> None:
    out, clock = io.StringIO(), Clock()
    p = PlainProgress("encoding image", 1000, every=30.0, stream=out, clock=clock)
    clock.now += 10
    p.update(100)  # the first update always prints
    for done in range(110, 300, 10):  # 19 more updates within 30 s of it: no line
        clock.now += 1
        p.update(done)
    assert out.getvalue().count("\n") == 1
    clock.now += 11  # 30 s after the first line, 40 s in all
    p.update(300)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    # 300 items in 40 s -> 7.5/s; 700 left -> 93 s
    assert lines[1] == "encoding image: 300/1000 (30%) · 7.5 items/s · elapsed 40s · ETA 1m 33s"
    clock.now += 1
    p.update(1000)
    p.finish()
    assert out.getvalue().splitlines()[-1].endswith("done")


def test_a_resumed_count_is_not_taken_for_speed() -> None:
    out, clock = io.StringIO(), Clock()
    p = PlainProgress("train", 100, unit="step", rate_unit="samples", completed=50, stream=out, clock=clock)
    clock.now += 10
    p.update(60, extra="loss 0.5000", rate=32.0)
    # 10 steps in 10 s (not 60): 40 left -> 40 s
    assert out.getvalue().strip() == "train: step 60/100 (60%) · loss 0.5000 · 32.0 samples/s · elapsed 10s · ETA 40s"


@pytest.mark.parametrize("seconds,text", [(0, "0s"), (59.4, "59s"), (61, "1m 01s"), (3600 * 2 + 240, "2h 04m")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_shared_helper_writes_lines_to_a_log(capsys: pytest.CaptureFixture[str]) -> None:
    """Feature caching and dataset makers go through this helper; stderr here is not a terminal."""
    from polymodal.data.builtin._common import progress

    with progress(250, "caching image features") as advance:
        for _ in range(250):
            advance(1)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("caching image features: 1/250 (0%)")
    assert err[-1].startswith("caching image features: 250/250 (100%)") and err[-1].endswith("done")
    with progress(20, "small") as advance:  # small jobs stay quiet
        advance(20)
    assert capsys.readouterr().err == ""


def test_a_pass_reported_first_at_its_end_is_timed_from_its_start() -> None:
    # embed reports after its first chunk; with one chunk the rate was items / ~0 s (26 million items/s)
    import io

    from polymodal.progress import PlainProgress

    now = [10.0]
    out = io.StringIO()
    line = PlainProgress("embedding image", 100, stream=out, clock=lambda: now[0], started=6.0)
    line.update(100, force=True)
    assert "25.0 items/s" in out.getvalue() and "elapsed 4s" in out.getvalue()
