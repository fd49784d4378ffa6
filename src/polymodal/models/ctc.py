"""Speech recognition with CTC: an audio tower's frames -> a recurrent CTC head -> characters.

``CTCModel(towers={"audio": tower}, head=CTCHead(...))`` returns a ``CTCOutput`` (per-frame log
probabilities over the head's character vocabulary, blank first, and each clip's frame count).
The vocabulary is the head's ``labels`` and is saved with the model. ``transcribe`` decodes
greedily or with a small beam (``polymodal.models.ctc_decode``). For training, the model gives
the data layer a processor for transcripts (``target_processors``) and a per-row check
(``check_row``): characters outside the vocabulary, or a transcript longer than the clip's
frames can carry (CTC needs a frame per character plus one between repeated ones).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from polymodal.errors import DataError, ModelError
from polymodal.models.dual import EmbeddingModel
from polymodal.models.heads import Head, head_from_spec, register_head
from polymodal.models.hub import register_model_class
from polymodal.models.outputs import CTCOutput
from polymodal.models.towers import Tower

BLANK = "<blank>"
# lower-case English letters, space and apostrophe: what the spoken sets' transcripts use
DEFAULT_ALPHABET = (" ", "'", *"abcdefghijklmnopqrstuvwxyz")


class CTCHead(Head):
    """Linear-GELU, a two-layer bidirectional GRU over the frames, Linear to the vocabulary.

    ``labels`` is the vocabulary, blank first. The GRU lets a frame see its neighbours (a
    character spans several frames and its sound depends on the next one); padded frames are
    packed away so a clip decodes the same alone or in a batch.
    """

    kind = "ctc"

    def __init__(self, in_dim: int, num_outputs: int, hidden_dim: int | None = None, dropout: float = 0.0,
                 labels: list[str] | None = None) -> None:
        labels = list(labels) if labels else [BLANK, *DEFAULT_ALPHABET]
        if labels[0] != BLANK or len(labels) != num_outputs:
            raise ModelError(f"a ctc head needs labels = [{BLANK!r}, characters...] of length num_outputs "
                             f"({num_outputs}), got {len(labels)} starting {labels[:1]}")
        super().__init__(in_dim, num_outputs, hidden_dim, dropout, labels)
        width = hidden_dim or 256
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, width), nn.GELU())
        self.rnn = nn.GRU(width, width // 2, num_layers=2, batch_first=True, bidirectional=True, dropout=dropout)
        self.out = nn.Linear(2 * (width // 2), num_outputs)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        h = self.net(x)
        if mask is not None:
            lengths = mask.sum(1).clamp_min(1).cpu()
            packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
            h, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.shape[1])
        else:
            h = self.rnn(h)[0]
        return self.out(h)  # type: ignore[no-any-return]


register_head("ctc", CTCHead)


def repeats(text: str) -> int:
    return sum(1 for a, b in zip(text, text[1:], strict=False) if a == b)


class CTCModel(EmbeddingModel):
    """One audio tower + a :class:`CTCHead`; ``forward(batch) -> CTCOutput``."""

    def __init__(self, towers: dict[str, Tower], head: CTCHead, modality: str = "audio", target: str = "text") -> None:
        super().__init__(towers)
        if modality not in towers:
            raise ModelError(f"a CTC model reads its {modality} tower, but the towers are {list(towers)}")
        self.modality, self.target = modality, target
        self.head = head
        self.vocab: list[str] = list(head.labels or [])
        self._index = {c: i for i, c in enumerate(self.vocab)}

    # ------------------------------------------------------------------ training inputs
    def normalize(self, text: str) -> str:
        return " ".join(str(text).lower().split())

    def unknown_chars(self, text: str) -> list[str]:
        return sorted({c for c in self.normalize(text) if c not in self._index})

    def min_frames(self, text: str) -> int:
        """Frames CTC needs for ``text``: one per character and a blank between repeated ones."""
        norm = self.normalize(text)
        return len(norm) + repeats(norm)

    def encode_transcripts(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Transcripts -> ``targets`` (concatenated indices), ``target_lengths``, ``min_frames``."""
        ids: list[int] = []
        lengths, need = [], []
        for i, text in enumerate(texts):
            bad = self.unknown_chars(text)
            if bad:
                raise DataError(f"transcript {i} ({text!r}) has characters outside the vocabulary: {bad}")
            norm = self.normalize(text)
            ids.extend(self._index[c] for c in norm)
            lengths.append(len(norm))
            need.append(self.min_frames(norm))
        return {"targets": torch.tensor(ids, dtype=torch.long), "target_lengths": torch.tensor(lengths),
                "min_frames": torch.tensor(need)}

    @property
    def target_processors(self) -> dict[str, Any]:
        """What the data layer runs on the transcript column when this model trains."""
        return {self.target: self.encode_transcripts}

    def frames_for(self, seconds: float) -> int | None:
        """Output frames for a clip of ``seconds`` (None when the tower cannot say)."""
        encoder = self.tower(self.modality).encoder
        count = getattr(encoder, "output_frames", None)
        if not callable(count):
            return None
        return int(count(int(seconds * int(getattr(encoder, "sample_rate", 16000)))))

    def check_row(self, row: dict[str, Any], root: Path, columns: dict[str, str]) -> tuple[str, str] | None:
        """(column, reason) when a training row cannot give a CTC loss, else None."""
        tcol, acol = columns.get(self.target, self.target), columns.get(self.modality, self.modality)
        text = row.get(tcol)
        if not isinstance(text, str) or not self.normalize(text):
            return None  # a missing or empty transcript is the row validation's own finding
        bad = self.unknown_chars(text)
        if bad:
            return tcol, f"transcript has characters outside the model's vocabulary: {bad}"
        audio = row.get(acol)
        if not isinstance(audio, str):
            return None
        try:
            import soundfile as sf

            info = sf.info(str(root / audio))
        except Exception:  # noqa: BLE001 -- an unreadable file is reported by the decode check
            return None
        frames = self.frames_for(info.frames / max(info.samplerate, 1))
        need = self.min_frames(text)
        if frames is not None and frames < need:
            return acol, (f"clip too short for its transcript: {info.frames / info.samplerate:.2f} s gives "
                          f"{frames} CTC frames, the {len(self.normalize(text))}-character transcript needs {need}")
        return None

    # ------------------------------------------------------------------ forward / decode
    def forward(self, batch: dict[str, Any]) -> CTCOutput:  # type: ignore[override]
        if self.modality not in batch:
            raise ModelError(f"batch lacks the {self.modality} input this model needs")
        tokens, mask = self.tower(self.modality).forward_tokens(batch[self.modality])
        logits = self.head(tokens, mask)
        return CTCOutput(logits.float().log_softmax(-1), mask.sum(1).long())

    @torch.inference_mode()
    def transcribe(self, items: list[Any], *, decoder: str = "greedy", beam_width: int = 8,
                   batch_size: int = 16) -> list[str]:
        """Transcripts of audio items (paths, bytes or waveforms at the tower's rate)."""
        from polymodal.models.ctc_decode import decode
        from polymodal.runtime.decode import decode_items
        from polymodal.runtime.engine import RUNTIME

        waves = decode_items(self, self.modality, list(items))
        out: list[str] = []
        with RUNTIME.eval_mode(self):
            for start in range(0, len(waves), batch_size):
                chunk = waves[start : start + batch_size]
                inputs = RUNTIME.preprocess(self.tower(self.modality), chunk)
                res = self({self.modality: inputs})
                for lp, n in zip(res.log_probs, res.lengths.tolist(), strict=True):
                    out.append(decode(lp[:n].exp().cpu().numpy(), self.vocab, decoder, beam_width))
        return out

    # ------------------------------------------------------------------ save / load
    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "head": self.head.spec(), "modality": self.modality, "target": self.target}

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> CTCModel:
        head = head_from_spec(config["head"])
        if not isinstance(head, CTCHead):
            raise ModelError(f"{folder}: a CTC model's head must be of kind 'ctc', got {config['head'].get('kind')!r}")
        return cls(cls._towers_from_config(config, folder), head, config.get("modality", "audio"),
                   config.get("target", "text"))


register_model_class(CTCModel)


def build_ctc_model(towers: dict[str, Tower], hidden_dim: int | None, dropout: float,
                    alphabet: list[str] | None = None) -> CTCModel:
    """A CTC model on the audio tower of ``towers`` (other towers are left out)."""
    if "audio" not in towers:
        raise ModelError(f"model.kind: ctc needs an audio tower; the towers are {list(towers)}")
    audio = towers["audio"]
    labels = [BLANK, *(alphabet or DEFAULT_ALPHABET)]
    head = CTCHead(audio.encoder.hidden_dim, len(labels), hidden_dim, dropout, labels)
    return CTCModel({"audio": audio}, head)
