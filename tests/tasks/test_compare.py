"""compare(): leaderboard across models and tasks, paired tests on the same samples, files written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from planted_models import PlantedEncoder, write_manifest

from polymodal.errors import DataError
from polymodal.tasks import compare, evaluate

NAMES = ["circle", "square", "star", "cross", "heart"]


def _models_and_data(tmp_path: Path) -> tuple[PlantedEncoder, PlantedEncoder, Path]:
    eye = np.eye(5, dtype=np.float32)
    rng = np.random.default_rng(0)
    good, poor, rows = {}, {}, []
    for i in range(60):
        c = i % 5
        name = f"im{i}.png"
        good[name] = eye[c] + 0.05 * rng.random(5).astype(np.float32)  # always right
        poor[name] = eye[c] if i % 3 == 0 else eye[(c + 1) % 5]  # right one time in three
        rows.append({"id": name, "split": "test", "image": name, "label": NAMES[c], "text": f"a drawing of a {NAMES[c]} number {i}"})
    texts = {n: eye[i] for i, n in enumerate(NAMES)}
    a = PlantedEncoder(texts, good)
    a.name = "good"
    b = PlantedEncoder(texts, poor)
    b.name = "poor"
    return a, b, write_manifest(tmp_path / "cmp", rows)


@pytest.mark.slow
def test_compare_two_models_two_tasks(tmp_path: Path) -> None:
    a, b, manifest = _models_and_data(tmp_path)
    out = tmp_path / "board"
    board = compare([a, b], ["zeroshot-classification", "retrieval"], [manifest], out, bootstrap=300)
    assert board.models == ["good", "poor"]
    col = "zeroshot-classification: acc@1"
    assert board.cells["good"][col].value == pytest.approx(1.0)
    assert board.cells["poor"][col].value == pytest.approx(20 / 60)
    assert board.cells["poor"][col].value == evaluate(b, "zeroshot-classification", manifest, bootstrap=0).metrics["acc@1"].value
    assert board.best(col) == "good"
    test = board.paired[col]
    assert test.diff == pytest.approx(1.0 - 20 / 60) and test.p_value < 0.01
    assert any(c.startswith("retrieval: image_to_text/R@") for c in board.columns)
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "leaderboard.html", "report.html"):
        assert (out / name).is_file(), name
    data = json.loads((out / "leaderboard.json").read_text())
    assert data["paired"]["a"] == "good" and col in data["paired"]["tests"]
    assert "Paired differences" in (out / "report.html").read_text()
    assert list((out / "report_figures").glob("*confusion*.png"))


def test_same_model_twice_gets_distinct_names_and_p_one(tmp_path: Path) -> None:
    a, _, manifest = _models_and_data(tmp_path)
    board = compare([a, a], ["zeroshot-classification"], [manifest], None, bootstrap=100)
    assert board.models == ["good", "good (2)"]
    assert all(t.p_value == 1.0 for t in board.paired.values())


def test_datasets_must_pair_with_tasks(tmp_path: Path) -> None:
    a, b, manifest = _models_and_data(tmp_path)
    with pytest.raises(DataError, match="one per task"):
        compare([a, b], ["retrieval", "zeroshot-classification", "linear-probe"], [manifest, manifest], None)


def test_holm_matches_the_textbook_example() -> None:
    from polymodal.tasks.compare import holm

    # sorted 0.005, 0.01, 0.03, 0.04 -> 4x, 3x, 2x, 1x = 0.02, 0.03, 0.06, 0.04 -> kept monotone: 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([]) == []


def test_three_models_get_pairwise_tests_against_the_best_holm_corrected(tmp_path: Path) -> None:
    """compare of 3+ models gave no p-values at all (only two models were tested)."""
    from polymodal.tasks.compare import holm

    good, poor, manifest = _models_and_data(tmp_path)
    eye = np.eye(5, dtype=np.float32)
    # right two times in three: between the two others
    mid = PlantedEncoder(good.text_vectors, {f"im{i}.png": eye[i % 5] if i % 3 else eye[(i + 1) % 5] for i in range(60)})
    mid.name = "mid"
    out = tmp_path / "board"
    board = compare([poor, good, mid], ["zeroshot-classification"], [manifest], out, bootstrap=200)
    col = "zeroshot-classification: acc@1"
    tests = board.versus_best[col]
    assert [(t.best, t.other) for t in tests] == [("good", "poor"), ("good", "mid")]
    assert tests[0].test.diff == pytest.approx(1.0 - 20 / 60) and tests[0].test.p_value < 0.01
    assert [t.p_holm for t in tests] == pytest.approx(holm([t.test.p_value for t in tests]))
    assert all(t.p_holm >= t.test.p_value for t in tests)
    data = json.loads((out / "leaderboard.json").read_text())
    assert data["versus_best"][col][1]["other"] == "mid" and "p_holm" in data["versus_best"][col][1]
    md = (out / "leaderboard.md").read_text()
    assert "Holm" in md and f"| {col} | good | poor |" in md
    assert "p (Holm)" in (out / "leaderboard.html").read_text()
