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


async def open_loop(url: str, path: str, rate: float, seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    all_lat: list[float] = []
    codes: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=2000)) as client:
        async def one(i: int) -> None:
            t0 = time.perf_counter()
            try:
                r = await client.post(path, json=body(path, i))
                code = r.status_code
            except httpx.HTTPError:
                code = -1
            dt = time.perf_counter() - t0
            codes[code] = codes.get(code, 0) + 1
            all_lat.append(dt)
            if code == 200:
                lat.append(dt)

        tasks = []
        t_start = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            delay = t_start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t_start
    out = summary(lat, codes, wall)
    out.update(offered_rps=round(rate, 1), sent=n, wall_s=round(wall, 1),
               p99_all_ms=round(float(np.percentile(np.array(all_lat) * 1000, 99)), 1))
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
        peak = max(v["throughput_rps"] for k, v in results["runs"]["batched"].items() if k.startswith("/embed"))
        results["overload_rps"] = rate = 2 * peak
        for name, cmd in servers.items():
            port = free_port()
            proc = start(cmd(port), port)
            try:
                r = asyncio.run(open_loop(f"http://127.0.0.1:{port}", "/embed", rate, args.seconds))
                results["runs"][name]["/embed overload 2x"] = r
                print(name, "overload", r, flush=True)
            finally:
                proc.terminate()
                proc.wait(60)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
