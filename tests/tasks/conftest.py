"""Fixtures for task tests: every test gets a private embedding cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # never touch the user's ~/.cache during tests
    cache = tmp_path / "embedding-cache"
    monkeypatch.setenv("POLYMODAL_CACHE", str(cache))
    return cache
