"""Prompt templates for zero-shot classification, one set per dataset.

Several templates per class are embedded, each embedding normalised, averaged and
renormalised (the CLIP recipe). A dataset picks its set by name; unknown datasets get
the generic set. ``{}`` is replaced by the class name.

Chinese (``lang="zh"``): template sets for the generic case, ``fashion-mnist`` and ``shapes``,
and the Chinese names of those datasets' classes, written by the project (simple, standard
Simplified Chinese). A label without a Chinese name is used as it is (labels that are already
Chinese need none).
"""

from __future__ import annotations

# the shapes set's own Chinese words (its captions and questions use them too)
from polymodal.data.builtin.shapes_zh import COLORS_ZH, SHAPES_ZH, object_name

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


GENERIC_ZH = (
    "一张{}的照片。",
    "一张{}的图片。",
    "一幅{}的图像。",
    "一张{}的特写照片。",
    "一张{}的低分辨率照片。",
)

TEMPLATE_SETS_ZH: dict[str, tuple[str, ...]] = {
    "generic": GENERIC_ZH,
    "fashion-mnist": (
        "一张{}的照片。",
        "一张{}的黑白照片。",
        "一张{}的低分辨率照片。",
        "一张{}的照片，一种服装。",
        "一张{}的灰度商品照片。",
    ),
    "shapes": (
        "一个{}。",
        "一幅{}的图画。",
        "一张{}的图片。",
        "一幅简单的{}图像。",
    ),
}

LANGUAGES = ("en", "zh")


# label -> Chinese class name, per dataset (shapes' labels are "colour shape": "red circle" -> 红色圆形)
CLASS_NAMES_ZH: dict[str, dict[str, str]] = {
    "fashion-mnist": {
        "t-shirt": "T恤",
        "trouser": "裤子",
        "pullover": "套头衫",
        "dress": "连衣裙",
        "coat": "外套",
        "sandal": "凉鞋",
        "shirt": "衬衫",
        "sneaker": "运动鞋",
        "bag": "包",
        "ankle boot": "短靴",
    },
    "shapes": {
        **SHAPES_ZH,
        **COLORS_ZH,
        **{f"{c} {s}": object_name(c, s) for c in COLORS_ZH for s in SHAPES_ZH},
    },
}


def _dataset_key(dataset: str | None, names: dict[str, object]) -> str | None:
    """The set whose name appears in ``dataset`` (e.g. ``fashion-mnist-test``), longest name first."""
    if dataset:
        key = dataset.lower().replace("_", "-")
        for name in sorted(names, key=len, reverse=True):
            if name != "generic" and name in key:
                return name
    return None


def check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        from polymodal.errors import DataError

        raise DataError(f"unknown prompt language {lang!r}; known: {', '.join(LANGUAGES)}")


def templates_for(dataset: str | None, lang: str = "en") -> tuple[str, ...]:
    """The template set of ``dataset`` in ``lang`` (``en`` or ``zh``), else that language's generic set."""
    check_lang(lang)
    sets = TEMPLATE_SETS_ZH if lang == "zh" else TEMPLATE_SETS
    key = _dataset_key(dataset, sets)  # type: ignore[arg-type]
    return sets[key] if key else sets["generic"]


def class_prompt_name(label: str, lang: str = "en", dataset: str | None = None) -> str:
    """Label as it reads in a sentence: ``ankle_boot`` -> ``ankle boot``; in Chinese, the dataset's
    Chinese name for it (``ankle boot`` -> ``短靴``) or the label itself when there is none."""
    check_lang(lang)
    name = label.replace("_", " ").strip()
    if lang == "zh":
        key = _dataset_key(dataset, CLASS_NAMES_ZH)  # type: ignore[arg-type]
        return CLASS_NAMES_ZH[key].get(name, name) if key else name
    return name
