import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from data_corpus import jpeg_bytes, rgb_array, save_png
from torch.utils.data import Dataset

from polymodal.config import DataConfig
from polymodal.data.loader import (
    LengthBucketSampler,
    MultimodalDataset,
    build_dataloader,
    build_label_spaces,
    make_collate,
)
from polymodal.errors import DataError


def _to_tensor(images: list[Any]) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.array(im.resize((8, 8)))).permute(2, 0, 1) for im in images])


def test_build_label_spaces() -> None:
    rows = [
        {"label": "dog", "tags": ["b", "a"], "count": 10, "score": 0.5},
        {"label": "cat", "tags": ["c"], "count": 2, "score": 1},
        {"label": "cat", "count": "3"},
    ]
    spaces = build_label_spaces(rows, ["label", "tags", "count", "score"])
    assert spaces == {
        "label": ["cat", "dog"],
        "tags": ["a", "b", "c"],
        "count": ["2", "3", "10"],
        "score": [],
    }


@pytest.fixture()
def image_rows(tmp_path: Path) -> list[dict[str, Any]]:
    rows = []
    for i in range(6):
        save_png(tmp_path / f"{i}.png", rgb_array(12, 16, seed=i))
        rows.append(
            {"id": f"r{i}", "split": "train", "image": f"{i}.png", "text": f"  sample {i} ",
             "label": "ab"[i % 2], "tags": ["x", "y"][: 1 + i % 2], "score": i / 4}
        )  # fmt: skip
    return rows


def test_dataset_and_collate(tmp_path: Path, image_rows: list[dict[str, Any]]) -> None:
    spaces = build_label_spaces(image_rows, ["label", "tags", "score"])
    ds = MultimodalDataset(image_rows, tmp_path, ["image", "text"], spaces)
    sample = ds[1]
    assert sample["id"] == "r1" and sample["text"] == "sample 1" and sample["_row"] is image_rows[1]
    assert sample["image"].mode == "RGB" and np.array_equal(
        np.asarray(sample["image"]), rgb_array(12, 16, seed=1)
    )
    assert sample["label"] == 1 and sample["tags"] == [0, 1] and sample["score"] == 0.25
    collate = make_collate({"image": _to_tensor, "text": lambda xs: {"n": len(xs)}}, spaces)
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["id"] == ["r0", "r1", "r2"]
    assert batch["image"].shape == (3, 3, 8, 8) and batch["text"] == {"n": 3}
    assert batch["label"].dtype == torch.long and batch["label"].tolist() == [0, 1, 0]
    assert batch["tags"].tolist() == [[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]]
    assert batch["score"].dtype == torch.float32 and batch["score"].tolist() == [0.0, 0.25, 0.5]
    raw = make_collate({}, {})([ds[0]])
    assert isinstance(raw["image"], list) and "label" not in raw


