"""Each server limit, hit with the bad request it is there for."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from polymodal.serve import Limits, create_app


def png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def small(tiny, shapes_index, serve_helpers):  # type: ignore[no-untyped-def]
    running, wait_ready = serve_helpers
    app = create_app(tiny, index=shapes_index, limits=Limits(max_body_bytes=64_000, max_pixels=1_000_000),
                     model_name="tiny-dual")
    with running(app) as url:
        wait_ready(url)
        yield url


def test_body_over_the_limit_is_413_before_it_is_read(small: str) -> None:
    port = int(small.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        # announce 1 GB and send none of it: the answer comes from the header alone
        s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000000000\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:80]
    assert httpx.get(f"{small}/healthz").status_code == 200


@pytest.mark.parametrize("ctype", ["application/json", "multipart/form-data; boundary=b"])
def test_chunked_body_over_the_limit_is_cut_off_with_413(small: str, ctype: str) -> None:
    head = (b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n'
            if ctype.startswith("multipart") else b'{"text": "')

    def body():  # type: ignore[no-untyped-def]
        yield head
        for _ in range(200):  # 200 x 16 KB without a Content-Length
            yield b"x" * 16_384

    r = httpx.post(f"{small}/embed", content=body(), headers={"content-type": ctype})
    assert r.status_code == 413
    assert httpx.get(f"{small}/healthz").status_code == 200


def test_decompression_bomb_and_truncated_uploads_are_4xx_and_the_worker_lives_on(small: str) -> None:
    bomb = png((5000, 5000), "1")  # 25 MP of one colour: a few KB compressed
    assert len(bomb) < 64_000
    r = httpx.post(f"{small}/embed", files={"image": ("b.png", bomb, "image/png")})
    assert r.status_code == 413 and "bomb" in r.json()["detail"]
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)).save(noise, "PNG")
    truncated = noise.getvalue()[: len(noise.getvalue()) // 2]
    r = httpx.post(f"{small}/search", files={"image": ("t.png", truncated, "image/png")})
    assert r.status_code == 400 and "truncated" in r.json()["detail"]
    ok = httpx.post(f"{small}/embed", files={"image": ("ok.png", png((64, 64)), "image/png")})
    assert ok.status_code == 200


def test_full_queue_answers_503_with_retry_after(tiny, serve_helpers) -> None:
    running, wait_ready = serve_helpers
    # a batch waits 1 s for company; at most 2 requests may wait
    app = create_app(tiny, limits=Limits(max_queue=2, batch_window_ms=1000), model_name="tiny-dual")
    with running(app) as url:
        wait_ready(url)
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda i: httpx.post(f"{url}/embed", json={"text": f"t{i}"}, timeout=30), range(8)))
    codes = sorted(r.status_code for r in replies)
    assert codes.count(200) == 2 and codes.count(503) == 6, codes
    busy = next(r for r in replies if r.status_code == 503)
    assert busy.headers["retry-after"] == "1" and "queue full" in busy.json()["detail"]


def test_connections_past_the_limit_get_503_before_they_are_read(tiny, serve_helpers) -> None:
    # the tower queue has room for all 8; the HTTP server may hold only 3 at once: the rest are
    # turned away at once instead of waiting in the server ahead of the queue
    running, wait_ready = serve_helpers
    limits = Limits(max_queue=64, batch_window_ms=1000, max_connections=3)
    app = create_app(tiny, limits=limits, model_name="tiny-dual")
    with running(app, limits) as url:
        wait_ready(url)
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda i: httpx.post(f"{url}/embed", json={"text": f"c{i}"}, timeout=30), range(8)))
        assert httpx.get(f"{url}/healthz").status_code == 200  # the server goes on
    codes = sorted(r.status_code for r in replies)
    assert 1 <= codes.count(200) <= 3 and codes.count(503) == 8 - codes.count(200), codes


def test_request_over_the_timeout_is_504_and_the_server_goes_on(tiny, serve_helpers) -> None:
    running, wait_ready = serve_helpers
    app = create_app(tiny, limits=Limits(timeout_s=0.2, batch_window_ms=2000), model_name="tiny-dual")
    with running(app) as url:
        wait_ready(url)
        t0 = time.monotonic()
        r = httpx.post(f"{url}/embed", json={"text": "slow"}, timeout=30)
        assert r.status_code == 504 and time.monotonic() - t0 < 1.5
        assert httpx.get(f"{url}/healthz").status_code == 200


def test_not_ready_until_warmed_up(tiny) -> None:
    app = create_app(tiny, model_name="tiny-dual")
    from fastapi.testclient import TestClient

    client = TestClient(app)  # not entered: no lifespan, so the warm-up never ran
    assert client.get("/healthz").status_code == 200
    r = client.get("/readyz")
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    r = client.post("/embed", json={"text": "x"})
    assert r.status_code == 503 and "warming up" in r.json()["detail"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp* writes them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, _, hexport = local.partition(":")
            if state == "0A" and int(hexport, 16) == port:
                found.add(addr)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_cli_binds_loopback_and_drains_on_sigterm(tmp_path: Path, serve_helpers) -> None:
    wait_ready = serve_helpers[1]
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).parents[2] / "src"),
                                                                   os.environ.get("PYTHONPATH", "")] if p)}
    proc = subprocess.Popen([sys.executable, "-m", "polymodal.cli.main", "serve", "tiny-dual", "--port", str(port),
                             "--batch-window-ms", "1500"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout=120)
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only, not 0.0.0.0 or ::
        results: list[int] = []

        def call(i: int) -> None:
            results.append(httpx.post(f"{url}/embed", json={"text": f"drain {i}"}, timeout=30).status_code)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.5)  # the requests wait in the batch window
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(30)
        assert results == [200] * 6
        assert proc.wait(30) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
