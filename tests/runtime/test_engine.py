"""The inference runtime: concurrent ``encode`` calls, inference copies, eval mode, device copies."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from polymodal.errors import DataError
from polymodal.models.build import build_preset
from polymodal.runtime import copies, engine
from polymodal.runtime.engine import RUNTIME

TEXTS = [" ".join(["word"] * (1 + i % 9)) + f" caption number {i}" for i in range(24)]


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 255, (56 + 4 * (i % 5), 64, 3), dtype=np.uint8)) for i in range(12)]


def _in_fresh_thread(fn: Any) -> Any:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


def test_encode_from_four_threads_equals_single_threaded(images: list[Image.Image]) -> None:
    model = build_preset("tiny-dual")
    jobs = [("text", TEXTS, True), ("text", TEXTS, False), ("image", images, None)]
    # several batches per call, so every call runs on the shared worker threads where cores allow
    kwargs = {"text": {"batch_size": 4}, "image": {"batch_size": 3}}
    threads_before = torch.get_num_threads()
    default_before = _in_fresh_thread(torch.get_num_threads)
    want = {(m, bf16): model.encode(m, items, bf16=bf16, **kwargs[m]) for m, items, bf16 in jobs}

    barrier = threading.Barrier(4)

    def call(job: tuple[str, list[Any], bool | None]) -> tuple[str, bool | None, torch.Tensor]:
        modality, items, bf16 = job
        barrier.wait()  # the four calls start together
        return modality, bf16, model.encode(modality, items, bf16=bf16, **kwargs[modality])

    for round_jobs in ([jobs[0]] * 4, [jobs[1]] * 4, [jobs[2]] * 4, [jobs[0], jobs[1], jobs[2], jobs[0]]):
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(call, round_jobs))
        for modality, bf16, got in results:
            assert torch.equal(got, want[(modality, bf16)]), (modality, bf16)
    # neither this thread's torch thread count nor the default a new thread starts with changed
    assert torch.get_num_threads() == threads_before
    assert _in_fresh_thread(torch.get_num_threads) == default_before


def test_bf16_copy_is_built_once_under_concurrent_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_preset("tiny-dual")
    builds: list[int] = []
    real = copies.build_bf16_encoder

    def counting(encoder: torch.nn.Module) -> torch.nn.Module:  # the real builder, counted
        builds.append(1)
        return real(encoder)

    monkeypatch.setattr(copies, "build_bf16_encoder", counting)
    barrier = threading.Barrier(4)

    def call(_: int) -> torch.Tensor:
        barrier.wait()
        return model.encode_text(TEXTS, batch_size=8, bf16=True)

    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(call, range(4)))
    assert len(builds) == 1
    assert all(torch.equal(o, outs[0]) for o in outs)
    assert RUNTIME.bf16_copy(model, "text") is not None
    assert not any("bf16" in k for k in model.state_dict())  # kept by the runtime, not on the model


def test_train_mode_is_kept_and_encode_runs_in_eval_mode() -> None:
    model = build_preset("tiny-dual")
    for tower in model.towers.values():
        tower.dropout.p = 0.5  # dropout that would change every row in train mode
    model.eval()
    ref = model.encode_text(TEXTS, batch_size=4, bf16=False)
    model.train()
    model.tower("image").eval()  # a mixed model: a frozen tower kept in eval while the rest trains
    modes = {name: m.training for name, m in model.named_modules()}
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda _: model.encode_text(TEXTS, batch_size=4, bf16=False), range(4)))
    assert all(torch.equal(o, ref) for o in outs)
    assert {name: m.training for name, m in model.named_modules()} == modes


def test_device_copy_is_a_cached_eval_copy_that_follows_the_weights() -> None:
    model = build_preset("tiny-dual").train()
    dev = torch.device("cpu")
    moved = RUNTIME.copies.on_device(model, dev)
    assert moved is not model and not moved.training and model.training
    assert RUNTIME.copies.on_device(model, dev) is moved  # cached
    assert moved.tower("text").encoder.tokenizer is model.tower("text").encoder.tokenizer  # shared, not copied
    with torch.inference_mode():
        batch = model.tower("text").preprocess(TEXTS[:3])
        torch.testing.assert_close(moved.embed("text", batch), model.eval().embed("text", batch), rtol=0, atol=0)
    with torch.no_grad():
        next(model.tower("text").parameters()).mul_(2.0)  # an in-place update, as an optimizer step makes
    assert RUNTIME.copies.on_device(model, dev) is not moved
    # the model's own device needs no copy, and encode never moves the caller's model
    RUNTIME.clear(model)
    model.encode_text(TEXTS[:3], device="cpu")
    assert RUNTIME.copies.peek(model, "device:cpu") is None


def test_undecodable_items_are_named() -> None:
    model = build_preset("tiny-audio-text")
    wave = np.sin(np.linspace(0, 200, 16000)).astype(np.float32)
    with pytest.raises(DataError, match=r"audio item 1 \('/no/such/x\.wav'\): file not found"):
        model.encode_audio([wave, "/no/such/x.wav"])
    with pytest.raises(DataError, match=r"image item 2 \(int\): expected a path, bytes, a PIL image"):
        build_preset("tiny-dual").encode_image([np.zeros((8, 8, 3), np.uint8)] * 2 + [7], batch_size=1)


def test_module_level_encode_is_the_model_method(images: list[Image.Image]) -> None:
    model = build_preset("tiny-dual")
    assert torch.equal(engine.encode(model, "image", images, batch_size=5), model.encode_image(images, batch_size=5))


def test_encode_on_another_device_runs_the_copy_and_leaves_the_model(monkeypatch: pytest.MonkeyPatch,
                                                                     images: list[Image.Image]) -> None:
    # no second device on a CPU-only machine: the model is made to look as if it lived elsewhere,
    # so device="cpu" takes the copy path (on a GPU machine tests/gpu runs the real thing)
    model = build_preset("tiny-dual").train()
    want = {m: model.encode(m, items, bf16=False) for m, items in (("text", TEXTS), ("image", images))}
    params_before = list(model.parameters())
    monkeypatch.setattr(engine, "_model_device", lambda _: torch.device("meta"))
    for modality, items in (("text", TEXTS), ("image", images)):
        assert torch.equal(model.encode(modality, items, bf16=False, device="cpu"), want[modality])
    copy_ = RUNTIME.copies.peek(model, "device:cpu")
    assert copy_ is not None and copy_ is not model and not copy_.training
    params_after = list(model.parameters())  # not moved, not switched to eval
    assert model.training and all(a is b and a.device.type == "cpu" for a, b in zip(params_after, params_before, strict=True))
    RUNTIME.clear(model)
    assert RUNTIME.copies.peek(model, "device:cpu") is None
