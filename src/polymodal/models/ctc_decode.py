"""CTC decoding with a kept library: fast-ctc-decode (Rust; greedy Viterbi path and prefix beam search).

Both take per-frame probabilities (T, V) with the blank first and give the collapsed label
sequence. fast-ctc-decode wants one character per label; the blank's own name is never
emitted, so a placeholder stands in for it.
"""

from __future__ import annotations

import numpy as np

from polymodal.errors import ModelError

DECODERS = ("greedy", "beam")


def _alphabet(vocab: list[str]) -> list[str]:
    chars = vocab[1:]
    if any(len(c) != 1 for c in chars):
        raise ModelError(f"CTC decoding needs single-character labels, got {[c for c in chars if len(c) != 1][:5]}")
    placeholder = next(c for c in "_#~^\x00" if c not in chars)
    return [placeholder, *chars]


def decode(probs: np.ndarray, vocab: list[str], decoder: str = "greedy", beam_width: int = 8) -> str:
    """The transcript of one clip's (T, V) frame probabilities, whitespace-normalised."""
    try:
        from fast_ctc_decode import beam_search, viterbi_search
    except ImportError as exc:
        raise ModelError("CTC decoding needs fast-ctc-decode: pip install 'polymodal[audio]'") from exc
    if decoder not in DECODERS:
        raise ModelError(f"unknown CTC decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
    if probs.shape[0] == 0:
        return ""
    alphabet = _alphabet(vocab)
    p = np.ascontiguousarray(probs, dtype=np.float32)
    if decoder == "beam":
        text, _ = beam_search(p, alphabet, beam_size=max(1, int(beam_width)), beam_cut_threshold=0.0)
    else:
        text, _ = viterbi_search(p, alphabet)
    return " ".join(str(text).split())
