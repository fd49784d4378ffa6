from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("faiss")


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from polymodal.data.builtin import make_dataset

    return make_dataset("shapes", tmp_path_factory.mktemp("shapes") / "data", n=24).parent


@pytest.fixture(scope="session")
def tiny():  # type: ignore[no-untyped-def]
    import polymodal

    return polymodal.load("tiny-dual")
