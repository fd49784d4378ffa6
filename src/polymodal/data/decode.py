"""One raw value of one modality -> the decoded raw value a tower's ``preprocess`` takes.

The training loader decodes a manifest cell with ``decode_value`` and so does the inference
runtime (``polymodal.runtime.decode``) for whatever a caller hands ``encode``; both therefore
apply the same checks (decompression-bomb limit, unreadable / empty / silent audio, frame
sampling). What differs is only the options: the loader's come from the run's data config,
the runtime's from the tower (its sample rate, its frame count).

Accepted values per modality:

- text: a string (``bytes`` as UTF-8); cleaned by ``clean_text`` when ``options.text`` is set
  (training), passed as given otherwise (the tokenizer sees exactly what the caller sent);
- image: a path, a file's bytes, a PIL image, or an HxW / HxWx3 / HxWx4 uint8 array -> RGB
  8-bit PIL image (``image.load_image``: EXIF-upright, alpha composited on white);
- audio: a path or a file's bytes (``audio.load_audio``: mono, resampled to
  ``options.sample_rate``, too-short / silent / non-finite clips refused); a
  ``(waveform, sample_rate)`` pair (resampled); or a waveform already at the target rate (1-D,
  or (channels, samples) averaged to mono; NaN / inf samples refused) -> float32 mono array;
- video: a frame folder, a video file or its bytes (``video.load_video``: ``num_frames``
  frames sampled uniformly), a list of frames (each decoded as an image; the tower samples
  them to its frame count), or a (T, H, W, 3) uint8 array -> list of RGB PIL images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from polymodal.config import DataConfig, TextDataConfig
from polymodal.data.audio import check_finite, load_audio, resample
from polymodal.data.image import DEFAULT_MAX_PIXELS, load_image, to_rgb
from polymodal.data.text import clean_text
from polymodal.data.video import load_video
from polymodal.errors import DataError


@dataclass(frozen=True)
class DecodeOptions:
    """The decoding rules of one consumer (a training run, or a tower at inference)."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    sample_rate: int | None = None  # audio is resampled to this rate; None keeps a file's own
    min_seconds: float = 0.05
    max_seconds: float | None = None
    reject_silent: bool = True
    num_frames: int = 8
    text: TextDataConfig | None = None  # clean text by these rules; None passes it as given

    @classmethod
    def from_config(cls, cfg: DataConfig) -> DecodeOptions:
        """The training data loader's rules, read from the run's data config."""
        return cls(max_pixels=cfg.image.max_pixels, sample_rate=cfg.audio.sample_rate,
                   min_seconds=cfg.audio.min_seconds, max_seconds=cfg.audio.max_seconds,
                   num_frames=cfg.video.num_frames, text=cfg.text)


def _kind(value: Any) -> str:
    return type(value).__name__


def decode_text(value: Any, options: DecodeOptions, where: str = "text") -> str:
    if options.text is not None:
        return clean_text(value, options.text, where=where)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{where}: bytes are not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not isinstance(value, str):
        raise DataError(f"{where}: expected text (a string), got {_kind(value)}")
    return value


def _array_image(value: np.ndarray) -> Image.Image:
    if value.dtype != np.uint8 or not (value.ndim == 2 or (value.ndim == 3 and value.shape[2] in (1, 3, 4))):
        raise DataError(f"<in-memory image>: expected an HxW, HxWx3 or HxWx4 uint8 array, "
                        f"got {value.dtype} of shape {value.shape}")
    return to_rgb(Image.fromarray(value[..., 0] if value.ndim == 3 and value.shape[2] == 1 else value))


def decode_image(value: Any, options: DecodeOptions) -> Image.Image:
    if isinstance(value, str | Path | bytes | Image.Image):
        return load_image(value, max_pixels=options.max_pixels)
    if isinstance(value, np.ndarray):
        return _array_image(value)
    raise DataError(f"<in-memory image>: expected a path, bytes, a PIL image or a uint8 array, got {_kind(value)}")


def _waveform(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        wave = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"<in-memory audio>: expected a waveform (an array of samples), got {_kind(value)}") from None
    if wave.ndim == 2:  # (channels, samples) -> mono
        wave = wave.mean(axis=0)
    if wave.ndim != 1:
        raise DataError(f"<in-memory audio>: expected a mono waveform (1-D) or (channels, samples), got shape {wave.shape}")
    if wave.size == 0:
        raise DataError("<in-memory audio>: audio has no samples")
    check_finite(wave, "<in-memory audio>")
    return wave


def decode_audio(value: Any, options: DecodeOptions) -> np.ndarray:
    if isinstance(value, str | Path | bytes):
        return load_audio(value, options.sample_rate, min_seconds=options.min_seconds,
                          max_seconds=options.max_seconds, reject_silent=options.reject_silent)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int | np.integer):
        wave, rate = _waveform(value[0]), int(value[1])
        if rate <= 0:
            raise DataError(f"<in-memory audio>: sample rate must be positive, got {rate}")
        return resample(wave, rate, options.sample_rate or rate)
    return _waveform(value)


def decode_video(value: Any, options: DecodeOptions) -> list[Image.Image]:
    if isinstance(value, str | Path | bytes):
        return load_video(value, options.num_frames, max_pixels=options.max_pixels)
    if isinstance(value, np.ndarray) and value.ndim == 4:
        value = list(value)
    if isinstance(value, list | tuple):
        if not value:
            raise DataError("<in-memory video>: a video with no frames")
        return [decode_image(frame, options) for frame in value]
    raise DataError(f"<in-memory video>: expected a path, bytes, a list of frames or a (T, H, W, 3) uint8 array, "
                    f"got {_kind(value)}")


_DECODERS: dict[str, Callable[[Any, DecodeOptions], Any]] = {
    "image": decode_image, "audio": decode_audio, "video": decode_video,
}


def decode_value(modality: str, value: Any, options: DecodeOptions, *, where: str = "text") -> Any:
    """Decode one raw ``value`` of ``modality``; raises :class:`DataError` saying why it cannot be used.

    ``where`` starts the message of a text error (media errors start with the file's name,
    or ``<in-memory ...>``, as the modality loaders write them)."""
    if modality == "text":
        return decode_text(value, options, where)
    decoder = _DECODERS.get(modality)
    if decoder is None:
        raise DataError(f"unknown modality {modality!r}; choose one of text, image, audio, video")
    return decoder(value, options)