def test_dataset_confines_paths_and_names_rows(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    save_png(tmp_path / "outside.png", rgb_array())
    ds = MultimodalDataset([{"id": "x", "image": "../outside.png"}], tmp_path / "root", ["image"], {})
    with pytest.raises(DataError, match=r"row x: image: '../outside.png': path escapes the data root"):
        ds[0]
    ds = MultimodalDataset(
        [{"id": "y", "image": "a.png", "label": "zzz"}], tmp_path, ["image"], {"label": ["a"]}
    )
    save_png(tmp_path / "a.png", rgb_array())
    with pytest.raises(DataError, match="row y: label 'zzz' is not in the label space"):
        ds[0]


def test_corrupt_exif_does_not_kill_the_iterator(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(
        jpeg_bytes(rgb_array(8, 8), exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7fjunk")
    )
    save_png(tmp_path / "ok.png", rgb_array(8, 8))
    rows = [{"id": "a", "image": "bad.jpg"}, {"id": "b", "image": "ok.png"}]
    loader = build_dataloader(
        MultimodalDataset(rows, tmp_path, ["image"], {}), make_collate({"image": _to_tensor}, {}), 1, False, 0
    )
    assert [b["id"] for b in loader] == [["a"], ["b"]]


def _augmented_pixels(
    tmp_path: Path, rows: list[dict[str, Any]], seed: int, workers: int, epochs: int
) -> list[Any]:
    cfg = DataConfig.model_validate({"image": {"augment": True, "size": 8}})
    ds = MultimodalDataset(rows, tmp_path, ["image"], {}, cfg)
    loader = build_dataloader(ds, make_collate({"image": _to_tensor}, {}), 3, True, seed, num_workers=workers)
    out = []
    for _ in range(epochs):
        out.append([(tuple(b["id"]), b["image"].clone()) for b in loader])
    return out


def _same(a: list[Any], b: list[Any]) -> bool:
    return all(
        ia == ib and torch.equal(xa, xb)
        for ea, eb in zip(a, b, strict=True)
        for (ia, xa), (ib, xb) in zip(ea, eb, strict=True)
    )


def test_augmentation_reproducible_and_varies_by_epoch(
    tmp_path: Path, image_rows: list[dict[str, Any]]
) -> None:
    state = torch.get_rng_state()
    run = _augmented_pixels(tmp_path, image_rows, seed=7, workers=0, epochs=2)
    assert torch.equal(state, torch.get_rng_state())  # the caller's global RNG is untouched
    assert _same(run, _augmented_pixels(tmp_path, image_rows, seed=7, workers=0, epochs=2))
    assert not _same(run, _augmented_pixels(tmp_path, image_rows, seed=8, workers=0, epochs=2))
    # epoch 2 shuffles and augments differently: compare the same sample across epochs
    first = {i: x[k] for ids, x in run[0] for k, i in enumerate(ids)}
    second = {i: x[k] for ids, x in run[1] for k, i in enumerate(ids)}
    assert [ids for ids, _ in run[0]] != [ids for ids, _ in run[1]]
    assert sum(not torch.equal(first[i], second[i]) for i in first) >= 4
    # samples are 8x8 crops, not resized originals
    assert run[0][0][1].shape == (3, 3, 8, 8)


@pytest.mark.slow
def test_augmentation_same_with_workers(tmp_path: Path, image_rows: list[dict[str, Any]]) -> None:
    run0 = _augmented_pixels(tmp_path, image_rows, seed=7, workers=0, epochs=2)
    run2 = _augmented_pixels(tmp_path, image_rows, seed=7, workers=2, epochs=2)
    assert _same(run0, run2)


class _RandomPerWorker(Dataset[dict[str, Any]]):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict[str, Any]:
        info = torch.utils.data.get_worker_info()
        return {
            "id": str(i),
            "worker": info.id if info else -1,
            "r": float(torch.rand(1)),
            "np": float(np.random.rand()),
        }


def _worker_draws(seed: int) -> list[list[tuple[int, float, float]]]:
    def collate(xs: list[dict[str, Any]]) -> list[tuple[int, float, float]]:
        return [(x["worker"], x["r"], x["np"]) for x in xs]

    loader = build_dataloader(_RandomPerWorker(), collate, 2, False, seed, num_workers=2)
    return [sum((b for b in loader), []) for _ in range(2)]


@pytest.mark.slow
def test_workers_seeded_from_seed_epoch_and_worker_id() -> None:
    a = _worker_draws(3)
    assert a == _worker_draws(3)  # reproducible
    assert a != _worker_draws(4)
    epoch0, epoch1 = a
    assert {w for w, _, _ in epoch0} == {0, 1}
    by_worker = {w: (r, n) for w, r, n in epoch0}
    assert by_worker[0] != by_worker[1]  # workers differ
    assert [r for _, r, _ in epoch0] != [r for _, r, _ in epoch1]  # epochs differ


def test_length_bucket_sampler(tmp_path: Path) -> None:
    lengths = [(i * 37) % 101 for i in range(100)]
    sampler = LengthBucketSampler(lengths, 10, seed=1, pool=5)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 10
    assert sorted(i for b in batches for i in b) == list(range(100))
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 20  # random batches of 10 from 0..100 spread ~80
    sampler.set_epoch(1)
    assert list(sampler) != batches
    rows = [{"id": str(i), "text": "x" * (n + 1)} for i, n in enumerate(lengths)]
    ds = MultimodalDataset(rows, tmp_path, ["text"], {})
    loader = build_dataloader(
        ds, make_collate({}, {}), 10, True, 0, sampler=LengthBucketSampler(ds.lengths(), 10)
    )
    texts = [b["text"] for b in loader]
    assert len(texts) == 10 and max(len(t) for t in texts[0]) - min(len(t) for t in texts[0]) < 40
    json.dumps([len(t) for t in texts])


def test_data_columns_in_dataset(tmp_path: Path) -> None:
    cfg = DataConfig.model_validate({"columns": {"text": "question"}})
    rows = [{"id": "a", "text": "caption", "question": " what colour? "}]
    assert MultimodalDataset(rows, tmp_path, ["text"], {}, cfg)[0]["text"] == "what colour?"
    with pytest.raises(DataError, match="row a: no text \\(column 'q2'\\)"):
        MultimodalDataset(
            rows, tmp_path, ["text"], {}, DataConfig.model_validate({"columns": {"text": "q2"}})
        )[0]
