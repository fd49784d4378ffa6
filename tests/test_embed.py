"""`polymodal embed` end to end, and the bf16 fast path of `encode` against the plain fp32 forward."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import polymodal
from polymodal.cli.main import build_cli
from polymodal.embed import embed_items, read_items
from polymodal.errors import DataError
from polymodal.models.dual import EmbeddingModel
from polymodal.runtime.engine import RUNTIME

SENTENCES = [
    "x",
    "a much longer caption about a small blue square on a white background",
    "green triangle",
    "two dots on a line",
    "a red circle next to a very long and winding road in the countryside at dusk",
    "ok",
]


def run_cli(args: list[str]) -> int:
    return int(build_cli().main(args=args, prog_name="polymodal", standalone_mode=False) or 0)


@pytest.fixture(scope="module")
def tiny() -> EmbeddingModel:
    return polymodal.load("tiny-dual")


@pytest.fixture(scope="module")
def minilm() -> EmbeddingModel:
    return polymodal.load("minilm")


def test_embed_txt_file_matches_encode_text_in_input_order(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "s.txt"
    data.write_text("\n".join(SENTENCES[:3]) + "\n\n" + "\n".join(SENTENCES[3:]) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "x.npy"
    assert run_cli(["embed", "tiny-dual", "--data", str(data), "--modality", "text", "--out", str(out), "--batch-size", "2"]) == 0
    got = np.load(out, allow_pickle=False)
    assert got.dtype == np.float32 and got.shape == (len(SENTENCES), tiny.embed_dim)
    # rows come back in file order (blank line skipped), although batches ran longest first
    want = tiny.encode_text(SENTENCES, batch_size=2).numpy()
    np.testing.assert_allclose(got, want, atol=2e-3)  # bf16: batch padding shifts low bits
    one_by_one = np.concatenate([tiny.encode_text([s]).numpy() for s in SENTENCES])
    np.testing.assert_allclose(got, one_by_one, atol=2e-2)  # bf16 batches vs single rows
    ids = out.with_suffix(".ids.txt").read_text(encoding="utf-8").split()
    assert ids == [f"line-{i}" for i in range(len(SENTENCES))]


def test_embed_manifest_minilm_ids_and_split(minilm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [{"id": f"r{i}", "text": s, "split": "test" if i % 2 else "train"} for i, s in enumerate(SENTENCES)]
    rows.insert(2, {"id": "no-text", "text": "", "split": "test"})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "e.npy"
    assert run_cli(["embed", "minilm", "--data", str(manifest), "--out", str(out), "--split", "test"]) == 0
    got = np.load(out)
    kept = [r for r in rows if r["split"] == "test" and r["text"]]
    assert out.with_suffix(".ids.txt").read_text(encoding="utf-8").split() == [r["id"] for r in kept]
    np.testing.assert_allclose(got, minilm.encode_text([r["text"] for r in kept]).numpy(), atol=2e-3)
    assert got.shape == (len(kept), 384)


def test_embed_items_restores_order_across_chunks(tiny) -> None:  # type: ignore[no-untyped-def]
    items = SENTENCES * 3
    got = embed_items(tiny, items, "text", batch_size=4, chunk=5)
    np.testing.assert_allclose(got, tiny.encode_text(items, bf16=False).numpy(), atol=2e-2)
    np.testing.assert_allclose(got[:6], got[6:12], atol=2e-2)


def test_embed_errors_are_clean(tmp_path: Path) -> None:
    data = tmp_path / "s.txt"
    data.write_text("hello there\n", encoding="utf-8")
    with pytest.raises(DataError, match="--modality text"):
        read_items(data, "image")
    with pytest.raises(DataError, match="no such file"):
        read_items(tmp_path / "missing.txt", "text")


def _plain_fp32(model, texts: list[str]) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """The reference: one padded fp32 batch through the HF backbone, float32 mean pooling."""
    enc = model.tower("text").encoder
    batch = enc.tokenizer(texts, padding=True, truncation=True, max_length=enc.max_length, return_tensors="pt")
    enc.eval()
    with torch.no_grad():
        hidden = enc.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def test_minilm_fast_path_matches_plain_fp32_forward(minilm) -> None:  # type: ignore[no-untyped-def]
    texts = SENTENCES * 4
    fast = minilm.encode_text(texts, batch_size=8, bf16=True)
    ref = _plain_fp32(minilm, texts)
    assert torch.nn.functional.cosine_similarity(fast, ref).min() >= 0.999
    # the fast path really ran in bf16 (a bf16 weight copy), and fp32 encode is the reference itself
    copy = RUNTIME.bf16_copy(minilm, "text")
    assert copy is not None and next(copy.parameters()).dtype == torch.bfloat16
    assert not any("bf16" in k for k in minilm.state_dict())  # the copy is no submodule
    assert all(p.dtype == torch.float32 for p in minilm.parameters())  # the original is untouched
    assert copy.tokenizer is minilm.tower("text").encoder.tokenizer
    torch.testing.assert_close(minilm.encode_text(texts, bf16=False), ref, atol=1e-5, rtol=1e-4)


def test_bf16_copy_follows_weight_updates(tiny) -> None:  # type: ignore[no-untyped-def]
    before = tiny.encode_text(SENTENCES, bf16=True)
    first_copy = RUNTIME.bf16_copy(tiny, "text")
    assert first_copy is not None
    assert tiny.encode_text(SENTENCES, bf16=True) is not None and RUNTIME.bf16_copy(tiny, "text") is first_copy
    emb = tiny.tower("text").encoder.model.get_input_embeddings()
    with torch.no_grad():
        emb.weight.mul_(-1.0)  # an in-place update, as an optimizer step makes
    try:
        after = tiny.encode_text(SENTENCES, bf16=True)
        assert RUNTIME.bf16_copy(tiny, "text") is not first_copy
        assert not torch.allclose(before, after, atol=1e-3)
        torch.testing.assert_close(after, tiny.encode_text(SENTENCES, bf16=False), atol=3e-2, rtol=0)
    finally:
        with torch.no_grad():
            emb.weight.mul_(-1.0)


# ------------------------------------------------------------------ media through the real CLI
def _embed_cli(model: str, manifest: Path, modality: str, out: Path, batch_size: int = 3) -> np.ndarray:
    args = ["embed", model, "--data", str(manifest), "--modality", modality, "--out", str(out),
            "--batch-size", str(batch_size)]
    assert run_cli(args) == 0
    return np.load(out, allow_pickle=False)


def _check_media_embedding(model_name: str, manifest: Path, modality: str, tmp_path: Path) -> None:
    """The CLI's rows equal ``encode_<modality>`` on the decoded items, in manifest order."""
    from polymodal.runtime.decode import decode_items

    got = _embed_cli(model_name, manifest, modality, tmp_path / f"{modality}.npy")
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    model = polymodal.load(model_name)
    decoded = decode_items(model, modality, [manifest.parent / r[modality] for r in rows])
    want = getattr(model, f"encode_{modality}")(decoded, batch_size=3).numpy()
    assert got.dtype == np.float32 and got.shape == (len(rows), model.embed_dim)
    np.testing.assert_array_equal(got, want)
    assert (tmp_path / f"{modality}.ids.txt").read_text(encoding="utf-8").split() == [r["id"] for r in rows]


