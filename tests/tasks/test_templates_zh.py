"""Chinese prompts: template sets and class names for the built-in datasets, used by zero-shot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from planted_models import PlantedEncoder, write_manifest

from polymodal.errors import DataError
from polymodal.tasks import evaluate
from polymodal.tasks.templates import CLASS_NAMES_ZH, class_prompt_name, templates_for


def _three_classes(n: int) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict[str, str]]]:
    """``n`` test images of coat / sandal / bag in turn, each planted at its class's axis."""
    eye = np.eye(3, dtype=np.float32)
    labels = ["coat", "sandal", "bag"]
    media, rows = {}, []
    for i in range(n):
        name = f"im{i}.png"
        media[name] = eye[i % 3]
        rows.append({"id": name, "split": "test", "image": name, "label": labels[i % 3]})
    return eye, media, rows


def test_chinese_templates_and_class_names() -> None:
    assert templates_for("fashion-mnist", "zh")[0] == "一张{}的照片。"
    assert templates_for("my-photos", "zh")[0] == "一张{}的照片。"  # generic set
    assert all("{}" in t for sets in (templates_for("shapes", "zh"), templates_for(None, "zh")) for t in sets)
    assert class_prompt_name("ankle boot", "zh", "fashion-mnist") == "短靴"
    assert class_prompt_name("red circle", "zh", "shapes") == "红色圆形"
    assert class_prompt_name("ankle_boot", "en", "fashion-mnist") == "ankle boot"
    assert class_prompt_name("猫", "zh", "my-photos") == "猫"  # already Chinese: used as it is
    assert len(CLASS_NAMES_ZH["fashion-mnist"]) == 10 and len(set(CLASS_NAMES_ZH["fashion-mnist"].values())) == 10
    with pytest.raises(DataError, match="unknown prompt language 'fr'"):
        templates_for("shapes", "fr")


def test_zero_shot_in_chinese_reads_chinese_prompts(tmp_path: Path) -> None:
    eye, media, rows = _three_classes(12)
    # the planted text tower knows only the Chinese names: English prompts would find no vector
    model = PlantedEncoder({"外套": eye[0], "凉鞋": eye[1], "包": eye[2]}, media)
    manifest = write_manifest(tmp_path / "fashion-mnist", rows)
    r = evaluate(model, "zeroshot-classification", manifest, lang="zh", bootstrap=0)
    assert r.metrics["acc@1"].value == 1.0 and r.details["lang"] == "zh"
    assert r.details["templates"] == list(templates_for("fashion-mnist", "zh"))
    with pytest.raises(KeyError, match="no planted vector"):
        evaluate(model, "zeroshot-classification", manifest, bootstrap=0)


def test_compare_one_model_in_english_and_chinese_with_a_paired_test(tmp_path: Path) -> None:
    from polymodal.tasks import compare

    eye, media, rows = _three_classes(30)
    # English names point at the right classes; of the Chinese ones only 外套 does
    texts = {"coat": eye[0], "sandal": eye[1], "bag": eye[2], "外套": eye[0], "凉鞋": eye[2], "包": eye[1]}
    model = PlantedEncoder(texts, media)
    manifest = write_manifest(tmp_path / "fashion-mnist", rows)
    board = compare([model, model], ["zeroshot-classification"], [manifest], tmp_path / "board", bootstrap=300,
                    model_opts=[{"lang": "en"}, {"lang": "zh"}], names=["planted · English", "planted · 中文"])
    col = "zeroshot-classification: acc@1"
    assert board.cells["planted · English"][col].value == 1.0
    assert board.cells["planted · 中文"][col].value == pytest.approx(1 / 3)
    assert board.paired[col].diff == pytest.approx(2 / 3) and board.paired[col].p_value < 0.01
    assert "planted · 中文" in (tmp_path / "board" / "leaderboard.html").read_text(encoding="utf-8")
    with pytest.raises(DataError, match="model_opts has 1 entries for 2 models"):
        compare([model, model], ["zeroshot-classification"], [manifest], model_opts=[{}])


def test_retrieval_in_chinese_reads_text_zh_and_pairs_with_english(tmp_path: Path) -> None:
    from polymodal.tasks import compare

    eye, media, _ = _three_classes(6)
    english, chinese = ["coat", "sandal", "bag"], ["外套", "凉鞋", "包"]
    rows = [{"id": f"r{i}", "split": "test", "image": f"im{i}.png", "text": f"a {english[i % 3]}",
             "text_zh": f"一件{chinese[i % 3]}"} for i in range(6)]
    # English captions find their class; of the Chinese ones, 凉鞋 points at the bag
    texts = {"coat": eye[0], "sandal": eye[1], "bag": eye[2], "外套": eye[0], "凉鞋": eye[2], "包": eye[2]}
    model = PlantedEncoder(texts, media)
    manifest = write_manifest(tmp_path / "captions", rows)
    zh = evaluate(model, "retrieval", manifest, lang="zh", bootstrap=0)
    assert zh.details["text_column"] == "text_zh" and zh.details["n_texts"] == 6
    board = compare([model, model], ["retrieval"], [manifest], bootstrap=200,
                    model_opts=[{"lang": "en"}, {"lang": "zh"}], names=["en", "zh"])
    # the same rows in two languages pair up in both directions (caption ids are row ids)
    assert {"retrieval: text_to_image/R@5", "retrieval: image_to_text/R@5"} <= set(board.paired)
    recall = "retrieval: text_to_image/R@5"
    assert board.cells["en"][recall].value == 1.0 and board.cells["zh"][recall].value == pytest.approx(2 / 3)
    with pytest.raises(DataError, match="no rows with both 'image' and 'text_zh'"):
        evaluate(model, "retrieval", write_manifest(tmp_path / "plain", [{k: v for k, v in r.items() if k != "text_zh"}
                                                                         for r in rows]), lang="zh", bootstrap=0)
