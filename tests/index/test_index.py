from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from polymodal.errors import DataError
from polymodal.index import build_index, open_index


class Counting:
    """The real model, counting the items it is asked to encode (to see what a resumed build redoes)."""

    def __init__(self, model: Any, fail_after: int | None = None) -> None:
        self.model, self.items, self.fail_after = model, 0, fail_after

    def encode(self, modality: str, items: list[Any], **kw: Any) -> Any:
        if self.fail_after is not None and self.items >= self.fail_after:
            raise KeyboardInterrupt  # the build is killed here
        self.items += len(items)
        return self.model.encode(modality, items, **kw)


def test_build_writes_index_table_and_info_and_finds_each_image_first(shapes_dir: Path, tiny, tmp_path: Path,
                                                                       find_pickles) -> None:
    out = tmp_path / "idx"
    res = build_index("tiny-dual", shapes_dir / "manifest.jsonl", out, chunk_size=8, model=tiny)
    assert res is not None and res.count == 24 and res.kind == "flat"
    assert sorted(p.name for p in out.iterdir()) == ["index.faiss", "info.json", "items.jsonl"]
    info = json.loads((out / "info.json").read_text())
    assert info["kind"] == "flat" and "exact" in info["kind_reason"] and info["modality"] == "image"
    assert find_pickles(out) == []
    idx = open_index(out)
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert set(rows[0]) == {"id", "path", "caption", "label"}
    manifest = [json.loads(line) for line in (shapes_dir / "manifest.jsonl").read_text().splitlines()]
    for row in manifest[:5]:
        vec = tiny.encode("image", [str(shapes_dir / row["image"])], convert_to_numpy=True)
        hit = idx.search(vec, k=3)[0][0]
        assert hit.id == row["id"] and hit.score == pytest.approx(1.0, abs=1e-4)
        assert hit.caption == row["text"] and hit.label == row["label"]
        assert idx.media_path(row["id"]) == (shapes_dir / row["image"]).resolve()


def test_a_killed_build_resumes_where_it_stopped_and_equals_a_fresh_one(shapes_dir: Path, tiny, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    killed = Counting(tiny, fail_after=16)
    with pytest.raises(KeyboardInterrupt):
        build_index("tiny-dual", shapes_dir / "manifest.jsonl", out, chunk_size=8, model=killed)
    assert sorted(p.name for p in (out / "build").glob("chunk-*.npy")) == ["chunk-000000.npy", "chunk-000001.npy"]
    with pytest.raises(DataError, match="did not finish"):
        open_index(out)
    again = Counting(tiny)
    res = build_index("tiny-dual", shapes_dir / "manifest.jsonl", out, chunk_size=8, model=again)
    assert res is not None and res.resumed_chunks == 2 and again.items == 8  # only the last chunk
    fresh = build_index("tiny-dual", shapes_dir / "manifest.jsonl", tmp_path / "fresh", chunk_size=8, model=tiny)
    assert fresh is not None
    a, b = open_index(out), open_index(tmp_path / "fresh")
    assert [i.id for i in a.items] == [i.id for i in b.items]
    np.testing.assert_allclose(a.faiss.reconstruct_n(0, 24), b.faiss.reconstruct_n(0, 24), atol=1e-6)


def test_other_inputs_or_an_existing_index_need_overwrite(shapes_dir: Path, tiny, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    with pytest.raises(KeyboardInterrupt):
        build_index("tiny-dual", shapes_dir / "manifest.jsonl", out, chunk_size=8, model=Counting(tiny, 8))
    with pytest.raises(DataError, match="other inputs"):
        build_index("tiny-dual", shapes_dir / "manifest.jsonl", out, chunk_size=4, model=tiny)
    build_index("tiny-dual", shapes_dir / "manifest.jsonl", out, chunk_size=4, model=tiny, overwrite=True)
    with pytest.raises(DataError, match="already there"):
        build_index("tiny-dual", shapes_dir / "manifest.jsonl", out, model=tiny)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_above_the_exact_size_an_approximate_index_is_chosen_and_stated(shapes_dir: Path, tiny, tmp_path: Path,
                                                                        kind: str) -> None:
    out = tmp_path / kind
    res = build_index("tiny-dual", shapes_dir / "manifest.jsonl", out, model=tiny, exact_max=10,
                      kind="auto" if kind == "hnsw" else kind)
    assert res is not None and res.kind == kind
    info = json.loads((out / "info.json").read_text())
    assert info["kind"] == kind and info["params"]
    if kind == "hnsw":
        assert "24 items > 10" in info["kind_reason"]
    idx = open_index(out)
    vecs = idx.faiss.reconstruct_n(0, 24)
    assert [h[0].id for h in idx.search(vecs, 1)] == [i.id for i in idx.items]


def test_class_folder_tree_and_text_index(shapes_dir: Path, tiny, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for n, cls in enumerate(["cats", "dogs"] * 3):
        (tree / cls).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (40 * n, 200 - 30 * n, 90)).save(tree / cls / f"{n}.png")
    res = build_index("tiny-dual", tree, tmp_path / "idx", model=tiny)
    assert res is not None and res.count == 6
    idx = open_index(tmp_path / "idx")
    assert {i.label for i in idx.items} == {"cats", "dogs"}
    assert all(idx.media_path(i.id) is not None for i in idx.items)
    text = build_index("tiny-dual", shapes_dir / "manifest.jsonl", tmp_path / "text", modality="text", model=tiny)
    assert text is not None
    tidx = open_index(tmp_path / "text")
    caption = tidx.items[3].caption
    assert tidx.search(tiny.encode("text", [caption], convert_to_numpy=True), 1)[0][0].id == tidx.items[3].id


def test_media_outside_the_root_is_refused(shapes_dir: Path, tiny, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(shapes_dir, data)
    (data / "bad.jsonl").write_text(json.dumps({"id": "x", "image": "../outside.png"}) + "\n")
    with pytest.raises(DataError, match="escapes the data root"):
        build_index("tiny-dual", data / "bad.jsonl", tmp_path / "idx", model=tiny)
