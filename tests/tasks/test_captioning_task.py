"""The captioning and generative-vqa tasks on a made shapes set, with a planted generator:
the captions a model 'generates' are chosen per image, so every metric is known in advance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from torch import nn

from polymodal.metrics.captions import COLORS
from polymodal.tasks import evaluate
from polymodal.tasks.registry import TaskModelError, tasks_for


class PlantedCaptioner(nn.Module):
    """``generate(images, prompts)`` answers from a table keyed by the image file's name."""

    def __init__(self, captions: dict[str, str], answers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.towers = nn.ModuleDict({"image": nn.Identity(), "text": nn.Identity()})
        self.captions, self.answers = captions, answers or {}
        self.calls: list[dict[str, Any]] = []

    def generate(self, images: list[str], prompts: Any = None, **kw: Any) -> list[str]:
        self.calls.append(kw)
        table = self.answers if prompts is not None else self.captions
        return [table[Path(p).name] for p in images]


def _rows(shapes_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (shapes_dir / "manifest.jsonl").read_text().splitlines()]


def test_true_captions_score_full_marks_and_a_colour_swap_is_counted(shapes_dir: Path) -> None:
    rows = _rows(shapes_dir)
    truth = {Path(r["image"]).name: r["text"] for r in rows}
    manifest = shapes_dir / "manifest.jsonl"
    result = evaluate(PlantedCaptioner(truth), "captioning", manifest, split="test", bootstrap=50)
    test = [r for r in rows if r["split"] == "test"]
    assert result.metrics["bleu4"].value == pytest.approx(100.0)
    assert result.metrics["attribute_accuracy"].value == 1.0
    assert result.metrics["exact_scene"].value == 1.0
    assert result.metrics["relation_accuracy"].value == 1.0
    assert result.metrics["relation_accuracy"].n == sum(len(r["objects"]) >= 2 for r in rows if r["split"] == "test")
    assert result.details["attributes"]["rows"] == len(test)
    assert len(result.details["attributes"]["heldout_combos"]) == 6  # read from the maker's dataset.json
    if any(r["heldout"] for r in test):
        assert result.metrics["heldout/attribute_accuracy"].value == 1.0
        assert result.metrics["heldout/combo_named"].value == 1.0
        assert result.metrics["heldout/attribute_accuracy"].n == sum(r["heldout"] for r in test)
    # red becomes a colour the scene does not have: that object's colour slot alone is wrong
    swapped = {}
    for r in rows:
        absent = sorted(set(COLORS) - {o.split()[0] for o in r["objects"]})[0]
        swapped[Path(r["image"]).name] = r["text"].replace("red ", f"{absent} ")
    result = evaluate(PlantedCaptioner(swapped), "captioning", manifest, split="test", bootstrap=50)
    reds = [r for r in test if any(o.startswith("red ") for o in r["objects"])]
    slots = sum(2 * len(r["objects"]) + (len(r["objects"]) >= 2) for r in test)
    assert result.metrics["attribute_accuracy"].value == pytest.approx(1 - len(reds) / slots)
    assert result.metrics["exact_scene"].value == pytest.approx(1 - len(reds) / len(test))
    assert result.metrics["relation_accuracy"].value == 1.0  # only colours were swapped
    assert result.metrics["bleu4"].low <= result.metrics["bleu4"].value <= result.metrics["bleu4"].high
    shown = result.details["generated_examples"][0]
    assert shown["generated"] == swapped[Path(shown["image"]).name]
    from polymodal.report import Report

    html = Report("captions").add_result(result).render()
    assert "Generated · " in html and "data:image/png;base64" in html


def test_generation_options_reach_the_model(shapes_dir: Path) -> None:
    truth = {Path(r["image"]).name: r["text"] for r in _rows(shapes_dir)}
    model = PlantedCaptioner(truth)
    evaluate(model, "captioning", shapes_dir / "manifest.jsonl", split="val", bootstrap=0, strategy="beam",
             num_beams=3)
    assert model.calls[0]["strategy"] == "beam" and model.calls[0]["num_beams"] == 3


def test_generative_vqa_is_exact_match_on_the_normalised_answer(shapes_dir: Path) -> None:
    rows = _rows(shapes_dir)
    test = [r for r in rows if r["split"] == "test"]
    answers = {Path(r["image"]).name: f" {r['answer'].upper()}." for r in rows}  # case and punctuation do not count
    result = evaluate(PlantedCaptioner({}, answers), "generative-vqa", shapes_dir / "manifest.jsonl", bootstrap=50)
    assert result.metrics["accuracy"].value == 1.0
    wrong = {k: ("no" if i % 2 else v) for i, (k, v) in enumerate(answers.items())}
    result = evaluate(PlantedCaptioner({}, wrong), "generative-vqa", shapes_dir / "manifest.jsonl", bootstrap=50)
    expected = sum(wrong[Path(r["image"]).name].strip(" .").lower() == r["answer"] for r in test) / len(test)
    assert result.metrics["accuracy"].value == pytest.approx(expected)
    assert {f"{r['question_type']}/accuracy" for r in test} <= set(result.metrics)


class EmbeddingOnly(nn.Module):
    def encode(self, modality: str, items: list[Any]) -> Any:  # pragma: no cover - never called
        raise AssertionError("a captioning task must not encode")


def test_only_a_model_with_a_decoder_runs_them(shapes_dir: Path) -> None:
    tiny_dual = EmbeddingOnly()
    assert {"captioning", "generative-vqa"} <= set(tasks_for(PlantedCaptioner({})))
    assert "classification" not in tasks_for(PlantedCaptioner({}))
    assert "captioning" not in tasks_for(tiny_dual)
    with pytest.raises(TaskModelError, match="has no text decoder.*model.kind: captioner"):
        evaluate(tiny_dual, "captioning", shapes_dir / "manifest.jsonl")
