"""Fixtures for the built-in dataset tests: manifest reading and byte-level comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def read_rows(manifest: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path -> content."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def check_common_schema(rows: list[dict[str, Any]], root: Path, modality: str) -> None:
    """What every built-in manifest promises: unique ids, known splits, labels, files inside root."""
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    for row in rows:
        assert isinstance(row["label"], str) and row["label"]
        value = row[modality]
        assert isinstance(value, str) and value
        if modality != "text":
            assert not Path(value).is_absolute() and ".." not in Path(value).parts
            assert (root / value).exists(), value


@pytest.fixture
def rows_of():
    return read_rows


@pytest.fixture
def tree_of():
    return tree_bytes


@pytest.fixture
def schema():
    return check_common_schema
