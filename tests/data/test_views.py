"""``prompt_target_view``: the question and answer of each row joined for a text decoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal.data.views import prompt_target_view
from polymodal.errors import DataError


def test_view_sits_beside_the_manifest_with_the_joined_column(shapes_dir: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.jsonl"  # a copy: the shared folder stays as made
    manifest.write_text((shapes_dir / "manifest.jsonl").read_text())
    out = prompt_target_view(manifest)
    assert out == tmp_path / "manifest-qa.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    view = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in view] == [r["id"] for r in rows]
    assert all(v["qa"] == f"{r['question']} [SEP] {r['answer']}" and v["image"] == r["image"]
               for v, r in zip(view, rows, strict=True))


def test_bad_views_are_refused_naming_the_row_or_the_place(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "question": "why?", "answer": ""}) + "\n")
    with pytest.raises(DataError, match=r"m.jsonl:1: row 'a' has no 'question' or no 'answer'"):
        prompt_target_view(manifest)
    with pytest.raises(DataError, match="must sit beside its manifest"):
        prompt_target_view(manifest, out=tmp_path / "elsewhere" / "v.jsonl")
    with pytest.raises(DataError, match="JSONL manifest"):
        prompt_target_view(tmp_path / "m.csv")
