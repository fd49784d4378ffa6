"""Audio augmentation: reverb + noise change a clip reproducibly per seed, keep its length, hit the
drawn SNR, and run on the train split only (through the dataset the trainer reads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pydantic import ValidationError

from polymodal.config import AudioDataConfig, DataConfig
from polymodal.data.audio_augment import add_noise, augment_audio, room_impulse_response
from polymodal.data.loader import MultimodalDataset

RATE = 16000


def _tone(seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.hanning(t.size)).astype(np.float32)


def test_same_seed_same_clip_other_seed_other_clip_length_kept() -> None:
    cfg = AudioDataConfig(sample_rate=RATE, augment=True, reverb_prob=1.0, noise_prob=1.0)
    wave = _tone()
    a = augment_audio(wave, RATE, cfg, np.random.default_rng(7))
    b = augment_audio(wave, RATE, cfg, np.random.default_rng(7))
    c = augment_audio(wave, RATE, cfg, np.random.default_rng(8))
    assert a.shape == wave.shape and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, b) and not np.allclose(a, c) and not np.allclose(a, wave, atol=1e-3)
    off = AudioDataConfig(sample_rate=RATE, augment=True, reverb_prob=0.0, noise_prob=0.0)
    assert np.array_equal(augment_audio(wave, RATE, off, np.random.default_rng(7)), wave)


def test_noise_lands_at_the_drawn_snr_and_reverb_decays_60_db_over_t60() -> None:
    wave = _tone(2.0).astype(np.float64)
    noisy = add_noise(wave, 10.0, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(wave**2) / np.mean((noisy - wave) ** 2))
    assert abs(snr - 10.0) < 0.3
    ir = room_impulse_response(RATE, 0.4, np.random.default_rng(0))
    assert ir.size == int(0.4 * RATE) and ir[0] == 1.0
    head, end = np.sqrt(np.mean(ir[1:801] ** 2)), np.sqrt(np.mean(ir[-800:] ** 2))
    assert 45 < 20 * np.log10(head / end) < 65  # ~-57 dB between the first and last 50 ms


def test_the_train_dataset_augments_per_epoch_and_eval_does_not(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", _tone(), RATE)
    rows = [{"id": "a", "audio": "a.wav"}]
    cfg = DataConfig(audio={"sample_rate": RATE, "augment": True, "reverb_prob": 1.0, "noise_prob": 1.0})
    train = MultimodalDataset(rows, tmp_path, ["audio"], {}, cfg, seed=3)
    evaluation = MultimodalDataset(rows, tmp_path, ["audio"], {}, cfg, augment=False, seed=3)
    first, again = train[0]["audio"], train[0]["audio"]
    train.set_epoch(1)
    later = train[0]["audio"]
    clean = evaluation[0]["audio"]
    assert np.array_equal(first, again) and not np.allclose(first, later)
    assert first.shape == clean.shape and not np.allclose(first, clean, atol=1e-3)
    assert np.allclose(clean, _tone(), atol=1e-3)  # the file as written (16-bit round trip)


def test_augment_needs_a_sample_rate_and_ordered_ranges() -> None:
    with pytest.raises(ValidationError, match="needs data.audio.sample_rate"):
        AudioDataConfig(augment=True)
    with pytest.raises(ValidationError, match="noise_snr_db needs low <= high"):
        AudioDataConfig(noise_snr_db=(30.0, 5.0))
