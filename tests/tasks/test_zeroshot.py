"""Zero-shot classification on planted embeddings gives exactly the accuracy worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from planted_models import PlantedEncoder, write_manifest

from polymodal.errors import DataError
from polymodal.tasks import EmbeddingCache, evaluate
from polymodal.tasks.cache import Encoder
from polymodal.tasks.zeroshot import class_embeddings

CLASSES = ["circle", "cross", "heart", "moon", "square", "star"]  # already sorted
SIZES = [10, 5, 5, 5, 3, 2]
# wrong answers per class: (how many, predicted class, true class pushed below the top 5?)
WRONG = [(2, 1, False), (1, 2, False), (0, 0, False), (3, 0, False), (1, 2, False), (1, 0, True)]


def _planted(tmp_path: Path) -> tuple[PlantedEncoder, Path]:
    eye = np.eye(len(CLASSES), dtype=np.float32)
    media: dict[str, np.ndarray] = {}
    rows = []
    for c, (size, (n_wrong, to, buried)) in enumerate(zip(SIZES, WRONG, strict=True)):
        for j in range(size):
            name = f"{CLASSES[c]}-{j}.png"
            if j < n_wrong:
                # wrong: the true class ranks second, or last when ``buried``
                media[name] = eye[to] - 0.5 * eye[c] if buried else eye[to] + 0.3 * eye[c]
            else:
                media[name] = eye[c] + 0.1 * eye[(c + 1) % len(CLASSES)]
            rows.append({"id": name, "split": "test", "image": f"img/{name}", "label": CLASSES[c]})
    rows.append({"id": "t0", "split": "train", "image": "img/circle-0.png", "label": "circle"})
    model = PlantedEncoder({c: eye[i] for i, c in enumerate(CLASSES)}, media)
    return model, write_manifest(tmp_path / "planted", rows)


def test_planted_accuracy_exact(tmp_path: Path) -> None:
    model, manifest = _planted(tmp_path)
    r = evaluate(model, "zeroshot-classification", manifest, "test", bootstrap=200)
    n = sum(SIZES)
    assert r.metrics["acc@1"].value == pytest.approx((n - 8) / n)
    assert r.metrics["acc@5"].value == pytest.approx((n - 1) / n)  # only the buried one misses the top 5
    recalls = [(s - w[0]) / s for s, w in zip(SIZES, WRONG, strict=True)]
    assert r.metrics["mean_per_class_recall"].value == pytest.approx(np.mean(recalls))
    m = r.metrics["acc@1"]
    assert m.low <= m.value <= m.high and m.low < m.high
    assert r.details["class_names"] == CLASSES
    cm = np.array(r.details["confusion_matrix"])
    assert cm.sum() == n and cm[3, 0] == 3 and cm[0, 1] == 2
    assert r.details["n"] == n  # the train row is not evaluated


def test_acc5_only_with_five_or_more_classes(tmp_path: Path) -> None:
    eye = np.eye(3, dtype=np.float32)
    names = ["a-cat", "b-dog", "c-owl"]
    rows = [{"id": str(i), "split": "test", "image": f"{i}.png", "label": names[i]} for i in range(3)]
    model = PlantedEncoder({n: eye[i] for i, n in enumerate(names)}, {f"{i}.png": eye[i] for i in range(3)})
    r = evaluate(model, "zeroshot-classification", write_manifest(tmp_path / "d", rows), bootstrap=0)
    assert set(r.metrics) == {"acc@1", "mean_per_class_recall"}
    assert r.metrics["acc@1"].value == 1.0


class _Lookup:
    """Text embeddings looked up by exact prompt."""

    def __init__(self, table: dict[str, list[float]]):
        self.table = table

    def encode(self, modality: str, items: list[str]) -> np.ndarray:
        return np.array([self.table[t] for t in items], dtype=np.float32)


def test_templates_are_normalised_averaged_and_renormalised() -> None:
    table = {
        "a photo of a cat.": [3.0, 0.0, 0.0],  # norm 3 -> e0 after normalising
        "art of a cat.": [0.0, 0.0, 0.5],  # -> e2
        "a photo of a dog.": [0.0, 1.0, 0.0],
        "art of a dog.": [0.0, 2.0, 0.0],
    }
    emb = class_embeddings(Encoder(_Lookup(table)), ["cat", "dog"], ["a photo of a {}.", "art of a {}."])
    # cat: mean(e0, e2) renormalised = (e0 + e2)/sqrt(2) — raw averaging would have given mostly e0
    assert emb[0] == pytest.approx([2**-0.5, 0.0, 2**-0.5])
    assert emb[1] == pytest.approx([0.0, 1.0, 0.0])


def test_bad_template_and_missing_split_are_clear_errors(tmp_path: Path) -> None:
    model, manifest = _planted(tmp_path)
    with pytest.raises(DataError, match="no '\\{\\}'"):
        evaluate(model, "zeroshot-classification", manifest, templates=["a photo"], bootstrap=0)
    with pytest.raises(DataError, match="no rows in split 'val'"):
        evaluate(model, "zeroshot-classification", manifest, "val", bootstrap=0)


def test_cache_hit_on_second_eval_and_invalidated_when_data_changes(tmp_path: Path) -> None:
    model, manifest = _planted(tmp_path)
    cache = EmbeddingCache(tmp_path / "cache")
    first = evaluate(model, "zeroshot-classification", manifest, cache=cache, bootstrap=0)
    encoded = dict(model.calls)
    assert encoded["image"] == sum(SIZES) and cache.misses == 2 and cache.hits == 0
    second = evaluate(model, "zeroshot-classification", manifest, cache=cache, bootstrap=0)
    assert dict(model.calls) == encoded  # nothing re-encoded
    assert cache.hits == 2
    assert second.metrics["acc@1"].value == first.metrics["acc@1"].value
    assert list((tmp_path / "cache").rglob("*.npy"))  # stored as .npy, no pickle

    # one image file changes on disk -> the image embeddings are recomputed, the prompts are not
    (manifest.parent / "img" / "moon-0.png").write_bytes(b"changed content")
    evaluate(model, "zeroshot-classification", manifest, cache=cache, bootstrap=0)
    assert model.calls["image"] == 2 * sum(SIZES)
    assert model.calls["text"] == encoded["text"]


def test_cache_keyed_by_model_weights(tmp_path: Path) -> None:
    model, manifest = _planted(tmp_path)
    cache = EmbeddingCache(tmp_path / "cache")
    evaluate(model, "zeroshot-classification", manifest, cache=cache, bootstrap=0)
    other, _ = _planted(tmp_path / "again")
    other.table.mul_(2.0)  # same code, different weights -> different model hash
    evaluate(other, "zeroshot-classification", manifest, cache=cache, bootstrap=0)
    assert other.calls["image"] == sum(SIZES)
