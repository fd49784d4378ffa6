"""Builders for the bad-input corpus: every file is generated here, nothing is downloaded."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from PIL import Image


def rgb_array(h: int = 6, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def save_png(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(path, format="PNG")
    return path


def jpeg_bytes(arr: np.ndarray, **kw: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png16(arr: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (grey, grey+alpha, RGB or RGBA by channel count)."""
    if arr.ndim == 2:
        arr = arr[..., None]
    h, w, c = arr.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + arr[i].astype(">u2").tobytes() for i in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid PNG header declaring ``width x height`` grey pixels with almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def write_wav(
    path: Path, seconds: float = 0.25, rate: int = 16000, channels: int = 1, freq: float = 440.0
) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t)
    data = np.stack([wave * (k + 1) / channels for k in range(channels)], axis=1)
    sf.write(str(path), data.astype(np.float32), rate)
    return path


def build_files(root: Path) -> dict[str, str]:
    """Write every good and bad file under ``root``; returns name -> path relative to root."""
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    rel: dict[str, str] = {}

    def put(name: str, data: bytes) -> None:
        (files / name).write_bytes(data)
        rel[name] = f"files/{name}"

    good = rgb_array(16, 16)
    buf = io.BytesIO()
    Image.fromarray(good).save(buf, format="PNG")
    put("good.png", buf.getvalue())
    put("good.jpg", jpeg_bytes(good))
    full = jpeg_bytes(rgb_array(64, 64, seed=1))
    put("truncated.jpg", full[: len(full) // 2])
    put("zero.png", b"")
    put("text.jpg", b"this is not an image, only text\n")
    put("bomb.png", bomb_png())
    put("corrupt.wav", b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not a format chunk")
    put("zero.wav", b"")
    write_wav(files / "good.wav")
    rel["good.wav"] = "files/good.wav"
    # a symlink inside the root that points outside it
    outside = root.parent / f"{root.name}-outside.png"
    outside.write_bytes(buf.getvalue())
    (files / "escape.png").symlink_to(outside)
    rel["escape.png"] = "files/escape.png"
    return rel


# (case name, row fields, expected field, expected reason substring); None field = valid row
def mixed_cases(rel: dict[str, str], outside_abs: str) -> list[tuple[str, dict[str, Any], str | None, str]]:
    return [
        ("good-png", {"image": rel["good.png"], "text": "a good picture"}, None, ""),
        ("good-jpg", {"image": rel["good.jpg"], "text": "another"}, None, ""),
        ("good-wav", {"audio": rel["good.wav"], "text": "a tone"}, None, ""),
        ("truncated-jpeg", {"image": rel["truncated.jpg"]}, "image", "truncated image"),
        ("zero-byte-png", {"image": rel["zero.png"]}, "image", "empty file (0 bytes)"),
        ("text-as-jpg", {"image": rel["text.jpg"]}, "image", "not a recognised image file"),
        ("bomb", {"image": rel["bomb.png"]}, "image", "decompression bomb"),
        ("missing-path", {"image": "files/nope.png"}, "image", "file not found"),
        ("dotdot-path", {"image": "../outside.png"}, "image", "escapes the data root"),
        ("absolute-path", {"image": outside_abs}, "image", "absolute path not allowed"),
        ("symlink-escape", {"image": rel["escape.png"]}, "image", "outside the data root through a symlink"),
        ("empty-text", {"text": "   "}, "text", "empty text"),
        ("unknown-label", {"text": "fine text", "label": "zebra"}, "label", "unknown label 'zebra'"),
        ("missing-label", {"text": "fine text", "label": None}, "label", "missing label column 'label'"),
        ("bad-split", {"text": "fine text", "split": "training"}, "split", "unknown split 'training'"),
        ("corrupt-wav", {"audio": rel["corrupt.wav"]}, "audio", "cannot decode audio"),
        ("zero-length-wav", {"audio": rel["zero.wav"]}, "audio", "empty file (0 bytes)"),
    ]


def write_mixed_manifest(root: Path) -> tuple[Path, list[tuple[int, str, str | None, str]]]:
    """A JSONL manifest mixing good rows with one row per bad case.

    Returns the path and, per row, ``(line, id, field or None, reason substring)``. Includes a
    duplicate id and an invalid-UTF-8 line written as raw bytes.
    """
    rel = build_files(root)
    outside_abs = str((root.parent / f"{root.name}-outside.png").resolve())
    (root / "labels.json").write_text(json.dumps({"label": ["cat", "dog"]}))
    lines: list[bytes] = []
    expected: list[tuple[int, str, str | None, str]] = []
    for name, fields, field, reason in mixed_cases(rel, outside_abs):
        row: dict[str, Any] = {"id": name, "split": "train", "label": "cat", **fields}
        if row["label"] is None:
            del row["label"]
        lines.append(json.dumps(row).encode())
        expected.append((len(lines), name, field, reason))
    lines.append(json.dumps({"id": "good-png", "split": "val", "label": "dog", "text": "again"}).encode())
    expected.append((len(lines), "good-png", "id", "duplicate id (first seen at row 1)"))
    lines.append(b'{"id": "bad-utf8", "split": "test", "label": "dog", "text": "caf\xe9 \xff"}')
    expected.append((len(lines), "bad-utf8", "text", "invalid UTF-8"))
    path = root / "manifest.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, expected
