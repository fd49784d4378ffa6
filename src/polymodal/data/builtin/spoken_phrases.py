"""``spoken-phrases``: short spoken phrases with transcripts, for speech recognition and alignment.

A phrase is three words: a digit or a command, a colour and a shape ("seven red circle",
"stop blue square"; 18 x 6 x 4 = 432 phrases), spoken by espeak-ng (``spoken_words.synthesize``)
with one of several voices, speeds and pitches. The test split is spoken only by voices that
never occur in train or val (``TEST_VOICES``), so a score on it is a score on unseen speakers;
a seeded tenth of the phrases (``meta.phrase_seen: false``) is also kept out of train and val
and occurs only in test, so the test split holds unseen voices saying seen and unseen phrases.

Columns: ``audio`` (16 kHz mono 16-bit WAV under ``audio/<split>/``: espeak-ng's 22.05 kHz
resampled once here, so training does not resample every clip every epoch), ``text`` (the transcript,
lower case), ``label`` (the shape word: a class for zero-shot "which word is spoken"), ``meta``
(``voice``, ``speed``, ``pitch``, ``words``, ``phrase_seen``). ``n`` (default 1200) rows:
70% train, 10% val, 20% test.
"""

from __future__ import annotations

import itertools
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from polymodal.data.builtin import _common as common
from polymodal.data.builtin.spoken_words import THREADS, espeak_binary, synthesize
from polymodal.errors import DataError

NAME = "spoken-phrases"
DEFAULT_N = 1200
FILES_DIR = "audio"
FIRST = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "stop", "go", "left", "right", "up", "down", "open", "close",
)  # fmt: skip
COLOURS = ("red", "green", "blue", "yellow", "white", "black")
SHAPES = ("circle", "square", "triangle", "star")
TRAIN_VOICES = ("en", "en-us", "en+f2", "en+m3", "en-gb-scotland", "en-gb-x-rp+f3", "en-us+m5", "en-gb-x-gbcwmd")
TEST_VOICES = ("en-029", "en-us-nyc+f4", "en-gb-x-gbclan+m2")
SPEEDS = (130, 160, 190)
PITCHES = (35, 50, 65)
HELD_OUT_PHRASES = 0.1
RATIOS = {"train": 0.7, "val": 0.1, "test": 0.2}
SAMPLE_RATE = 16000


def _clip(binary: str, text: str, voice: str, speed: int, pitch: int, path: Path) -> None:
    import soundfile as sf

    from polymodal.data.audio import load_audio

    synthesize(binary, text, voice, speed, path, pitch)
    sf.write(str(path), load_audio(path, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")


def phrases() -> list[str]:
    return [" ".join(p) for p in itertools.product(FIRST, COLOURS, SHAPES)]


def _pick(grid: list[tuple[str, str, int, int]], k: int, rng: random.Random) -> list[tuple[str, str, int, int]]:
    if k > len(grid):
        raise DataError(f"{NAME}: asked for {k} clips of one split but only {len(grid)} combinations exist")
    return sorted(rng.sample(grid, k))


def plan_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """The rows (no audio yet): which phrase, voice, speed and pitch each split gets."""
    rng = random.Random(f"{seed}-{NAME}")
    every = phrases()
    unseen = set(rng.sample(every, round(len(every) * HELD_OUT_PHRASES)))
    seen = [p for p in every if p not in unseen]
    n_test = round(n * RATIOS["test"])
    n_val = round(n * RATIOS["val"])
    n_train = n - n_test - n_val
    fit = list(itertools.product(seen, TRAIN_VOICES, SPEEDS, PITCHES))
    chosen = _pick(fit, n_train + n_val, rng)
    rng.shuffle(chosen)
    test = _pick(list(itertools.product(every, TEST_VOICES, SPEEDS, PITCHES)), n_test, rng)
    rows: list[dict[str, Any]] = []
    for split, part in (("train", chosen[:n_train]), ("val", chosen[n_train:]), ("test", test)):
        for phrase, voice, speed, pitch in sorted(part):
            words = phrase.split()
            row_id = f"phrase-{'-'.join(words)}-{voice.replace('+', '-')}-{speed}-{pitch}"
            rows.append({
                "id": row_id, "split": split, "audio": f"{FILES_DIR}/{split}/{row_id}.wav", "text": phrase,
                "label": words[-1],
                "meta": {"voice": voice, "speed": speed, "pitch": pitch, "words": words,
                         "phrase_seen": phrase not in unseen},
            })
    return rows


def make(out_dir: str | Path, n: int | None = None, seed: int = 0) -> Path:
    total = DEFAULT_N if n is None else n
    common.check_n(NAME, n, 3000)
    if total < 10:
        raise DataError(f"{NAME}: n must be at least 10 (train, val and test each need rows), got {total}")
    binary = espeak_binary()
    rows = plan_rows(total, seed)
    out = common.prepare_out_dir(out_dir, FILES_DIR)
    for split in ("train", "val", "test"):
        (out / FILES_DIR / split).mkdir(parents=True)
    with common.progress(len(rows), NAME) as advance, ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(_clip, binary, r["text"], r["meta"]["voice"], r["meta"]["speed"],
                               r["meta"]["pitch"], out / r["audio"]) for r in rows]
        for future in futures:
            future.result()
            advance(1)
    info = {
        "name": NAME, "seed": seed, "source": "espeak-ng (Debian package espeak-ng)", "sample_rate": SAMPLE_RATE,
        "text": "the spoken phrase (a digit or command, a colour, a shape)", "label": "the shape word",
        "train_voices": list(TRAIN_VOICES), "test_voices": list(TEST_VOICES), "speeds": list(SPEEDS),
        "pitches": list(PITCHES), "unseen_phrases": sorted({r["text"] for r in rows if not r["meta"]["phrase_seen"]}),
    }
    return common.write_manifest(out, rows, info, FILES_DIR, {"label": list(SHAPES)})
