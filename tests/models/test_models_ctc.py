"""CTC models: decoding with fast-ctc-decode, save/load through polymodal.load, transcribe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from polymodal.errors import ModelError
from polymodal.models.ctc import BLANK, CTCModel
from polymodal.models.ctc_decode import decode

VOCAB = [BLANK, " ", "a", "b"]


def _frames(*rows: tuple[float, ...]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32)


def test_greedy_collapses_repeats_and_drops_blanks() -> None:
    # best path a a _ a b _ -> "aab"
    p = _frames(*[tuple(0.9 if k == best else 0.1 / 3 for k in range(4)) for best in (2, 2, 0, 2, 3, 0)])
    assert decode(p, VOCAB, "greedy") == "aab"
    assert decode(p, VOCAB, "beam", beam_width=4) == "aab"


def test_beam_sums_paths_where_greedy_takes_the_best_one() -> None:
    # two frames with blank 0.6, "a" 0.4: the best path is blank-blank (""), but "a" has
    # probability 1 - 0.36 = 0.64 summed over its three paths; prefix beam search finds it
    p = _frames((0.6, 0.0, 0.4, 0.0), (0.6, 0.0, 0.4, 0.0))
    assert decode(p, VOCAB, "greedy") == ""
    assert decode(p, VOCAB, "beam", beam_width=4) == "a"


def test_unknown_decoder_is_refused() -> None:
    with pytest.raises(ModelError, match="unknown CTC decoder 'viterbi'"):
        decode(_frames((1.0, 0.0, 0.0, 0.0)), VOCAB, "viterbi")


def test_saved_ctc_model_loads_back_and_transcribes_alike(tiny_ctc: Any, tmp_path: Path,
                                                          phrases_dir: Path, find_pickles: Any) -> None:
    import polymodal

    tiny_ctc.save_pretrained(tmp_path / "asr")
    back = polymodal.load(str(tmp_path / "asr"))
    assert isinstance(back, CTCModel)
    assert back.vocab == tiny_ctc.vocab and back.vocab[0] == BLANK and "z" in back.vocab
    assert find_pickles(tmp_path / "asr") == []
    clips = sorted(str(p) for p in (phrases_dir / "audio").rglob("*.wav"))[:3]
    a = tiny_ctc.transcribe(clips)
    assert a == back.transcribe(clips)
    assert all(set(t) <= set(tiny_ctc.vocab[1:]) for t in a)
    # a clip decodes the same alone as in a batch (padding is packed away)
    assert tiny_ctc.transcribe(clips[:1], batch_size=1) == a[:1]
    out = back({"audio": back.tower("audio").preprocess([np.zeros(8000, np.float32) + 0.1])})
    assert out.log_probs.shape[-1] == len(back.vocab)
    assert torch.allclose(out.log_probs.exp().sum(-1), torch.ones(1, out.log_probs.shape[1]), atol=1e-5)


def test_row_check_names_what_ctc_cannot_use(tiny_ctc: Any, phrases_dir: Path) -> None:
    import json

    row = json.loads((phrases_dir / "manifest.jsonl").read_text().splitlines()[0])
    assert tiny_ctc.check_row(row, phrases_dir, {}) is None
    col, reason = tiny_ctc.check_row({**row, "text": "café 7"}, phrases_dir, {})
    assert col == "text" and "outside the model's vocabulary: ['7', 'é']" in reason
    col, reason = tiny_ctc.check_row({**row, "text": "ab " * 200}, phrases_dir, {})
    assert col == "audio" and "clip too short for its transcript" in reason
