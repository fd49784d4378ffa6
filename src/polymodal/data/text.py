"""Text cleaning: one stated rule for bad text, configurable through ``TextDataConfig``.

Inline text arrives as ``str``. Manifests are read with ``surrogateescape``, so bytes that
are not valid UTF-8 survive as lone surrogates (U+DC80..U+DCFF) and are detected here.

The rule, applied in this order:

1. invalid UTF-8 (lone surrogates) and NUL characters: ``on_invalid_utf8="reject"`` raises
   :class:`DataError`; ``"replace"`` turns invalid bytes into U+FFFD and drops NULs;
2. surrounding whitespace is stripped; empty text is always rejected;
3. text longer than ``max_chars``: ``on_too_long="truncate"`` keeps the first ``max_chars``
   characters, ``"reject"`` raises.
"""

from __future__ import annotations

import re

from polymodal.config import TextDataConfig
from polymodal.errors import DataError

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: object, cfg: TextDataConfig | None = None, *, where: str = "text") -> str:
    """Return the cleaned text or raise :class:`DataError` (message starts with ``where``)."""
    cfg = cfg or TextDataConfig()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="surrogateescape")
    if not isinstance(value, str):
        raise DataError(f"{where}: expected text, got {type(value).__name__}")
    bad = _SURROGATE.search(value)
    if bad is not None or "\x00" in value:
        what = "invalid UTF-8 bytes" if bad is not None else "a NUL character"
        if cfg.on_invalid_utf8 == "reject":
            raise DataError(f"{where}: text contains {what}")
        value = _SURROGATE.sub("\ufffd", value).replace("\x00", "")
    value = value.strip()
    if not value:
        raise DataError(f"{where}: empty text")
    if len(value) > cfg.max_chars:
        if cfg.on_too_long == "reject":
            raise DataError(f"{where}: text is {len(value)} characters, over the limit of {cfg.max_chars}")
        value = value[: cfg.max_chars]
    return value


def swap_word(text: str, old: str, new: str, where: str) -> str:
    """``text`` with every whole-word ``old`` replaced by ``new``; a ``DataError`` naming ``where``
    when ``old`` is not in it (a caption that does not say what it should)."""
    pattern = re.compile(rf"\b{re.escape(old)}\b")
    if not pattern.search(text):
        raise DataError(f"{where}: caption {text!r} does not contain its direction {old!r}")
    return pattern.sub(new, text)


def word_swaps(text: str, groups: list[list[str]]) -> list[str]:
    """Every rewrite of ``text`` with one word of a group replaced by another word of that group.

    The first word of each group found in the text is swapped ("a star moving left" with
    ``[["left", "right", "up", "down"]]`` -> "... right", "... up", "... down"); a text with no
    group word has none. These are the hard negatives of ``swap-contrastive`` and the candidates
    of the ``motion`` task: the same object in other words, so only the swapped word can decide.
    """
    out: list[str] = []
    for group in groups:
        found = next((w for w in group if re.search(rf"\b{re.escape(w)}\b", text)), None)
        if found is not None:
            out += [swap_word(text, found, other, "swap") for other in group if other != found]
    return out
