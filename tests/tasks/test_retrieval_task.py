"""Retrieval task on planted embeddings: ranks worked out by hand, several captions per image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from planted_models import PlantedEncoder, write_manifest

from polymodal.errors import DataError
from polymodal.tasks import evaluate


def _setup(tmp_path: Path) -> tuple[PlantedEncoder, Path]:
    e = np.eye(4, dtype=np.float32)
    captions = {"cap a one": e[0], "cap a two": e[1], "cap b": e[2], "cap c": e[3]}
    images = {
        "A.png": np.array([0, 0.6, 0.8, 0], dtype=np.float32),  # own captions .0/.6, "cap b" .8 above -> rank 2
        "B.png": np.array([0, 0, 1, 0], dtype=np.float32),  # rank 1
        "C.png": np.array([0.8, 0, 0, 0.6], dtype=np.float32),  # "cap a one" .8 above its .6 -> rank 2
    }
    rows = [
        {"id": "1", "split": "test", "image": "A.png", "text": "cap a one"},
        {"id": "2", "split": "test", "image": "A.png", "text": "cap a two"},  # second caption of A
        {"id": "3", "split": "test", "image": "B.png", "text": ["cap b"]},
        {"id": "4", "split": "test", "image": "C.png", "text": "cap c"},
    ]
    return PlantedEncoder(captions, images, extra_dims=0), write_manifest(tmp_path / "ret", rows)


def test_ranks_and_recalls_by_hand(tmp_path: Path) -> None:
    model, manifest = _setup(tmp_path)
    r = evaluate(model, "retrieval", manifest, bootstrap=100)
    m = {k: v.value for k, v in r.metrics.items()}
    # image -> text: ranks [2, 1, 2]
    assert m["image_to_text/R@1"] == pytest.approx(1 / 3)
    assert m["image_to_text/R@5"] == pytest.approx(1.0)
    assert m["image_to_text/R@10"] == pytest.approx(1.0)  # k beyond the 4 captions
    assert m["image_to_text/mean_rank"] == pytest.approx(5 / 3)
    assert m["image_to_text/median_rank"] == pytest.approx(2.0)
    # text -> image: "cap a one" scores A 0, B 0 (tie, against it), C .8 -> rank 3; the rest rank 1
    assert m["text_to_image/R@1"] == pytest.approx(3 / 4)
    assert m["text_to_image/mean_rank"] == pytest.approx(1.5)
    assert m["text_to_image/median_rank"] == pytest.approx(1.0)
    assert r.metrics["image_to_text/mean_rank"].higher_is_better is False
    assert r.details["n_media"] == 3 and r.details["n_texts"] == 4
    ex = r.details["examples"]["image_to_text"][0]
    assert Path(ex["query"]).name == "A.png"
    assert ex["retrieved"][:2] == ["cap b", "cap a two"] and ex["hits"][:2] == [False, True]


def test_needs_a_media_column(tmp_path: Path) -> None:
    model, _ = _setup(tmp_path)
    manifest = write_manifest(tmp_path / "t", [{"id": "1", "split": "test", "text": "cap b"}])
    with pytest.raises(DataError, match="retrieval needs"):
        evaluate(model, "retrieval", manifest, bootstrap=0)
