"""Classification task: a tiny classifier with a real forward(batch) over the data layer's collate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn import metrics as skm
from torch import nn

from polymodal.errors import ModelError
from polymodal.models.outputs import ClassifierOutput
from polymodal.tasks import evaluate
from polymodal.tasks.classification import classification_result

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}


class MeanColourClassifier(nn.Module):
    """Logits = mean RGB reordered to the label space [blue, green, red]: the dominant channel wins."""

    def __init__(self, column: str = "label") -> None:
        super().__init__()
        self.column = column
        self.weight = nn.Parameter(torch.tensor([[0.0, 0, 1], [0, 1, 0], [1, 0, 0]]))  # rgb -> (blue, green, red)

    @property
    def processors(self) -> dict[str, Any]:
        return {"image": lambda ims: torch.tensor(np.stack([np.asarray(im, dtype=np.float32).mean((0, 1)) / 255 for im in ims]))}

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        z = batch["image"] @ self.weight.T
        return ClassifierOutput({self.column: (z - 0.5) * 10})


def _data(tmp_path: Path) -> Path:
    root = tmp_path / "colours"
    root.mkdir()
    rows = []
    # (image colour, label): 9 right, 3 wrong
    spec = [("red", "red")] * 4 + [("green", "green")] * 3 + [("blue", "blue")] * 2 + [("green", "red"), ("blue", "red"), ("red", "blue")]
    for i, (colour, label) in enumerate(spec):
        Image.new("RGB", (8, 8), COLOURS[colour]).save(root / f"{i}.png")
        rows.append({"id": f"r{i}", "split": "test", "image": f"{i}.png", "label": label, "tags": [colour]})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "manifest.jsonl"


def test_accuracy_f1_report_and_confusion(tmp_path: Path) -> None:
    r = evaluate(MeanColourClassifier(), "classification", _data(tmp_path), bootstrap=100)
    y = ["red"] * 4 + ["green"] * 3 + ["blue"] * 2 + ["red", "red", "blue"]
    p = ["red"] * 4 + ["green"] * 3 + ["blue"] * 2 + ["green", "blue", "red"]
    assert r.metrics["accuracy"].value == pytest.approx(9 / 12)
    assert r.metrics["macro_f1"].value == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert r.metrics["mean_per_class_recall"].value == pytest.approx(skm.balanced_accuracy_score(y, p))
    assert r.details["class_names"] == ["blue", "green", "red"]
    assert np.array(r.details["confusion_matrix"]).tolist() == [[2, 0, 1], [0, 3, 0], [1, 1, 4]]
    assert r.details["report"]["red"]["recall"] == pytest.approx(4 / 6)


def test_multilabel_column_gives_map_and_f1(tmp_path: Path) -> None:
    r = evaluate(MeanColourClassifier("tags"), "classification", _data(tmp_path), label_column="tags", bootstrap=0)
    # each image's tag is its own colour and the head ranks that channel first: perfect
    assert set(r.metrics) == {"mAP", "macro_f1", "micro_f1"}
    assert r.metrics["mAP"].value == pytest.approx(1.0)
    assert r.metrics["macro_f1"].value == pytest.approx(1.0)


def test_a_single_head_names_the_label_column(tmp_path: Path) -> None:
    class OneHead(MeanColourClassifier):
        heads = nn.ModuleDict({"tags": nn.Identity()})

    # no label_column given: the model's only head says which column it predicts
    r = evaluate(OneHead("tags"), "classification", _data(tmp_path), bootstrap=0)
    assert set(r.metrics) == {"mAP", "macro_f1", "micro_f1"}


def test_model_without_head_is_a_model_error(tmp_path: Path) -> None:
    class Plain:
        def encode(self, modality: str, items: list[Any]) -> np.ndarray:
            return np.zeros((len(items), 2))

    with pytest.raises(ModelError, match="head"):
        evaluate(Plain(), "classification", _data(tmp_path), bootstrap=0)


def test_classification_result_by_hand() -> None:
    scores = np.array([[2.0, 1.0], [0.1, 0.9], [3.0, 0.0], [0.0, 1.0]])
    r = classification_result(np.array([0, 1, 1, 1]), scores, ["a", "b"], ["1", "2", "3", "4"], n_boot=0)
    assert r.metrics["accuracy"].value == pytest.approx(3 / 4)
    # a: P 1/2 R 1 F1 2/3; b: P 1 R 2/3 F1 0.8
    assert r.metrics["macro_f1"].value == pytest.approx((2 / 3 + 0.8) / 2)


def test_a_model_without_a_head_names_the_tasks_that_fit(tmp_path: Path) -> None:
    """`polymodal eval DUAL_MODEL --task classification` ended in a raw AttributeError/KeyError."""
    from typer.testing import CliRunner

    from polymodal.cli.main import app
    from polymodal.models.build import build_preset
    from polymodal.tasks import TaskError

    data = _data(tmp_path)
    with pytest.raises(TaskError) as err:
        evaluate(build_preset("tiny-dual"), "classification", data, bootstrap=0)
    msg = str(err.value)
    assert "(DualEncoder) has no classification head" in msg
    assert "tasks that fit: few-shot, linear-probe, motion, retrieval, zeroshot-classification" in msg

    r = CliRunner().invoke(app, ["eval", "tiny-dual", "--task", "classification", "--data", str(data)])
    assert r.exit_code == 2 and "Traceback" not in r.output and r.exception is not None
    assert "tiny-dual (DualEncoder) has no classification head" in " ".join(r.output.split())


def test_classification_reports_progress_per_batch(tmp_path: Path) -> None:
    """`polymodal eval --task classification` was silent however long the test set."""
    calls: list[tuple[str, int, int]] = []
    evaluate(MeanColourClassifier(), "classification", _data(tmp_path), bootstrap=0, batch_size=5,
             progress=lambda *a: calls.append(a))
    assert calls == [("image", 5, 12), ("image", 10, 12), ("image", 12, 12)]
