"""The text-to-image task and its judge on known answers.

The judge here is a real ``ShapesJudge`` whose heads are set to always read "red circle, above,
green cross": on four hand-written prompts the task's accuracies are then known exactly, so a
slot counted wrong (or a group mixed up) fails the test. The generator is a tiny untrained
one: the rigged judge reads every image the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import polymodal
from polymodal.config import GeneratorSpec
from polymodal.errors import DataError
from polymodal.models.text_to_image import TextToImageModel
from polymodal.models.towers import build_tower
from polymodal.tasks import evaluate
from polymodal.tasks.registry import TaskModelError, check_fits, get_task, tasks_for
from polymodal.tasks.shapes_judge import HEADS, SceneTargets, ShapesJudge, judge_slots, scene_targets

pytest.importorskip("diffusers", reason="text-to-image needs diffusers (the generate extra)")

ROWS = [
    {"id": "one-seen", "split": "test", "text": "a red circle", "objects": ["red circle"], "heldout": False},
    {"id": "one-held", "split": "test", "text": "a picture of a blue star", "objects": ["blue star"], "heldout": True},
    {"id": "two-a", "split": "test", "text": "a red square above a green cross",
     "objects": ["red square", "green cross"], "heldout": False},
    {"id": "two-b", "split": "test", "text": "there is a yellow circle to the left of a red star",
     "objects": ["yellow circle", "red star"], "heldout": False},
]
ALWAYS = {"main_color": "red", "main_shape": "circle", "second_color": "green", "second_shape": "cross",
          "relation": "above", "count": "2"}


def rigged_judge(folder: Path) -> Path:
    """A saved judge that reads every image as ALWAYS (the heads' biases decide)."""
    judge = ShapesJudge(width=8)
    with torch.no_grad():
        for head, linear in judge.readers.items():
            linear.weight.zero_()
            linear.bias.fill_(-10.0)
            linear.bias[HEADS[head].index(ALWAYS[head])] = 10.0
    judge.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextToImageModel, Path, Path]:
    base = tmp_path_factory.mktemp("t2i-task")
    manifest = base / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    torch.manual_seed(0)
    # untrained: what it draws does not matter here, the rigged judge decides every reading
    model = TextToImageModel(build_tower({"modality": "text", "source": "tiny", "name_or_path": "bert"}),
                             GeneratorSpec(image_size=32, patch=4, block_out_channels=[48, 48],
                                           cross_attention=[False, True]))
    model.eval()
    return model, manifest, rigged_judge(base / "judge")


def test_slots_count_colour_shape_and_relation() -> None:
    truth = scene_targets(ROWS[2])
    assert truth == SceneTargets((("red", "square"), ("green", "cross")), "above")
    assert judge_slots(ALWAYS, truth) == (4, 5)
    assert judge_slots(ALWAYS, scene_targets(ROWS[0])) == (2, 2)
    assert judge_slots(ALWAYS, scene_targets(ROWS[3])) == (1, 5)
    with pytest.raises(DataError, match="row x: .pink circle. is not"):
        scene_targets({"objects": ["pink circle"], "text": "a pink circle"}, "row x")


def test_task_scores_generated_images_with_the_judge(setup: tuple[TextToImageModel, Path, Path], tmp_path: Path) -> None:
    model, manifest, judge = setup
    result = evaluate(model, "text-to-image", manifest, judge=judge, steps=2, images_dir=tmp_path / "drawn",
                      bootstrap=50, cache=False)
    m = {k: v.value for k, v in result.metrics.items()}
    assert m["single/attribute_accuracy"] == pytest.approx(0.5)
    assert m["single/seen/attribute_accuracy"] == pytest.approx(1.0)
    assert m["single/heldout/attribute_accuracy"] == pytest.approx(0.0)
    assert m["single/exact_scene"] == pytest.approx(0.5)
    assert m["relation/attribute_accuracy"] == pytest.approx(0.5)
    assert m["relation/relation_accuracy"] == pytest.approx(0.5)
    assert result.metrics["single/seen/attribute_accuracy"].n == 1
    assert "text_image_score" not in m and "skipped" in result.details["notes"][0]
    examples = result.details["generated_examples"]
    assert [e["id"] for e in examples] == ["one-seen", "one-held", "two-a", "two-b"]
    assert all(Path(e["path"]).is_file() for e in examples)


def test_text_image_score_under_a_dual_model(setup: tuple[TextToImageModel, Path, Path], tmp_path: Path) -> None:
    model, manifest, judge = setup
    scorer = polymodal.load("tiny-dual")
    scorer.save_pretrained(str(tmp_path / "scorer"))
    result = evaluate(model, "text-to-image", manifest, judge=judge, steps=2, score_model=tmp_path / "scorer",
                      limit=1, bootstrap=0, cache=False)
    score = result.metrics["text_image_score"]
    assert -1.0 <= score.value <= 1.0 and score.n == 2


def test_task_fits_only_image_generators(setup: tuple[TextToImageModel, Path, Path], tmp_path: Path) -> None:
    model, _, judge = setup
    assert "text-to-image" in tasks_for(model) and "captioning" not in tasks_for(model)
    with pytest.raises(TaskModelError, match="does not generate images"):
        check_fits(get_task("text-to-image"), polymodal.load("tiny-dual"))
    with pytest.raises(DataError, match="needs judge=FOLDER"):
        evaluate(model, "text-to-image", setup[1], cache=False)


def test_train_judge_on_real_shapes_saves_a_loadable_model(tmp_path: Path) -> None:
    from polymodal.data.builtin import make_dataset
    from polymodal.tasks.shapes_judge import train_judge

    manifest = make_dataset("shapes", tmp_path / "shapes", n=30, seed=0)
    result = train_judge(manifest, tmp_path / "judge", epochs=1, width=8, batch_size=16)
    assert {"main_color", "main_shape", "count"} <= set(result.test_accuracy) <= set(HEADS)
    assert all(0.0 <= v <= 1.0 for v in result.test_accuracy.values())
    loaded = polymodal.load(tmp_path / "judge")
    assert isinstance(loaded, ShapesJudge)
    assert json.loads((tmp_path / "judge" / "judge.json").read_text())["test_rows"] == result.test_rows
    reading = loaded.predict([Image.new("RGB", (96, 96), "white")])[0]
    assert set(reading) == set(HEADS)
