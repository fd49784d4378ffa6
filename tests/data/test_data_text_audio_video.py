from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from data_corpus import rgb_array, save_png, write_wav

from polymodal.config import TextDataConfig
from polymodal.data.audio import load_audio
from polymodal.data.text import clean_text
from polymodal.data.video import load_video, sample_indices
from polymodal.errors import DataError

# ----------------------------------------------------------------------------- text


def test_text_rules() -> None:
    assert clean_text("  a cat \n") == "a cat"
    bad_utf8 = b"caf\xe9".decode("utf-8", errors="surrogateescape")
    with pytest.raises(DataError, match="invalid UTF-8 bytes"):
        clean_text(bad_utf8)
    with pytest.raises(DataError, match="NUL"):
        clean_text("a\x00b")
    replace = TextDataConfig(on_invalid_utf8="replace")
    assert clean_text(bad_utf8, replace) == "caf\ufffd"
    assert clean_text("a\x00b", replace) == "ab"
    assert clean_text(b"caf\xc3\xa9") == "café"
    for empty in ("", "   ", "\x00"):
        with pytest.raises(DataError, match="empty text"):
            clean_text(empty, replace)
    with pytest.raises(DataError, match="expected text, got int"):
        clean_text(3)
    assert clean_text("abcdef", TextDataConfig(max_chars=4)) == "abcd"
    with pytest.raises(DataError, match="6 characters, over the limit of 4"):
        clean_text("abcdef", TextDataConfig(max_chars=4, on_too_long="reject"))


# ----------------------------------------------------------------------------- audio


def test_audio_mono_mixdown_and_resample(tmp_path: Path) -> None:
    rate = 8000
    t = np.arange(rate // 2) / rate
    left, right = 0.2 * np.sin(2 * np.pi * 200 * t), 0.6 * np.sin(2 * np.pi * 200 * t)
    sf.write(str(tmp_path / "s.flac"), np.stack([left, right], 1), rate)
    wave = load_audio(tmp_path / "s.flac")
    assert wave.dtype == np.float32 and wave.shape == (rate // 2,)
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-4)  # FLAC is 16-bit
    up = load_audio(tmp_path / "s.flac", 16000)
    assert up.shape == (rate,)
    # the 200 Hz tone is still a 200 Hz tone after resampling
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * 16000 / len(up) - 200) < 5
    cut = load_audio(tmp_path / "s.flac", max_seconds=0.1)
    assert cut.shape == (800,)
    sf.write(str(tmp_path / "s.ogg"), np.stack([left, right], 1), rate, format="OGG")
    assert load_audio(tmp_path / "s.ogg").shape[0] == pytest.approx(rate // 2, abs=10)


def test_audio_bad_inputs_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "zero.wav").write_bytes(b"")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    sf.write(str(tmp_path / "empty.wav"), np.zeros((0, 1), np.float32), 16000)
    write_wav(tmp_path / "short.wav", seconds=0.01)
    sf.write(str(tmp_path / "silent.wav"), np.zeros((4000, 1), np.float32), 16000)
    cases = {
        "zero.wav": "empty file (0 bytes)",
        "corrupt.wav": "cannot decode audio",
        "empty.wav": "audio has no samples",
        "short.wav": "audio too short (0.010 s < 0.05 s)",
        "silent.wav": "audio is silent",
        "absent.wav": "file not found",
    }
    for name, reason in cases.items():
        with pytest.raises(DataError) as err:
            load_audio(tmp_path / name, 16000)
        assert str(err.value).startswith(f"{tmp_path / name}: ") and reason in str(err.value), err.value


# ----------------------------------------------------------------------------- video


def test_sample_indices() -> None:
    assert sample_indices(10, 4) == [0, 3, 6, 9]
    assert sample_indices(3, 5) == [0, 0, 1, 2, 2]
    assert sample_indices(0, 3) == []


def test_frame_folder_uniform_sampling_in_natural_order(tmp_path: Path) -> None:
    for i in range(12):
        save_png(tmp_path / "clip" / f"frame{i}.png", np.full((4, 4, 3), i * 20, np.uint8))
    frames = load_video(tmp_path / "clip", 4)
    assert [int(np.asarray(f)[0, 0, 0]) for f in frames] == [0, 80, 140, 220]  # frames 0, 4, 7, 11
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        load_video(tmp_path / "none", 2)


def _write_mp4(path: Path, n: int) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 20, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_video_file_sampling_and_errors(tmp_path: Path) -> None:
    _write_mp4(tmp_path / "v.mp4", 10)
    frames = load_video(tmp_path / "v.mp4", 4)
    assert len(frames) == 4 and frames[0].size == (32, 32) and frames[0].mode == "RGB"
    means = [float(np.asarray(f).mean()) for f in frames]
    for got, want in zip(means, [0, 60, 120, 180], strict=True):  # frames 0, 3, 6, 9
        assert abs(got - want) < 12
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all" * 10)
    (tmp_path / "zero.mp4").write_bytes(b"")
    for name, reason in [
        ("bad.mp4", "cannot decode video"),
        ("zero.mp4", "empty file"),
        ("no.mp4", "file not found"),
    ]:
        with pytest.raises(DataError, match=f"{name}: {reason}"):
            load_video(tmp_path / name, 2)
    save_png(tmp_path / "frames" / "1.png", rgb_array())
    assert len(load_video(tmp_path / "frames", 3)) == 3
