"""``model.predict(items)`` and ``polymodal.predict``: class names and probabilities from a model's heads.

The models are real ``FusionModel``s built from the tiny preset's towers, saved with
``save_pretrained`` and loaded back through ``polymodal.load``; their heads are planted (zero
weights, chosen biases) where a test needs known answers, and compared with the classification
task's own forward pass (the training collate path) where it needs real ones.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import polymodal
from polymodal.config import HeadSpec, ModelConfig
from polymodal.errors import DataError, ModelError
from polymodal.models.build import build_model
from polymodal.predict import Prediction, predict, predict_to_csv, read_inputs

CLASSES = ["cat", "dog", "fox"]


def _plant(head: Any, bias: list[float]) -> None:
    """Zero weights and a fixed bias: every input gets the same, known logits."""
    last = head.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(bias))


def _softmax(x: list[float]) -> list[float]:
    e = [math.exp(v - max(x)) for v in x]
    return [v / sum(e) for v in e]


@pytest.fixture(scope="module")
def image_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny image classifier saved as a run dir (``RUN/model``), head left as initialised."""
    cfg = ModelConfig(preset="tiny-dual", kind="classifier", inputs=["image"])
    torch.manual_seed(0)
    model = build_model(cfg, {"label": CLASSES})
    run = tmp_path_factory.mktemp("run")
    model.save_pretrained(run / "model")
    return run


@pytest.fixture(scope="module")
def multi_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """image + text -> a class, a multi-label set and a regression value, all planted."""
    heads = {"label": HeadSpec(), "tags": HeadSpec(kind="multilabel"), "score": HeadSpec(kind="regression")}
    cfg = ModelConfig(preset="tiny-dual", kind="fusion", inputs=["image", "text"], heads=heads)
    model: Any = build_model(cfg, {"label": CLASSES, "tags": ["red", "round", "small"], "score": []})
    _plant(model.heads["label"], [0.0, 3.0, 1.0])
    _plant(model.heads["tags"], [4.0, -4.0, 2.0])
    _plant(model.heads["score"], [2.5])
    folder = tmp_path_factory.mktemp("multi") / "model"
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class-folder tree (root/<class>/<file>.png) of 12 small random images."""
    root = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    for i in range(12):
        folder = root / CLASSES[i % 3]
        folder.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24 + i, 28, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return root


def test_predict_gives_class_names_and_probabilities(image_classifier: Path, pictures: Path) -> None:
    model = polymodal.load(image_classifier)
    files = sorted(str(p) for p in pictures.rglob("*.png"))
    preds = model.predict(files, batch_size=5)
    assert isinstance(preds, list) and len(preds) == len(files)
    for pred in preds:
        assert isinstance(pred, Prediction)
        assert set(pred.probabilities) == set(CLASSES)
        assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert pred.label == max(pred.probabilities, key=pred.probabilities.__getitem__)
        assert pred.score == pytest.approx(pred.probabilities[pred.label])
    # one item in, one prediction out (as encode does)
    one = model.predict(files[3])
    assert isinstance(one, Prediction) and one.probabilities == pytest.approx(preds[3].probabilities, abs=1e-5)
    assert polymodal.load(image_classifier).predict(Path(files[3])).label == preds[3].label


def test_predict_matches_the_classification_tasks_forward_pass(image_classifier: Path, pictures: Path) -> None:
    """The runtime's decode path gives the same probabilities as the training collate path."""
    from polymodal.tasks.classification import predict_scores
    from polymodal.tasks.data import as_eval_data

    model = polymodal.load(image_classifier)
    data = as_eval_data(pictures)
    logits = predict_scores(model, data, data.rows, "label", CLASSES, batch_size=4)
    want = torch.softmax(torch.tensor(logits), -1).numpy()
    inputs = read_inputs(model, [pictures])
    preds = predict(model, inputs.items, ids=inputs.ids)
    by_id = {p.id: p for p in preds}
    for row, probs in zip(data.rows, want, strict=True):
        got = by_id[row["id"]].probabilities
        np.testing.assert_allclose([got[c] for c in CLASSES], probs, atol=1e-5)


def test_multi_head_multilabel_and_regression(multi_head: Path, pictures: Path) -> None:
    model = polymodal.load(multi_head)
    image = next(pictures.rglob("*.png"))
    pred = model.predict({"image": str(image), "text": "is it a cat?"})
    assert set(pred.heads) == {"label", "tags", "score"}
    label = pred.heads["label"]
    assert label.kind == "classification" and label.label == "dog"
    assert [label.probabilities[c] for c in CLASSES] == pytest.approx(_softmax([0.0, 3.0, 1.0]), abs=1e-5)
    tags = pred["tags"]
    assert tags.kind == "multilabel" and tags.label == ["red", "small"]  # sigmoid >= 0.5
    assert tags.probabilities["round"] == pytest.approx(1 / (1 + math.exp(4.0)), abs=1e-5)
    assert pred["score"].kind == "regression" and pred["score"].label == pytest.approx(2.5, abs=1e-5)
    assert pred["score"].probabilities == {}
    with pytest.raises(ModelError, match="heads label, tags, score"):
        _ = pred.label  # several heads: say which
    many = model.predict([{"image": str(image), "text": "a"}, {"image": str(image), "text": "b", "id": "extra keys are fine"}])
    assert [p["label"].label for p in many] == ["dog", "dog"]
    assert model.predict({"image": str(image), "text": "x"}, threshold=0.95)["tags"].label == ["red"]


