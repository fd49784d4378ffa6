"""polymodal serve (dynamic batching) vs the plain way (one model call per request), same model, loopback.

Closed loop at concurrency 1, 8, 32 for /embed (text) and /search (text query), then an open-loop
overload at 2x the batched server's measured /embed throughput: the batched server answers 503
past its bounded queue, the plain one lets latency grow.

Usage: python benchmarks/serve/bench_serve.py [--model lite-dual] [--seconds 8] [--out benchmarks/serve/results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]
SHAPES = ["circle", "square", "triangle", "star", "cross", "hexagon"]


def body(path: str, i: int) -> dict[str, Any]:
    return {"text": text(i), "k": 10} if path == "/search" else {"text": text(i)}


def text(i: int) -> str:  # every request a different sentence (identical rows would be deduplicated)
    return f"a {COLORS[i % 8]} {SHAPES[(i // 8) % 6]} next to {i % 97} small {COLORS[(i // 48) % 8]} dots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server on {port} did not get ready")


def summary(lat: list[float], codes: dict[int, int], seconds: float) -> dict[str, Any]:
    ok = np.array(lat) * 1000 if lat else np.array([np.nan])
    return {"throughput_rps": round(len(lat) / seconds, 1), "ok": len(lat), "codes": codes,
            "p50_ms": round(float(np.percentile(ok, 50)), 1), "p95_ms": round(float(np.percentile(ok, 95)), 1),
            "p99_ms": round(float(np.percentile(ok, 99)), 1)}


async def closed_loop(url: str, path: str, concurrency: int, seconds: float, warm: float = 1.0) -> dict[str, Any]:
    lat: list[float] = []
    codes: dict[int, int] = {}
    counter = iter(range(10**9))
    t_start = time.perf_counter()
    t_measure = t_start + warm
    t_end = t_measure + seconds
    async with httpx.AsyncClient(base_url=url, timeout=120,
                                 limits=httpx.Limits(max_connections=concurrency + 4)) as client:
        async def worker() -> None:
            while (now := time.perf_counter()) < t_end:
                t0 = now
                r = await client.post(path, json=body(path, next(counter)))
                t1 = time.perf_counter()
                if t0 >= t_measure:
                    codes[r.status_code] = codes.get(r.status_code, 0) + 1
                    if r.status_code == 200:
                        lat.append(t1 - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summary(lat, codes, seconds)


def raw_request(path: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n")
    return head.encode() + data


async def send_raw(port: int, request: bytes, timeout: float) -> int:
    """One request on its own connection; the status code (-1: refused, reset or timed out)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (OSError, asyncio.TimeoutError):
        return -1
    try:
        writer.write(request)
        status = await asyncio.wait_for(reader.readline(), timeout)
        await asyncio.wait_for(reader.read(), timeout)  # the server closes after the body
        return int(status.split()[1]) if status.startswith(b"HTTP/") else -1
    except (OSError, asyncio.TimeoutError, ValueError, IndexError):
        return -1
    finally:
        writer.close()


def fast_loop() -> Any:
    """uvloop's event loop when installed (the server uses it too), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def open_loop(url: str, path: str, rate: float, seconds: float, pid: int | None = None,
                    timeout: float = 60.0) -> dict[str, Any]:
    """Requests sent at a fixed rate whatever the server does (an open loop), each on its own connection.

    The generator writes raw HTTP/1.1 on asyncio sockets (tens of microseconds per request): an
    HTTP client library at hundreds of requests a second spent a core of its own and queued
    requests client-side, so its latencies measured the generator, not the server.
    """
    port = int(url.rsplit(":", 1)[1])
    lat: list[float] = []
    all_lat: list[float] = []
    codes: dict[int, int] = {}
    lag: list[float] = []
    memory: list[float] = [rss_mb(pid)] if pid else []

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        code = await send_raw(port, raw_request(path, body(path, i)), timeout)
        dt = time.perf_counter() - t0
        codes[code] = codes.get(code, 0) + 1
        all_lat.append(dt)
        if code == 200:
            lat.append(dt)

    async def sample_memory(stop: asyncio.Event) -> None:
        while not stop.is_set() and pid:
            memory.append(rss_mb(pid))
            await asyncio.sleep(0.5)

    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(stop))
    tasks = []
    t_start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        due = t_start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lag.append(max(0.0, time.perf_counter() - due))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t_start
    stop.set()
    await sampler
    out = summary(lat, codes, wall)
    out.update(offered_rps=round(rate, 1), sent=n, wall_s=round(wall, 1),
               p99_all_ms=round(float(np.percentile(np.array(all_lat) * 1000, 99)), 1),
               # how late the generator itself sent (a late generator under-offers the load)
               send_lag_p99_ms=round(float(np.percentile(np.array(lag) * 1000, 99)), 1))
    if memory:
        out.update(rss_mb_start=round(memory[0]), rss_mb_peak=round(max(memory)), rss_mb_end=round(memory[-1]))
    return out


def build_index(model: str, work: Path, n: int) -> Path:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    code = ("from polymodal.data.builtin import make_dataset; import sys; "
            f"make_dataset('shapes', sys.argv[1], n={n})")
    subprocess.run([sys.executable, "-c", code, str(work / "data")], check=True, env=env)
    subprocess.run([sys.executable, "-m", "polymodal.cli.main", "index", "build", model, "--data",
                    str(work / "data" / "manifest.jsonl"), "--out", str(work / "index")], check=True, env=env)
    return work / "index"


def machine() -> dict[str, Any]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    flags = Path("/proc/cpuinfo").read_text()
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_bf16" in flags,
            "torch": torch.__version__, "python": platform.python_version(),
            "note": "machine shared with other jobs during the run"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lite-dual")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--items", type=int, default=200, help="images in the searched index")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--overload-rps", type=float, default=None,
                    help="skip the closed loops and offer this rate in the overload run (default: 2x the measured peak)")
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    results: dict[str, Any] = {"machine": machine(), "model": args.model, "seconds": args.seconds, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(args.model, Path(tmp), args.items)
        servers = {
            "batched": lambda port: [sys.executable, "-m", "polymodal.cli.main", "serve", args.model, "--index",
                                     str(index), "--port", str(port), "--max-queue", "64", "--timeout", "10"],
            "plain": lambda port: [sys.executable, str(HERE / "plain_app.py"), args.model, str(index),
                                   "--port", str(port)],
        }
        for name, cmd in servers.items():  # one server at a time: they never share the cores
            results["runs"][name] = {}
            if args.overload_rps:
                continue
            port = free_port()
            proc = start(cmd(port), port)
            url = f"http://127.0.0.1:{port}"
            try:
                runs: dict[str, Any] = {}
                for path in ("/embed", "/search"):
                    for c in levels:
                        runs[f"{path} c={c}"] = r = asyncio.run(closed_loop(url, path, c, args.seconds))
                        print(name, path, c, r, flush=True)
                results["runs"][name] = runs
            finally:
                proc.terminate()
                proc.wait(60)
        rate = args.overload_rps or 2 * max(
            v["throughput_rps"] for k, v in results["runs"]["batched"].items() if k.startswith("/embed"))
        results["overload_rps"] = rate
        for name, cmd in servers.items():
            port = free_port()
            proc = start(cmd(port), port)
            try:
                with asyncio.Runner(loop_factory=fast_loop()) as runner:
                    r = runner.run(open_loop(f"http://127.0.0.1:{port}", "/embed", rate, args.seconds, proc.pid))
                results["runs"][name]["/embed overload 2x"] = r
                print(name, "overload", r, flush=True)
            finally:
                proc.terminate()
                proc.wait(60)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
