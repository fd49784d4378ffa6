"""Raw items a caller hands a model -> what its tower's ``preprocess`` takes, one path for all.

``encode`` (so ``polymodal embed``), the task library and, next, the server decode through
here; the per-value work is the data layer's ``decode_value``, which the training loader
uses too, so inference refuses what training refuses. The options come from the tower: audio
is resampled to the tower's ``sample_rate`` and a video file is sampled to its
``num_frames`` (16000 and 8 for models that do not say).

Errors name the item: ``audio item 3 ('x.wav'): cannot decode audio (...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polymodal.data.decode import DecodeOptions, decode_value
from polymodal.errors import DataError

DEFAULT_SAMPLE_RATE = 16000
DEFAULT_NUM_FRAMES = 8
# modalities decoded before the items are sorted, because their sort key is the decoded
# item's length (token count, samples); images and clips, large once decoded and never
# sorted, are decoded one batch at a time
DECODE_BEFORE_SORT = frozenset({"text", "audio"})


class DecodeError(DataError):
    """An item that cannot be decoded; ``index`` is its position in the items given."""

    def __init__(self, modality: str, index: int, item: Any, reason: str) -> None:
        super().__init__(f"{modality} item {index} ({describe(item)}): {reason}")
        self.modality, self.index, self.item, self.reason = modality, index, item, reason

    def __reduce__(self) -> tuple[type[DecodeError], tuple[str, int, Any, str]]:
        return DecodeError, (self.modality, self.index, self.item, self.reason)

    def at(self, index: int) -> DecodeError:
        """The same error, naming the item by another position (the caller's own numbering)."""
        return DecodeError(self.modality, index, self.item, self.reason)


def describe(item: Any) -> str:
    """A short name for an item in a message: its path, or its kind and size."""
    if isinstance(item, str | Path):
        text = str(item)
        return repr(text if len(text) <= 120 else text[:117] + "...")
    if isinstance(item, bytes):
        return f"{len(item):,} bytes"
    shape = getattr(item, "shape", None)
    if shape is not None:
        return f"{type(item).__name__} of shape {tuple(shape)}"
    size = getattr(item, "size", None)
    if isinstance(size, tuple):
        return f"{type(item).__name__} {size[0]}x{size[1]}" if len(size) == 2 else type(item).__name__
    if isinstance(item, list | tuple):
        return f"{type(item).__name__} of {len(item)}"
    return type(item).__name__


def _tower_value(model: Any, modality: str, name: str, default: int) -> int:
    """A tower's own decoding setting (audio sample rate, video frame count) when it has one;
    ``model`` may be any object (models outside polymodal get the defaults)."""
    towers = getattr(model, "towers", None)
    tower = towers[modality] if towers is not None and modality in towers else None
    value = getattr(getattr(tower, "encoder", None), name, None) or getattr(tower, name, None)
    return int(value) if isinstance(value, int | float) and value > 0 else default


def decode_options(model: Any, modality: str) -> DecodeOptions:
    """How items for ``model``'s ``modality`` tower are decoded."""
    if modality == "audio":
        return DecodeOptions(sample_rate=_tower_value(model, "audio", "sample_rate", DEFAULT_SAMPLE_RATE))
    if modality == "video":
        return DecodeOptions(num_frames=_tower_value(model, "video", "num_frames", DEFAULT_NUM_FRAMES))
    return DecodeOptions()


def _reason(message: str, item: Any) -> str:
    # the data layer's messages start with the file's name (or <in-memory ...>), which the
    # item's own description already gives
    head, sep, rest = message.partition(": ")
    named = isinstance(item, str | Path) and head == str(item)
    return rest if sep and (named or head.startswith("<")) else message


def decode_items(
    model: Any, modality: str, items: Sequence[Any], options: DecodeOptions | None = None
) -> list[Any]:
    """Decode every item for ``model``'s ``modality`` tower; :class:`DecodeError` names a bad one."""
    opts = options if options is not None else decode_options(model, modality)
    out: list[Any] = []
    for i, item in enumerate(items):
        try:
            out.append(decode_value(modality, item, opts, where="<text>"))
        except DataError as exc:
            raise DecodeError(modality, i, item, _reason(str(exc), item)) from None
    return out
