"""One decode path: raw items of every kind -> tower inputs, the same checks as training."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from polymodal.config import DataConfig
from polymodal.data.decode import DecodeOptions, decode_value
from polymodal.data.loader import MultimodalDataset
from polymodal.errors import DataError
from polymodal.models.build import build_preset
from polymodal.runtime.decode import DecodeError, decode_items, decode_options


def _tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _wav_bytes(wave: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format="WAV")
    return buf.getvalue()


def test_images_from_every_source_decode_alike(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    png = (tmp_path / "a.png").read_bytes()
    opts = DecodeOptions()
    for item in (tmp_path / "a.png", str(tmp_path / "a.png"), png, Image.fromarray(arr), arr):
        out = decode_value("image", item, opts)
        assert out.mode == "RGB" and np.array_equal(np.asarray(out), arr)
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black: composited on white, as training does
    assert np.asarray(decode_value("image", rgba, opts)).min() == 255
    with pytest.raises(DataError, match="over the limit"):
        decode_value("image", png, DecodeOptions(max_pixels=100))  # the decompression-bomb check
    with pytest.raises(DataError, match="uint8 array"):
        decode_value("image", arr.astype(np.float32), opts)


def test_audio_is_resampled_to_the_tower_rate_from_every_source(tmp_path: Path) -> None:
    wave = _tone(0.5, 22050)
    sf.write(tmp_path / "a.wav", wave, 22050)
    sf.write(tmp_path / "stereo.wav", np.stack([wave, wave], axis=1), 22050)
    model = build_preset("tiny-audio-text")
    assert decode_options(model, "audio").sample_rate == 16000
    items = [tmp_path / "a.wav", _wav_bytes(wave, 22050), (wave, 22050), tmp_path / "stereo.wav"]
    decoded = decode_items(model, "audio", items)
    assert all(d.dtype == np.float32 and d.ndim == 1 and len(d) == 8000 for d in decoded)
    for d in decoded[1:]:
        np.testing.assert_allclose(d, decoded[0], atol=1e-4)  # WAV stores 16-bit samples
    at_rate = _tone(0.5, 16000)
    assert decode_items(model, "audio", [at_rate])[0] is at_rate  # a waveform at the tower's rate passes as is


def test_bad_audio_is_refused_with_the_item_named(tmp_path: Path) -> None:
    sf.write(tmp_path / "silent.wav", np.zeros(8000, np.float32), 16000)
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    model = build_preset("tiny-audio-text")
    cases = [(tmp_path / "silent.wav", "audio is silent"), (tmp_path / "junk.wav", "cannot decode audio"),
             (b"", "empty file"), (np.zeros((2, 2, 2), np.float32), "mono waveform")]
    for item, reason in cases:
        with pytest.raises(DecodeError, match=reason) as info:
            decode_items(model, "audio", [_tone(0.2, 16000), item])
        assert str(info.value).startswith("audio item 1 (") and info.value.index == 1
    with pytest.raises(DataError, match=r"^audio item 0 \('.*junk\.wav'\): cannot decode audio"):
        model.encode_audio([tmp_path / "junk.wav"])


def test_video_is_sampled_to_the_tower_frame_count(tmp_path: Path) -> None:
    import av

    model = build_preset("tiny-video-text")
    assert decode_options(model, "video").num_frames == 4
    folder = tmp_path / "clip"
    folder.mkdir()
    frames = [np.full((16, 16, 3), 20 * i, np.uint8) for i in range(10)]
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"frame{i}.png")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    from_folder, from_bytes, from_list, from_array = decode_items(
        model, "video", [folder, buf.getvalue(), [Image.fromarray(f) for f in frames], np.stack(frames)])
    assert [np.asarray(f)[0, 0, 0] for f in from_folder] == [0, 60, 120, 180]  # round(linspace(0, 9, 4))
    assert len(from_bytes) == 4 and all(f.size == (16, 16) for f in from_bytes)
    # a list of frames is kept whole: the tower samples it to its frame count, as before
    assert len(from_list) == len(from_array) == 10


def test_text_passes_as_given_at_inference_and_is_cleaned_for_training() -> None:
    assert decode_value("text", "  spaced  ", DecodeOptions()) == "  spaced  "
    assert decode_value("text", "caf\u00e9".encode(), DecodeOptions()) == "caf\u00e9"
    assert decode_value("text", "  spaced  ", DecodeOptions.from_config(DataConfig())) == "spaced"
    with pytest.raises(DataError, match=r"text item 1 \(int\): expected text"):
        decode_items(None, "text", ["ok", 3])


def test_training_loader_decodes_through_the_same_function(tmp_path: Path) -> None:
    wave = _tone(0.3, 22050)
    sf.write(tmp_path / "a.wav", wave, 22050)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (9, 7, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    rows = [{"id": "r0", "image": "i.png", "audio": "a.wav", "text": " hi "}]
    cfg = DataConfig.model_validate({"audio": {"sample_rate": 8000}})
    sample = MultimodalDataset(rows, tmp_path, ["image", "audio", "text"], {}, cfg, augment=False)[0]
    opts = DecodeOptions.from_config(cfg)
    assert sample["text"] == "hi"
    assert np.array_equal(np.asarray(sample["image"]), np.asarray(decode_value("image", tmp_path / "i.png", opts)))
    assert np.array_equal(sample["audio"], decode_value("audio", tmp_path / "a.wav", opts))
    assert len(sample["audio"]) == int(0.3 * 8000)


def test_encode_decodes_paths_like_the_decoded_items(tmp_path: Path) -> None:
    model = build_preset("tiny-audio-text")
    paths = []
    for i, seconds in enumerate((0.3, 0.9, 0.5)):
        sf.write(tmp_path / f"{i}.wav", _tone(seconds, 22050, 300.0 + 100 * i), 22050)
        paths.append(tmp_path / f"{i}.wav")
    decoded = decode_items(model, "audio", paths)
    assert torch.equal(model.encode_audio(paths, batch_size=2), model.encode_audio(decoded, batch_size=2))
