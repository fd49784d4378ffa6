"""Built-in datasets that polymodal makes or finds offline (``polymodal data make NAME``).

Each dataset is one module with a ``make(out_dir, n=None, seed=0) -> Path`` function;
``DATASETS`` maps the public name to it explicitly (nothing registers on import). A make
writes its files under ``out_dir`` plus ``out_dir/manifest.jsonl`` (paths relative to
``out_dir``) and ``out_dir/dataset.json`` (what was made and how); the same seed gives
the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from polymodal.data.builtin import (
    digits,
    fashion_mnist,
    moving_shapes,
    shapes,
    spoken_phrases,
    spoken_words,
    wordnet,
)
from polymodal.errors import DataError

Maker = Callable[..., Path]

DATASETS: dict[str, Maker] = {
    "shapes": shapes.make,
    "fashion-mnist": fashion_mnist.make,
    "digits": digits.make,
    "spoken-words": spoken_words.make,
    "spoken-phrases": spoken_phrases.make,
    "moving-shapes": moving_shapes.make,
    "wordnet": wordnet.make,
}

DESCRIPTIONS: dict[str, str] = {
    "shapes": "synthetic coloured-shape scenes: image, caption, attributes, QA, held-out combos",
    "fashion-mnist": "real Fashion-MNIST (Debian dataset-fashion-mnist) as PNGs with captions",
    "digits": "scikit-learn 8x8 handwritten digits, upscaled to 32x32, with captions",
    "spoken-words": "spoken words synthesized with espeak-ng (several voices and speeds)",
    "spoken-phrases": "three-word phrases (digit/command, colour, shape) by espeak-ng voices, speeds and "
                      "pitches; test voices held out",
    "moving-shapes": "8-frame clips of a shape moving left/right/up/down, with captions",
    "wordnet": "WordNet noun glosses labelled by lexicographer category (Debian wordnet-base)",
}


def make_dataset(name: str, out_dir: str | Path, n: int | None = None, seed: int = 0) -> Path:
    """Write the built-in dataset ``name`` under ``out_dir``; return its ``manifest.jsonl``.

    ``n`` is the number of rows (for real datasets, a cap on them; ``None`` = the default
    size). Raises ``DataError`` for an unknown name, a bad ``n``, a missing system package
    or an ``out_dir`` that is not empty and not an earlier make.
    """
    maker = DATASETS.get(name)
    if maker is None:
        raise DataError(f"unknown built-in dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return maker(out_dir, n=n, seed=seed)


__all__ = ["DATASETS", "DESCRIPTIONS", "make_dataset"]
