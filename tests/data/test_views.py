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


def test_also_keeps_each_row_once_more_with_its_plain_text(shapes_dir: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text((shapes_dir / "manifest.jsonl").read_text())
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    view = [json.loads(line) for line in prompt_target_view(manifest, also="text").read_text().splitlines()]
    assert len(view) == 2 * len(rows)
    plain = {v["id"]: v for v in view if v["id"].endswith("#text")}
    assert all(plain[f"{r['id']}#text"]["qa"] == r["text"] and plain[f"{r['id']}#text"]["split"] == r["split"]
               for r in rows)
    bad = tmp_path / "b.jsonl"
    bad.write_text(json.dumps({"id": "a", "question": "q", "answer": "x", "text": "a [SEP] b"}) + "\n")
    with pytest.raises(DataError, match=r"b.jsonl:1: 'text' already contains \[SEP\]"):
        prompt_target_view(bad, also="text")
