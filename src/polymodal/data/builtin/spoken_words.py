"""``spoken-words``: text-audio pairs synthesized offline with espeak-ng.

Every clip is one word (ten digits and ten short command words) spoken by one of several
espeak-ng voices at one of three speeds, written as a 22.05 kHz mono 16-bit WAV under
``audio/<word>/<id>.wav``. Columns: ``audio``, ``text`` (the word), ``label`` (the word),
``voice``, ``speed``. ``n`` (default 200) picks a seeded sample of the word x voice x speed
grid, stratified by word; splits are 80/10/10 stratified by word. espeak-ng runs as one
subprocess per clip, several at a time in a thread pool.
"""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from polymodal.data.builtin import _common as common
from polymodal.errors import DataError

NAME = "spoken-words"
DEFAULT_N = 200
FILES_DIR = "audio"
WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
)  # fmt: skip
VOICES = ("en", "en-us", "en+f2", "en+f3", "en+m3", "en-us+f4", "en-gb-scotland", "en-029")
SPEEDS = (120, 150, 180)
THREADS = 4


def espeak_binary() -> str:
    """Path of espeak-ng, or a DataError saying how to install it."""
    found = shutil.which("espeak-ng")
    if found is None:
        raise DataError(
            "spoken-words: espeak-ng was not found on PATH; install the Debian package espeak-ng "
            "(apt-get install espeak-ng)"
        )
    return found


def synthesize(binary: str, word: str, voice: str, speed: int, path: Path, pitch: int | None = None) -> None:
    """One clip; a DataError naming the voice and word when espeak-ng fails (``pitch``: 0-99, espeak's -p)."""
    cmd = [binary, "-v", voice, "-s", str(speed), *(["-p", str(pitch)] if pitch is not None else []),
           "-w", str(path), word]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataError(f"spoken-words: espeak-ng failed for {word!r} (voice {voice}): {exc}") from exc
    # a WAV header alone is 44 bytes: anything that small holds no speech
    if done.returncode != 0 or not path.is_file() or path.stat().st_size <= 44:
        message = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
        raise DataError(f"spoken-words: espeak-ng wrote no audio for {word!r} (voice {voice}): {message}")


def make(out_dir: str | Path, n: int | None = None, seed: int = 0) -> Path:
    grid = list(itertools.product(WORDS, VOICES, SPEEDS))
    common.check_n(NAME, n, len(grid))
    binary = espeak_binary()
    total = DEFAULT_N if n is None else n
    chosen = [
        grid[k] for k in common.stratified_take([g[0] for g in grid], total, random.Random(f"{seed}-{NAME}"))
    ]
    splits = common.stratified_splits([c[0] for c in chosen], random.Random(f"{seed}-{NAME}-splits"))
    out = common.prepare_out_dir(out_dir, FILES_DIR)
    rows: list[dict[str, Any]] = []
    for (word, voice, speed), split in zip(chosen, splits, strict=True):
        row_id = f"spoken-{word}-{voice.replace('+', '-')}-{speed}"
        rel = f"{FILES_DIR}/{word}/{row_id}.wav"
        rows.append(
            {
                "id": row_id,
                "split": split,
                "audio": rel,
                "text": word,
                "label": word,
                "voice": voice,
                "speed": speed,
            }
        )
    for word in sorted({r["label"] for r in rows}):
        (out / FILES_DIR / word).mkdir(parents=True)
    with common.progress(len(rows), NAME) as advance, ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [
            pool.submit(synthesize, binary, r["text"], r["voice"], r["speed"], out / r["audio"]) for r in rows
        ]
        for future in futures:
            future.result()
            advance(1)
    info = {
        "name": NAME,
        "seed": seed,
        "source": "espeak-ng (Debian package espeak-ng)",
        "sample_rate": 22050,
        "label": "the spoken word",
        "words": list(WORDS),
        "voices": list(VOICES),
        "speeds": list(SPEEDS),
    }
    return common.write_manifest(out, rows, info, FILES_DIR, {"label": list(WORDS)})
