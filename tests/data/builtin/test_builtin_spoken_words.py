"""spoken-words: espeak-ng clips that decode, hold speech, and are reproducible."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from polymodal.data.builtin import make_dataset, spoken_words
from polymodal.errors import DataError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


@needs_espeak
def test_clips_decode_and_hold_speech(tmp_path, rows_of, schema):
    manifest = make_dataset("spoken-words", tmp_path, n=40, seed=1)
    rows = rows_of(manifest)
    schema(rows, tmp_path, "audio")
    assert set(Counter(r["label"] for r in rows).values()) == {2}  # 40 rows over 20 words
    assert len({r["voice"] for r in rows}) >= 4 and len({r["speed"] for r in rows}) >= 2
    for row in rows:
        assert row["text"] == row["label"] and row["voice"] in spoken_words.VOICES
        wave, rate = sf.read(tmp_path / row["audio"], dtype="float32")
        assert rate == 22050 and wave.ndim == 1
        assert 0.15 < len(wave) / rate < 2.5
        assert float(np.sqrt(np.mean(wave**2))) > 0.01  # not silence


@needs_espeak
def test_deterministic(tmp_path, tree_of):
    a = make_dataset("spoken-words", tmp_path / "a", n=20, seed=3).parent
    b = make_dataset("spoken-words", tmp_path / "b", n=20, seed=3).parent
    assert tree_of(a) == tree_of(b)


def test_missing_espeak_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="apt-get install espeak-ng"):
        make_dataset("spoken-words", tmp_path / "out", n=5)