def test_clear_errors(multi_head: Path, image_classifier: Path, tiny_dual: Any, pictures: Path, tmp_path: Path) -> None:
    model = polymodal.load(multi_head)
    with pytest.raises(ModelError, match=r"reads image and text.*\{'image': \.\.\., 'text': \.\.\.\}"):
        model.predict("x.png")
    with pytest.raises(DataError, match=r"item 1 has no 'text'"):
        model.predict([{"image": "a.png", "text": "q"}, {"image": "a.png"}])
    with pytest.raises(ModelError, match=r"no classification head.*--task zeroshot-classification"):
        tiny_dual.predict(["a photo"])
    with pytest.raises(DataError, match=r"image item 1 \('.*missing.png'\)"):
        polymodal.load(image_classifier).predict([str(next(pictures.rglob("*.png"))), str(tmp_path / "missing.png")])


def test_predict_to_csv_from_a_manifest_with_truth_and_per_class_columns(image_classifier: Path, pictures: Path) -> None:
    rows = [{"id": f"r{i}", "image": p.relative_to(pictures).as_posix(), "label": p.parent.name, "split": "test"}
            for i, p in enumerate(sorted(pictures.rglob("*.png")))]
    manifest = pictures / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = pictures.parent / "preds.csv"
    summary = predict_to_csv(image_classifier, [manifest], out)
    assert summary.rows == len(rows) and summary.path == out
    with out.open(newline="") as fh:
        got = list(csv.DictReader(fh))
    header = list(got[0])
    assert header == ["id", "image", "label", "predicted", "probability", "prob_cat", "prob_dog", "prob_fox"]
    assert [g["id"] for g in got] == [r["id"] for r in rows]
    assert [g["image"] for g in got] == [r["image"] for r in rows]  # as written in the manifest
    assert [g["label"] for g in got] == [r["label"] for r in rows]  # the truth, beside the prediction
    want = polymodal.load(image_classifier).predict([str(pictures / r["image"]) for r in rows])
    for g, p in zip(got, want, strict=True):
        assert g["predicted"] == p.label
        assert float(g["probability"]) == pytest.approx(p.score, abs=1e-5)
        assert sum(float(g[f"prob_{c}"]) for c in CLASSES) == pytest.approx(1.0, abs=1e-4)


def test_top_k_columns_and_multi_head_prefixes(multi_head: Path, pictures: Path, tmp_path: Path) -> None:
    image = next(pictures.rglob("*.png"))
    manifest = tmp_path / "vqa.csv"
    (tmp_path / "a.png").write_bytes(image.read_bytes())
    manifest.write_text("id,image,question,label\nq1,a.png,what is it?,fox\nq2,a.png,and now?,dog\n")
    out = tmp_path / "p.csv"
    with pytest.raises(DataError, match=r"row 'q1' has no 'text'.*columns found: id, image, question, label.*--column text=NAME"):
        predict_to_csv(multi_head, [manifest], out)
    predict_to_csv(multi_head, [manifest], out, columns={"text": "question"}, top_k=2)
    with out.open(newline="") as fh:
        got = list(csv.DictReader(fh))
    assert list(got[0]) == [
        "id", "image", "question", "label",
        "label_predicted", "label_probability", "label_top1", "label_top1_prob", "label_top2", "label_top2_prob",
        "tags_predicted", "tags_top1", "tags_top1_prob", "tags_top2", "tags_top2_prob",
        "score_predicted",
    ]
    assert got[0]["label_top1"] == "dog" and got[0]["label_top2"] == "fox"
    assert got[0]["tags_predicted"] == "red;small"
    assert float(got[0]["score_predicted"]) == pytest.approx(2.5, abs=1e-5)


def test_files_folders_and_text_lines(image_classifier: Path, pictures: Path, tmp_path: Path) -> None:
    model = polymodal.load(image_classifier)
    files = sorted(pictures.rglob("*.png"))[:3]
    got = read_inputs(model, files)
    assert got.ids == [f.name for f in files] and [i["image"] for i in got.items] == [str(f) for f in files]
    flat = tmp_path / "flat"  # a folder of files, no class sub-folders
    flat.mkdir()
    for f in files:
        (flat / f.name).write_bytes(f.read_bytes())
    (flat / "notes.md").write_text("not an image")
    got = read_inputs(model, [flat])
    assert got.ids == [f.name for f in files] and got.truth == [{}, {}, {}]
    tree = read_inputs(model, [pictures])  # a class-folder tree: the folder names are the truth
    assert len(tree.ids) == 12 and {t["label"] for t in tree.truth} == set(CLASSES)
    assert len(read_inputs(model, [pictures], split="test").ids) < 12
    with pytest.raises(DataError, match="no such file"):
        read_inputs(model, [tmp_path / "nope.png"])
    with pytest.raises(DataError, match="reads image"):
        read_inputs(model, [tmp_path / "flat" / "notes.md"])


def test_a_text_classifier_reads_a_text_file_line_by_line(tmp_path: Path) -> None:
    model: Any = build_model(ModelConfig(preset="tiny-dual", kind="classifier", inputs=["text"]), {"label": ["neg", "pos"]})
    _plant(model.heads["label"], [0.0, 2.0])
    lines = tmp_path / "reviews.txt"
    lines.write_text("great film\n\nawful plot\n")
    got = read_inputs(model, [lines])
    assert got.ids == ["line-0", "line-1"] and [i["text"] for i in got.items] == ["great film", "awful plot"]
    assert model.predict("great film").label == "pos"
    assert model.predict("great film").score == pytest.approx(_softmax([0.0, 2.0])[1], abs=1e-5)
