"""Benchmark: ``polymodal data validate`` on a 10,000-row image manifest (not a test).

Generates real small PNG/JPEG files plus a few planted bad rows (a PNG header declaring
30000x30000 pixels, a truncated JPEG, a zero-byte PNG, a text file named .jpg, a missing
path, a ``../`` path), then runs the real command in a subprocess and measures wall time
and peak memory (sum of RSS over the command's process tree, sampled every 20 ms, plus
the largest single process from ``getrusage``). Target: under 30 s on 2 cores, under 1 GB.

    .venv/bin/python benchmarks/validate_speed/run.py [--rows 10000] [--workdir DIR] [--write-results]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

RESULTS = Path(__file__).resolve().parents[1] / "RESULTS.md"
SECTION = "## validate_speed"


def _bomb_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def make_dataset(root: Path, rows: int, seed: int = 0) -> tuple[Path, int]:
    """Write ``rows`` rows (all but the planted ones are good images); returns manifest and bad count."""
    rng = np.random.default_rng(seed)
    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    yy, xx = np.mgrid[0:64, 0:64]
    planted = {
        "bomb.png": _bomb_png(),
        "zero.png": b"",
        "text.jpg": b"not an image\n",
    }
    for name, data in planted.items():
        (img_dir / name).write_bytes(data)
    n_good = rows - 6
    for i in range(n_good):
        # smooth gradient + noise: compresses like a small photo, not like pure noise
        base = (xx * rng.uniform(1, 4) + yy * rng.uniform(1, 4))[..., None] + rng.integers(0, 255, 3)
        arr = np.clip(base + rng.normal(0, 12, (64, 64, 3)), 0, 255).astype(np.uint8)
        ext = "png" if i % 2 else "jpg"
        Image.fromarray(arr).save(img_dir / f"{i:05d}.{ext}", quality=90)
        lines.append(
            {"id": f"img{i:05d}", "split": "train", "image": f"images/{i:05d}.{ext}", "label": f"c{i % 10}"}
        )
    full = (img_dir / "00000.jpg").read_bytes()
    (img_dir / "trunc.jpg").write_bytes(full[: len(full) // 2])
    for bad in [
        "images/bomb.png",
        "images/zero.png",
        "images/text.jpg",
        "images/trunc.jpg",
        "images/nope.png",
    ]:
        lines.append({"id": f"bad-{Path(bad).stem}", "split": "val", "image": bad, "label": "c0"})
    lines.append({"id": "bad-dotdot", "split": "val", "image": "../escape.png", "label": "c0"})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return manifest, 6


def _command(manifest: Path, entry: str) -> list[str]:
    script = Path(sys.executable).with_name("polymodal")
    if entry == "app":  # the same typer app, without the console script's wrapper
        cmd = [sys.executable, "-c", "from polymodal.cli.main import app; app()"]
    else:
        cmd = [str(script)] if script.exists() else [sys.executable, "-m", "polymodal.cli.main"]
    return [*cmd, "data", "validate", str(manifest), "--json"]


def measure(cmd: list[str]) -> dict[str, object]:
    peak = 0
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            parent = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            total = 0
            try:
                for p in [parent, *parent.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += p.memory_info().rss
            except psutil.NoSuchProcess:
                break
            peak = max(peak, total)
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    thread.join()
    max_single_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "returncode": proc.returncode,
        "wall_s": round(wall, 2),
        "peak_tree_rss_mb": round(peak / 2**20, 1),
        "peak_single_process_rss_mb": round(max_single_kib / 1024, 1),
        "stdout": out,
        "stderr": err,
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}, {platform.system()}"


def write_results(text: str) -> None:
    """Replace (or append) only this benchmark's section of RESULTS.md."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    start = current.find(SECTION)
    if start == -1:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        nxt = current.find("\n## ", start + len(SECTION))
        updated = current[:start] + text + (current[nxt + 1 :] if nxt != -1 else "")
    RESULTS.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--entry", choices=["script", "app"], default="script", help="how to start the CLI")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="validate-speed-"))
    try:
        t0 = time.perf_counter()
        manifest, n_bad = make_dataset(work / "data", args.rows)
        gen_s = time.perf_counter() - t0
        (work / "escape.png").write_bytes(b"")
        cmd = _command(manifest, args.entry)
        load_before = round(os.getloadavg()[0], 1)
        result = measure(cmd)
        if result["returncode"] not in (0, 1):
            print(result["stderr"], file=sys.stderr)
            return 2
        report = json.loads(str(result["stdout"]))
        assert report["rows"] == args.rows and len(report["invalid"]) == n_bad, report["invalid"]
        summary = {k: v for k, v in result.items() if k not in ("stdout", "stderr")}
        summary.update(
            load_before=load_before,
            rows=args.rows,
            invalid=n_bad,
            generate_s=round(gen_s, 1),
            machine=machine(),
        )
        print(json.dumps(summary, indent=2))
        for issue in report["invalid"]:
            print(f"  row {issue['row']} {issue['id']}: {issue['reason'][:90]}")
        if args.write_results:
            ok_time = "yes" if float(result["wall_s"]) < 30 else "NO"  # type: ignore[arg-type]
            ok_mem = "yes" if float(result["peak_tree_rss_mb"]) < 1024 else "NO"  # type: ignore[arg-type]
            write_results(
                f"{SECTION}\n\n"
                f"`polymodal data validate` on {args.rows:,} real image rows (64x64 PNG/JPEG, every file fully "
                f"decoded) with {n_bad} planted bad rows, including a PNG header declaring 30000x30000 pixels.\n\n"
                f"| metric | value | target |\n|---|---|---|\n"
                f"| wall time | {result['wall_s']} s | < 30 s ({ok_time}) |\n"
                f"| peak RSS, whole process tree | {result['peak_tree_rss_mb']} MB | < 1024 MB ({ok_mem}) |\n"
                f"| peak RSS, largest single process | {result['peak_single_process_rss_mb']} MB | |\n"
                f"| bad rows reported | {len(report['invalid'])} of {n_bad} planted | all |\n\n"
                f"Machine: {summary['machine']}; shared with other jobs while measured (1-min load "
                f"average {summary['load_before']} just before the run).\n\n"
                f"Reproduce: `.venv/bin/python benchmarks/validate_speed/run.py --write-results`\n"
            )
        return 0
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
