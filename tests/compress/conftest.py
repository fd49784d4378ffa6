"""Shared fixtures for compression and ONNX export tests: tiny-dual saved once, a tiny shapes set."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from polymodal.models.build import build_preset

    return build_preset("tiny-dual").save_pretrained(tmp_path_factory.mktemp("tiny") / "fp32")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from polymodal.data.builtin import make_dataset

    return make_dataset("shapes", tmp_path_factory.mktemp("shapes") / "data", n=60, seed=0)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "embedding-cache"
    monkeypatch.setenv("POLYMODAL_CACHE", str(cache))
    return cache
