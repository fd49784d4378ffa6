"""Prompt templates for zero-shot classification, one set per dataset.

Several templates per class are embedded, each embedding normalised, averaged and
renormalised (the CLIP recipe). A dataset picks its set by name; unknown datasets get
the generic set. ``{}`` is replaced by the class name.
"""

from __future__ import annotations

GENERIC = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a close-up photo of a {}.",
    "a low resolution photo of a {}.",
)

TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    "generic": GENERIC,
    "fashion-mnist": (
        "a photo of a {}.",
        "a black and white photo of a {}.",
        "a low resolution photo of a {}.",
        "a photo of the {}, a type of clothing.",
        "a grayscale product photo of a {}.",
    ),
    "shapes": (
        "a {}.",
        "a drawing of a {}.",
        "a picture of a {}.",
        "a simple image of a {}.",
    ),
    "digits": (
        "a photo of the number {}.",
        "a handwritten digit {}.",
        "a low resolution image of the digit {}.",
        "the number {} written by hand.",
    ),
    "spoken-words": (
        "{}",
        "the word {}.",
        "someone saying the word {}.",
    ),
    "moving-shapes": (
        "a video of a {}.",
        "a clip of a {}.",
        "a {} moving.",
    ),
}


def templates_for(dataset: str | None) -> tuple[str, ...]:
    """The template set whose name appears in ``dataset`` (e.g. ``fashion-mnist-test``), else generic."""
    if dataset:
        key = dataset.lower().replace("_", "-")
        for name in sorted(TEMPLATE_SETS, key=len, reverse=True):
            if name != "generic" and name in key:
                return TEMPLATE_SETS[name]
    return GENERIC


def class_prompt_name(label: str) -> str:
    """Label as it reads in a sentence: ``ankle_boot`` -> ``ankle boot``."""
    return label.replace("_", " ").strip()
