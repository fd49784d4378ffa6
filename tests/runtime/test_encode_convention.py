"""``encode`` follows sentence-transformers' convention: one item in, one embedding out.

A lone string is one sentence (not a list of characters), a lone path / image / waveform / clip
is one item; a list is a batch. ``convert_to_numpy`` gives numpy arrays, ``normalize`` turns
L2-normalisation on or off, ``show_progress_bar`` draws a bar. The default return type stays a
torch tensor (the convention of CLIP-style ``encode_text`` / ``encode_image``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from polymodal.models.build import build_preset
from polymodal.runtime import engine
from polymodal.runtime.engine import is_single_item

SENTENCE = "one sentence about a red circle"


@pytest.fixture(scope="module")
def tiny():  # type: ignore[no-untyped-def]
    return build_preset("tiny-dual")


def test_a_string_is_one_sentence_not_a_list_of_characters(tiny) -> None:  # type: ignore[no-untyped-def]
    one = tiny.encode_text(SENTENCE, bf16=False)
    batch = tiny.encode_text([SENTENCE], bf16=False)
    assert isinstance(one, torch.Tensor) and one.shape == (tiny.embed_dim,)  # was (31, 32): one per character
    assert batch.shape == (1, tiny.embed_dim)
    torch.testing.assert_close(one, batch[0])
    # the generic entry points agree
    torch.testing.assert_close(tiny.encode("text", SENTENCE, bf16=False), one)
    torch.testing.assert_close(engine.encode(tiny, "text", SENTENCE, bf16=False), one)


def test_a_single_image_path_is_one_image(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(pixels).save(path)
    want = tiny.encode_image([str(path)], bf16=False)[0]
    # was: "image item 0 ('x'): file not found" (the path's first character)
    for item in (str(path), path, path.read_bytes(), Image.fromarray(pixels), pixels):
        got = tiny.encode_image(item, bf16=False)
        assert got.shape == (tiny.embed_dim,), type(item)
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_single_audio_and_video_items() -> None:
    audio = build_preset("tiny-audio-text")
    rate = audio.tower("audio").encoder.sample_rate
    wave = np.sin(np.linspace(0, 400, rate // 2)).astype(np.float32)
    one = audio.encode_audio(wave, bf16=False)
    assert one.shape == (audio.embed_dim,)
    torch.testing.assert_close(one, audio.encode_audio([wave], bf16=False)[0])
    assert audio.encode_audio((wave, rate), bf16=False).shape == (audio.embed_dim,)  # (waveform, rate) pair
    assert audio.encode_audio(np.stack([wave, wave]), bf16=False).shape == (2, audio.embed_dim)  # rows = items

    video = build_preset("tiny-video-text")
    rng = np.random.default_rng(1)
    frames = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(4)]
    clip = video.encode_video(frames, bf16=False)  # a list of frames is one clip
    assert clip.shape == (video.embed_dim,)
    torch.testing.assert_close(clip, video.encode_video([frames], bf16=False)[0])
    stacked = np.stack([np.asarray(f) for f in frames])  # (T, H, W, 3) is one clip too
    torch.testing.assert_close(video.encode_video(stacked, bf16=False), clip, atol=1e-6, rtol=1e-5)


def test_convert_to_numpy_gives_arrays_of_the_same_values(tiny, images) -> None:  # type: ignore[no-untyped-def]
    texts = [SENTENCE, "two", "a third, longer sentence about a small blue square"]
    tensor = tiny.encode_text(texts, bf16=False)
    array = tiny.encode_text(texts, bf16=False, convert_to_numpy=True)
    assert isinstance(array, np.ndarray) and array.dtype == np.float32 and array.shape == tuple(tensor.shape)
    np.testing.assert_array_equal(array, tensor.numpy())
    one = tiny.encode_text(SENTENCE, bf16=False, convert_to_numpy=True)
    assert isinstance(one, np.ndarray) and one.shape == (tiny.embed_dim,)
    got = tiny.encode("image", images, bf16=False, convert_to_numpy=True)
    assert isinstance(got, np.ndarray) and got.shape == (len(images), tiny.embed_dim)


def test_normalize_switches_l2_normalisation(tiny, images) -> None:  # type: ignore[no-untyped-def]
    for modality, items in (("text", [SENTENCE, "x", "green triangle"]), ("image", images)):
        default = tiny.encode(modality, items, bf16=False)
        raw = tiny.encode(modality, items, bf16=False, normalize=False)
        torch.testing.assert_close(default.norm(dim=-1), torch.ones(len(items)))
        assert not torch.allclose(raw.norm(dim=-1), torch.ones(len(items)), atol=1e-3), modality
        torch.testing.assert_close(torch.nn.functional.normalize(raw, dim=-1), default, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(tiny.encode(modality, items, bf16=False, normalize=True), default)
    # the bf16 inference copy (its own code path) honours it too
    raw16 = tiny.encode_text([SENTENCE, "x"], bf16=True, normalize=False)
    assert not torch.allclose(raw16.norm(dim=-1), torch.ones(2), atol=1e-3)


def test_empty_and_generator_inputs(tiny) -> None:  # type: ignore[no-untyped-def]
    assert tiny.encode_text([], bf16=False).shape == (0, tiny.embed_dim)
    assert tiny.encode_text([], convert_to_numpy=True).shape == (0, tiny.embed_dim)
    gen = (t for t in [SENTENCE, "x"])
    torch.testing.assert_close(tiny.encode_text(gen, bf16=False), tiny.encode_text([SENTENCE, "x"], bf16=False))


def test_show_progress_bar_reports_every_item(tiny, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    texts = [f"sentence {i}" for i in range(10)]
    quiet = tiny.encode_text(texts, batch_size=3, bf16=False)
    assert capsys.readouterr().err == ""  # off by default
    shown = tiny.encode_text(texts, batch_size=3, bf16=False, show_progress_bar=True)
    err = capsys.readouterr().err
    assert "10/10" in err and "text" in err
    torch.testing.assert_close(shown, quiet)


def test_on_progress_counts_items_per_batch(tiny) -> None:  # type: ignore[no-untyped-def]
    seen: list[int] = []
    engine.RUNTIME.encode(tiny, "text", [f"s {i}" for i in range(7)], batch_size=3, bf16=False, on_progress=seen.append)
    assert sorted(seen) == [1, 3, 3]


@pytest.mark.parametrize(
    ("modality", "items", "single"),
    [
        ("text", "a sentence", True),
        ("text", ["a sentence"], False),
        ("text", ("a", "b"), False),
        ("image", "x.png", True),
        ("image", Path("x.png"), True),
        ("image", b"\x89PNG", True),
        ("image", np.zeros((8, 8), np.uint8), True),
        ("image", np.zeros((8, 8, 3), np.uint8), True),
        ("image", np.zeros((2, 8, 8, 3), np.uint8), False),
        ("image", ["x.png", "y.png"], False),
        ("audio", np.zeros(100, np.float32), True),
        ("audio", (np.zeros(100, np.float32), 16000), True),
        ("audio", np.zeros((2, 100), np.float32), False),
        ("audio", [np.zeros(100, np.float32)], False),
        ("video", "clip.mp4", True),
        ("video", np.zeros((4, 8, 8, 3), np.uint8), True),
        ("video", [np.zeros((8, 8, 3), np.uint8)] * 4, True),
        ("video", ["a.mp4", "b.mp4"], False),
        ("video", [[np.zeros((8, 8, 3), np.uint8)] * 4], False),
    ],
)
def test_is_single_item(modality: str, items: object, single: bool) -> None:
    assert is_single_item(modality, items) is single


def test_internal_callers_take_tensors_and_arrays(tiny) -> None:  # type: ignore[no-untyped-def]
    """``polymodal embed`` and the task library call ``encode(modality, list)`` and accept what any
    model returns: a polymodal model's tensor, or another model's numpy array."""
    from polymodal.embed import embed_items
    from polymodal.tasks.cache import encode_items

    texts = [SENTENCE, "x", "green triangle"]
    want = tiny.encode_text(texts, bf16=False, convert_to_numpy=True)

    class NumpyModel:  # a model outside polymodal that answers in numpy (as sentence-transformers does)
        def encode(self, modality: str, items: list[str], **kw: object) -> np.ndarray:
            return tiny.encode(modality, items, bf16=False, convert_to_numpy=True)

    for model in (tiny, NumpyModel()):
        np.testing.assert_allclose(embed_items(model, texts, "text", batch_size=2), want, atol=2e-2)
        np.testing.assert_allclose(encode_items(model, "text", texts, batch_size=2), want, atol=2e-2)


def test_similarity_takes_what_encode_returns(tiny, images) -> None:  # type: ignore[no-untyped-def]
    texts = ["a red circle", "two dots"]
    t, i = tiny.encode_text(texts, bf16=False), tiny.encode_image(images, bf16=False)
    want = tiny.similarity(i, t)
    got = tiny.similarity(tiny.encode_image(images, bf16=False, convert_to_numpy=True),
                          tiny.encode_text(texts, bf16=False, convert_to_numpy=True))
    torch.testing.assert_close(got, want)
    one = tiny.similarity(tiny.encode_image(images[0], bf16=False), t)  # one image against the texts
    torch.testing.assert_close(one, want[0])
