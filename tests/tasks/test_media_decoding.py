"""Audio reaches the model as waveforms at the tower's rate (decoded by the data layer), not paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from polymodal.tasks import evaluate

FREQS = [220.0, 440.0, 880.0, 1760.0]


class ToneEncoder:
    """Audio -> one-hot of the nearest of FREQS by FFT peak; text "tone K" -> one-hot K."""

    class _Enc:
        sample_rate = 8000

    towers = {"audio": type("T", (), {"encoder": _Enc()})()}

    def encode(self, modality: str, items: list[Any]) -> np.ndarray:
        out = np.zeros((len(items), len(FREQS)), dtype=np.float32)
        for i, item in enumerate(items):
            if modality == "text":
                out[i, int(item.split()[-1])] = 1.0
                continue
            assert isinstance(item, np.ndarray) and item.ndim == 1 and item.dtype == np.float32
            spectrum = np.abs(np.fft.rfft(item))
            peak = np.fft.rfftfreq(len(item), 1 / 8000)[spectrum.argmax()]
            out[i, int(np.argmin([abs(peak - f) for f in FREQS]))] = 1.0
        return out


def test_audio_text_retrieval_on_decoded_waveforms(tmp_path: Path) -> None:
    rows = []
    for k, f in enumerate(FREQS):
        t = np.arange(16000) / 16000  # files at 16 kHz; the tower asks for 8 kHz
        sf.write(tmp_path / f"tone{k}.wav", 0.5 * np.sin(2 * np.pi * f * t), 16000)
        rows.append({"id": str(k), "split": "test", "audio": f"tone{k}.wav", "text": f"tone {k}"})
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = evaluate(ToneEncoder(), "retrieval", tmp_path / "manifest.jsonl", bootstrap=0, cache=False)
    assert r.details["modality"] == "audio"
    assert r.metrics["audio_to_text/R@1"].value == pytest.approx(1.0)
    assert r.metrics["text_to_audio/R@1"].value == pytest.approx(1.0)
