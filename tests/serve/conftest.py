from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("faiss")
pytest.importorskip("httpx")


@pytest.fixture(scope="session")
def shapes_index(shapes_dir: Path, tiny, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from polymodal.index import build_index, open_index

    out = tmp_path_factory.mktemp("serve-index") / "idx"
    build_index("tiny-dual", shapes_dir / "manifest.jsonl", out, model=tiny)
    return open_index(out)


@contextmanager
def running(app: Any, limits: Any = None) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, in a thread, configured as `polymodal serve`
    configures it; yields its base URL."""
    import uvicorn

    from polymodal.serve.limits import Limits, server_config

    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=0, limits=limits or Limits()))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def wait_ready(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready")


@pytest.fixture(scope="module")
def server(tiny, shapes_index) -> Iterator[str]:  # type: ignore[no-untyped-def]
    from polymodal.serve import Limits, create_app

    app = create_app(tiny, index=shapes_index, limits=Limits(batch_window_ms=20), model_name="tiny-dual")
    with running(app) as url:
        wait_ready(url)
        yield url


@pytest.fixture(scope="session")
def serve_helpers() -> tuple[Any, Any]:
    """(running, wait_ready) for tests that start their own server."""
    return running, wait_ready
