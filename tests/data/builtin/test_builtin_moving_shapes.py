"""moving-shapes: frame folders whose content really moves in the labelled direction."""

from __future__ import annotations

import numpy as np
from PIL import Image

from polymodal.data.builtin import make_dataset, moving_shapes


def _centroid(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.size == (64, 64) and im.mode == "RGB"
        pixels = np.asarray(im.convert("L"), dtype=float)
    ink = pixels < pixels.max() - 40  # everything clearly darker than the background
    ys, xs = np.nonzero(ink)
    return np.array([xs.mean(), ys.mean()])


def test_clips_move_in_the_labelled_direction(tmp_path, rows_of, schema):
    manifest = make_dataset("moving-shapes", tmp_path, n=24, seed=1)
    rows = rows_of(manifest)
    schema(rows, tmp_path, "video")
    assert {r["label"] for r in rows} == set(moving_shapes.DIRECTIONS)
    for row in rows:
        assert row["label"] == row["direction"]
        assert f"{row['color']} {row['shape']}" in row["text"] and row["direction"] in row["text"]
        frames = sorted((tmp_path / row["video"]).iterdir())
        assert [f.name for f in frames] == [f"frame_{t:03d}.png" for t in range(8)]
        delta = _centroid(frames[-1]) - _centroid(frames[0])
        dx, dy = moving_shapes.DIRECTIONS[row["direction"]]
        assert np.dot(delta, [dx, dy]) > 15, (row["id"], delta)
        assert abs(np.dot(delta, [dy, dx])) < 3  # no sideways drift


def test_deterministic(tmp_path, tree_of):
    a = make_dataset("moving-shapes", tmp_path / "a", n=8, seed=2).parent
    b = make_dataset("moving-shapes", tmp_path / "b", n=8, seed=2).parent
    assert tree_of(a) == tree_of(b)
