"""shapes in Chinese: every English word has its Chinese one, and a row's Chinese caption and question name
the same objects, relation and answer as its English ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

from polymodal.data.builtin import _draw as draw
from polymodal.data.builtin import shapes
from polymodal.data.builtin import shapes_zh as zh
from polymodal.tasks.templates import class_prompt_name


def test_every_english_word_has_its_own_chinese_word() -> None:
    for english, chinese in ((set(draw.COLORS), zh.COLORS_ZH), (set(draw.SHAPES), zh.SHAPES_ZH),
                             (set(shapes.RELATIONS), zh.RELATIONS_ZH), ({"yes", "no"}, zh.YES_NO_ZH)):
        assert set(chinese) == english
        assert len(set(chinese.values())) == len(chinese)  # no two words share a translation
        assert all(re.fullmatch(r"[\u4e00-\u9fff]+", word) for word in chinese.values())
    # every template has its Chinese partner with the same slots filled
    for table, slots in ((zh.ONE_OBJECT, ({"a"}, {"n"})), (zh.TWO_OBJECTS, ({"p"}, {"p"})),
                         (zh.THREE_OBJECTS, ({"p", "c"}, {"p", "c"}))):
        for en, cn in table:
            assert set(re.findall(r"{(\w)}", en)) == slots[0] and set(re.findall(r"{(\w)}", cn)) == slots[1]
    # zero-shot prompts use the same names as the captions
    assert class_prompt_name("red circle", "zh", "shapes") == zh.object_name("red", "circle") == "红色圆形"


def test_chinese_caption_names_the_right_objects_in_the_right_relation(shapes_dir: Path) -> None:
    rows = [json.loads(line) for line in (shapes_dir / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 24
    for row in rows:
        text_zh = row["text_zh"]
        names = [zh.object_name(*obj.split(" ")) for obj in row["objects"]]
        # each object is named, in the English caption's order, and nothing else is
        positions = [text_zh.index(name) for name in names]
        assert positions == sorted(positions), (row["text"], text_zh)
        others = {zh.object_name(c, s) for c in draw.COLORS for s in draw.SHAPES} - set(names)
        assert not any(name in text_zh for name in others), text_zh
        if len(names) >= 2:
            english = next(r for r in shapes.RELATIONS if f" {r} " in row["text"])
            assert f"{names[0]}在{names[1]}的{zh.RELATIONS_ZH[english]}" in text_zh, (row["text"], text_zh)
        else:
            assert not any(word in text_zh for word in zh.RELATIONS_ZH.values())


def test_chinese_question_asks_the_same_and_its_answer_matches(shapes_dir: Path) -> None:
    rows = [json.loads(line) for line in (shapes_dir / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    for row in rows:
        assert row["answer_zh"] == zh.answer(row["answer"])
        question = row["question_zh"]
        assert question.endswith("？")
        if row["question_type"] == "exists":
            color, shape = row["question"].removeprefix("is there ").rstrip("?").split(" ")[-2:]
            assert question == f"图中有{zh.object_name(color, shape)}吗？"
        elif row["question_type"] == "color":
            shape = next(s for s in draw.SHAPES if s in row["question"])
            assert zh.SHAPES_ZH[shape] in question and "颜色" in question
        else:
            color = next(c for c in draw.COLORS if c in row["question"])
            assert zh.COLORS_ZH[color] in question and ("形状" in question or "图形" in question)
