"""Audio decoding: WAV/FLAC/OGG via soundfile -> mono float32 at the tower's sample rate.

Rules: channels are averaged to mono; audio is resampled with a polyphase filter
(``scipy.signal.resample_poly``) to ``target_rate``; clips longer than ``max_seconds`` are
cut to that length. Unreadable, empty, non-finite (a float file holding NaN or inf samples:
one would turn every loss it touches into NaN), too-short (under ``min_seconds``) and silent
(peak under ``SILENCE_PEAK``) clips raise :class:`DataError` naming the file, so validation
can flag them per row.
"""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np

from polymodal.errors import DataError

SILENCE_PEAK = 1e-4  # about -80 dBFS: nothing audible, only dither or digital zero


def _read(src: str | Path | bytes) -> tuple[np.ndarray, int]:
    import io

    import soundfile as sf

    if isinstance(src, bytes):
        name = "<in-memory audio>"
        if not src:
            raise DataError(f"{name}: empty file (0 bytes)")
        source: object = io.BytesIO(src)
    else:
        p = Path(src)
        name, source = str(p), str(p)
        if not p.is_file():
            raise DataError(f"{p}: file not found")
        if p.stat().st_size == 0:
            raise DataError(f"{p}: empty file (0 bytes)")
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise DataError(f"{name}: cannot decode audio ({exc})") from None
    return data, int(rate)


def check_finite(wave: np.ndarray, name: str) -> None:
    """Refuse NaN / inf samples (a float WAV can hold them; integer PCM cannot)."""
    bad = int(wave.size - np.count_nonzero(np.isfinite(wave)))
    if bad:
        plural = "s" if bad > 1 else ""
        raise DataError(f"{name}: audio holds {bad} non-finite sample{plural} (NaN or inf)")


def resample(wave: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling of a 1-D signal from ``rate`` to ``target_rate``."""
    if rate == target_rate or wave.size == 0:
        return wave.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target_rate))
    out = resample_poly(wave, target_rate // g, rate // g)
    return np.asarray(out, dtype=np.float32)


def load_audio(
    path: str | Path | bytes,
    target_rate: int | None = None,
    *,
    min_seconds: float = 0.05,
    max_seconds: float | None = None,
    reject_silent: bool = True,
) -> np.ndarray:
    """Decode ``path`` (or a file's bytes) to a mono float32 waveform at ``target_rate`` (default:
    the file's rate)."""
    data, rate = _read(path)
    if isinstance(path, bytes):
        path = "<in-memory audio>"
    if data.shape[0] == 0:
        raise DataError(f"{path}: audio has no samples")
    check_finite(data, str(path))
    seconds = data.shape[0] / rate
    if seconds < min_seconds:
        raise DataError(f"{path}: audio too short ({seconds:.3f} s < {min_seconds} s)")
    wave = data.mean(axis=1)
    if reject_silent and float(np.max(np.abs(wave))) < SILENCE_PEAK:
        raise DataError(f"{path}: audio is silent (peak below {SILENCE_PEAK:g})")
    if max_seconds is not None:
        wave = wave[: int(round(max_seconds * rate))]
    return resample(wave, rate, target_rate or rate)


def check_audio(path: str | Path, *, min_seconds: float = 0.05) -> None:
    """Decode and discard; raises :class:`DataError` for unreadable, too-short or silent clips."""
    load_audio(path, None, min_seconds=min_seconds)
