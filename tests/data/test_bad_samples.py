"""Bad samples that used to slip past validation (issue 16.5): non-finite audio and a corrupt
later frame of a frame-folder video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from data_corpus import rgb_array, save_png, write_wav

from polymodal.data.audio import load_audio
from polymodal.data.decode import DecodeOptions, decode_value
from polymodal.data.sources import load_manifest
from polymodal.data.validate import validate_rows
from polymodal.data.video import check_video
from polymodal.errors import DataError


def nan_wav(path: Path, *, inf: bool = False) -> Path:
    """A float WAV that soundfile reads back with NaN (or inf) samples in it."""
    wave = (0.5 * np.sin(np.arange(4000) / 5)).astype(np.float32)
    wave[100] = np.inf if inf else np.nan
    sf.write(str(path), wave, 16000, subtype="FLOAT")
    return path


def frames(folder: Path, n: int = 6, corrupt: int | None = None) -> Path:
    for k in range(n):
        save_png(folder / f"f{k}.png", rgb_array(16, 16, seed=k))
    if corrupt is not None:
        (folder / f"f{corrupt}.png").write_bytes(b"\x89PNG\r\n\x1a\n then garbage")
    return folder


def test_non_finite_audio_is_refused_by_the_loader(tmp_path: Path) -> None:
    for name, inf in (("nan.wav", False), ("inf.wav", True)):
        path = nan_wav(tmp_path / name, inf=inf)
        with pytest.raises(DataError, match=rf"{name}: audio holds 1 non-finite sample \(NaN or inf\)"):
            load_audio(path, 16000)
    # the same rule for a waveform handed over in memory (the runtime's path)
    wave = np.ones(800, np.float32)
    wave[3] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        decode_value("audio", (wave, 16000), DecodeOptions())


def test_validation_flags_the_nan_wav(tmp_path: Path) -> None:
    write_wav(tmp_path / "ok.wav")
    nan_wav(tmp_path / "nan.wav")
    rows = [{"id": "ok", "split": "train", "audio": "ok.wav"}, {"id": "bad", "split": "train", "audio": "nan.wav"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = validate_rows(load_manifest(tmp_path / "m.jsonl"))
    assert [(i.row, i.id, i.field) for i in report.invalid] == [(2, "bad", "audio")]
    assert "non-finite" in report.invalid[0].reason


def test_validation_decodes_every_frame_of_a_frame_folder(tmp_path: Path) -> None:
    frames(tmp_path / "good")
    frames(tmp_path / "bad", corrupt=5)  # the first frame is fine, the last is not
    check_video(tmp_path / "good")
    with pytest.raises(DataError, match="f5.png"):
        check_video(tmp_path / "bad")
    rows = [{"id": "g", "split": "train", "video": "good"}, {"id": "b", "split": "train", "video": "bad"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = validate_rows(load_manifest(tmp_path / "m.jsonl"))
    assert [(i.id, i.field) for i in report.invalid] == [("b", "video")]
    assert "f5.png" in report.invalid[0].reason
