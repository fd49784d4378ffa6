"""Linear probe: separable features are learned, noise is not; C comes from the validation split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from planted_models import PlantedEncoder, write_manifest

from polymodal.tasks import EmbeddingCache, evaluate
from polymodal.tasks.linear_probe import C_GRID

SPLITS = {"train": 20, "val": 6, "test": 20}  # per class


def _data(tmp_path: Path, signal: float, with_val: bool = True) -> tuple[PlantedEncoder, Path]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)).astype(np.float32)
    media, rows = {}, []
    for split, per_class in SPLITS.items():
        if split == "val" and not with_val:
            continue
        for c in range(3):
            for j in range(per_class):
                name = f"{split}-{c}-{j}.png"
                media[name] = signal * centres[c] + rng.normal(scale=0.3, size=8).astype(np.float32)
                rows.append({"id": name, "split": split, "image": name, "label": f"class{c}"})
    model = PlantedEncoder({"class": np.ones(8, dtype=np.float32)}, media, extra_dims=0)
    return model, write_manifest(tmp_path / f"lp-{signal}-{with_val}", rows)


def test_separable_features_probe_well_and_c_from_val(tmp_path: Path) -> None:
    model, manifest = _data(tmp_path, signal=1.0)
    r = evaluate(model, "linear-probe", manifest, bootstrap=200)
    assert r.metrics["accuracy"].value >= 0.95
    assert r.details["C"] in C_GRID and r.details["validation"] == "val"
    assert set(r.details["val_accuracy_by_C"]) == {str(c) for c in C_GRID}
    assert r.details["n"] == 60 and r.details["n_train"] == 78


def test_noise_features_stay_near_chance(tmp_path: Path) -> None:
    model, manifest = _data(tmp_path, signal=0.0)
    r = evaluate(model, "linear-probe", manifest, bootstrap=0)
    assert r.metrics["accuracy"].value < 0.6


def test_without_val_split_uses_part_of_train_and_embeddings_are_cached(tmp_path: Path) -> None:
    model, manifest = _data(tmp_path, signal=1.0, with_val=False)
    cache = EmbeddingCache(tmp_path / "cache")
    r = evaluate(model, "linear-probe", manifest, cache=cache, bootstrap=0)
    assert r.details["validation"] == "20% of train"
    calls = model.calls["image"]
    again = evaluate(model, "linear-probe", manifest, cache=cache, bootstrap=0)
    assert model.calls["image"] == calls  # frozen embeddings computed once
    assert again.metrics["accuracy"].value == pytest.approx(r.metrics["accuracy"].value)