def test_embed_images_of_a_manifest(tmp_path: Path) -> None:
    from polymodal.data.builtin import make_dataset

    _check_media_embedding("tiny-dual", make_dataset("shapes", tmp_path / "shapes", n=8), "image", tmp_path)


def test_embed_video_frame_folders(tmp_path: Path) -> None:
    from polymodal.data.builtin import make_dataset

    _check_media_embedding("tiny-video-text", make_dataset("moving-shapes", tmp_path / "clips", n=7), "video", tmp_path)


def test_embed_audio_files_at_another_rate(tmp_path: Path) -> None:
    import soundfile as sf

    rows = []
    for i, (seconds, rate) in enumerate([(0.4, 22050), (1.1, 8000), (0.7, 44100), (0.25, 16000), (0.9, 22050)]):
        t = np.arange(int(seconds * rate)) / rate
        sf.write(tmp_path / f"clip{i}.wav", 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t), rate)
        rows.append({"id": f"a{i}", "audio": f"clip{i}.wav", "text": f"tone {i}"})
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    _check_media_embedding("tiny-audio-text", manifest, "audio", tmp_path)


def test_embed_spoken_words(tmp_path: Path) -> None:
    import shutil

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (the spoken-words dataset needs it)")
    from polymodal.data.builtin import make_dataset

    _check_media_embedding("tiny-audio-text", make_dataset("spoken-words", tmp_path / "sw", n=6), "audio", tmp_path)


def test_embed_names_the_row_of_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.wav").write_bytes(b"RIFF but not really")
    (tmp_path / "manifest.jsonl").write_text(json.dumps({"id": "broken", "audio": "bad.wav"}) + "\n", encoding="utf-8")
    args = ["embed", "tiny-audio-text", "--data", str(tmp_path / "manifest.jsonl"), "--modality", "audio",
            "--out", str(tmp_path / "x.npy")]
    assert run_cli(args) == 2  # a clean one-line error, no traceback
    err = " ".join(capsys.readouterr().err.split())
    assert "row 'broken': audio item 0 (" in err and "bad.wav'): cannot decode audio" in err
    assert not (tmp_path / "x.npy").exists()
