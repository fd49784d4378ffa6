"""Chinese for the built-in ``shapes`` set: words, caption templates and questions, written by the project.

Every English template in ``shapes.py`` has its Chinese counterpart here, at the same position,
so a row's ``text_zh`` / ``question_zh`` say what its ``text`` / ``question`` say (same objects,
same relation, same wording slot). Simplified Chinese, plain wording:

- colours are ``<colour>色`` (红色, 绿色, ...), shapes their usual names (圆形, 正方形, 三角形,
  五角星 for the five-pointed star that is drawn, 十字形 for the cross); an object is
  colour + shape (红色圆形), counted with 个 (一个红色圆形);
- "A to the left of B" is ``A在B的左边`` (右边, 上方, 下方 likewise);
- an existence question is ``图中有红色圆形吗？``, answered 有 / 没有.

The prompt templates of ``tasks/templates.py`` read the same colour and shape names.
"""

from __future__ import annotations

from typing import Any

SHAPES_ZH: dict[str, str] = {"circle": "圆形", "square": "正方形", "triangle": "三角形", "star": "五角星",
                             "cross": "十字形"}
COLORS_ZH: dict[str, str] = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "purple": "紫色",
                             "orange": "橙色"}
# where A sits relative to B: "A在B的<word>"
RELATIONS_ZH: dict[str, str] = {"above": "上方", "below": "下方", "to the left of": "左边", "to the right of": "右边"}
YES_NO_ZH: dict[str, str] = {"yes": "有", "no": "没有"}  # the answers to "图中有…吗？"

# (English, Chinese) caption templates; {a} / {n} one object, {p} the pair sentence, {c} the third object
ONE_OBJECT: tuple[tuple[str, str], ...] = (
    ("{a}", "一个{n}"),
    ("a picture of {a}", "一张{n}的图片"),
    ("{a} on a plain background", "纯色背景上的一个{n}"),
    ("a single shape: {a}", "单个图形：一个{n}"),
)
TWO_OBJECTS: tuple[tuple[str, str], ...] = (
    ("{p}", "{p}"),
    ("a picture of {p}", "一张图片：{p}"),
    ("there is {p}", "有一个{p}"),
)
THREE_OBJECTS: tuple[tuple[str, str], ...] = (
    ("{p}, and {c}", "{p}，还有一个{c}"),
    ("{p}, with {c} nearby", "{p}，旁边有一个{c}"),
    ("a picture of {p}, and {c}", "一张图片：{p}，还有一个{c}"),
)
# (English, Chinese) question wordings; {s} a shape, {c} a colour
COLOR_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("what colour is the {s}?", "{s}是什么颜色的？"),
    ("what is the colour of the {s}?", "{s}的颜色是什么？"),
)
SHAPE_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("what shape is the {c} object?", "{c}的物体是什么形状的？"),
    ("which shape is {c}?", "哪个图形是{c}的？"),
)
EXISTS_QUESTION_ZH = "图中有{n}吗？"


def object_name(color: str, shape: str) -> str:
    """``red``, ``circle`` -> 红色圆形."""
    return COLORS_ZH[color] + SHAPES_ZH[shape]


def name_of(obj: dict[str, Any]) -> str:
    return object_name(obj["color"], obj["shape"])


def pair(a: dict[str, Any], relation: str, b: dict[str, Any]) -> str:
    """``a`` is ``relation`` ``b``: 红色圆形在蓝色正方形的左边."""
    return f"{name_of(a)}在{name_of(b)}的{RELATIONS_ZH[relation]}"


def answer(value: str) -> str:
    """An English answer (a colour, a shape, yes or no) in Chinese."""
    for table in (COLORS_ZH, SHAPES_ZH, YES_NO_ZH):
        if value in table:
            return table[value]
    raise KeyError(f"shapes: no Chinese for the answer {value!r}")
