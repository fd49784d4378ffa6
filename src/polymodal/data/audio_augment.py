"""Training-time audio augmentation: a synthetic room's reverb, then additive noise at a drawn SNR.

- Reverb (with probability ``reverb_prob``): the clip convolved with an impulse response that is
  a unit direct path followed by Gaussian noise under an exponential decay reaching -60 dB after
  ``T60`` seconds (T60 drawn uniformly from ``reverb_seconds``) — the usual stand-in for a
  diffuse room tail (Schroeder's statistical model). The wet clip is cut back to the dry length
  (the tail past the end is dropped) and rescaled to the dry clip's RMS, so loudness is unchanged.
- Noise (with probability ``noise_prob``): white Gaussian noise at an SNR drawn uniformly from
  ``noise_snr_db`` (dB, against the clip's own power after reverb).

Every draw comes from the generator the caller passes: the dataset seeds it per (run seed,
epoch, sample), so a run and its resume hear the same clips, and each epoch new ones. Length,
dtype (float32) and finiteness are kept; applied to the train split only.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from polymodal.config import AudioDataConfig

_MINUS_60_DB = np.log(1000.0)  # amplitude falls by 1000x (-60 dB) over T60


def room_impulse_response(rate: int, t60: float, rng: np.random.Generator) -> np.ndarray:
    """A unit direct path and an exponentially decaying noise tail, ``t60`` seconds to -60 dB."""
    n = max(2, int(round(t60 * rate)))
    t = np.arange(n, dtype=np.float64) / rate
    tail = rng.standard_normal(n) * np.exp(-_MINUS_60_DB * t / t60)
    # the tail's energy about that of the direct path: a clearly reverberant but intelligible room
    tail *= 1.0 / max(float(np.sqrt(np.sum(tail[1:] ** 2))), 1e-12)
    tail[0] = 1.0
    return tail


def _rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))


def add_reverb(wave: np.ndarray, rate: int, t60: float, rng: np.random.Generator) -> np.ndarray:
    wet = fftconvolve(wave.astype(np.float64), room_impulse_response(rate, t60, rng))[: wave.shape[0]]
    dry_rms, wet_rms = _rms(wave), _rms(wet)
    return wet * (dry_rms / wet_rms) if wet_rms > 0 else wet


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    power = float(np.mean(np.square(wave, dtype=np.float64)))
    sigma = np.sqrt(power / (10.0 ** (snr_db / 10.0)))
    return wave + rng.standard_normal(wave.shape[0]) * sigma


def augment_audio(wave: np.ndarray, rate: int, cfg: AudioDataConfig, rng: np.random.Generator) -> np.ndarray:
    """``wave`` with reverb and/or noise as ``cfg`` draws them; same length, float32."""
    out = np.asarray(wave, dtype=np.float64)
    # both draws happen every call, so whether reverb ran never shifts the noise's random stream
    reverb, noise = rng.random() < cfg.reverb_prob, rng.random() < cfg.noise_prob
    if reverb:
        out = add_reverb(out, rate, float(rng.uniform(*cfg.reverb_seconds)), rng)
    if noise:
        out = add_noise(out, float(rng.uniform(*cfg.noise_snr_db)), rng)
    return out.astype(np.float32)
