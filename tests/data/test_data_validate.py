import json
import resource
from pathlib import Path

import pytest
from data_corpus import rgb_array, save_png, write_mixed_manifest

from polymodal.config import DataConfig
from polymodal.data import validate as validate_mod
from polymodal.data.sources import load_manifest
from polymodal.data.validate import apply_policy, find_label_sets, resolve_inside, validate_rows
from polymodal.errors import DataError


@pytest.fixture()
def mixed(tmp_path: Path) -> tuple[Path, list[tuple[int, str, str | None, str]]]:
    return write_mixed_manifest(tmp_path / "data")


def _check_report(report, expected) -> None:  # type: ignore[no-untyped-def]
    bad = [(line, rid, field, reason) for line, rid, field, reason in expected if field is not None]
    assert report.rows == len(expected)
    assert len(report.valid) == len(expected) - len(bad)
    got = [(i.row, i.id, i.field) for i in report.invalid]
    assert got == [(line, rid, field) for line, rid, field, _ in bad]
    for issue, (_, rid, _, reason) in zip(report.invalid, bad, strict=True):
        assert reason in issue.reason, (rid, issue.reason)


def test_mixed_manifest_lists_exactly_the_bad_rows(mixed) -> None:  # type: ignore[no-untyped-def]
    path, expected = mixed
    manifest = load_manifest(path)
    report = validate_rows(manifest, label_sets=find_label_sets(manifest))
    _check_report(report, expected)
    assert {r["id"] for r in report.valid} == {"good-png", "good-jpg", "good-wav"}
    data = report.to_json()
    assert set(data) == {"rows", "valid", "invalid"}
    assert set(data["invalid"][0]) == {"row", "id", "field", "reason"}
    json.dumps(data)  # serialisable, including the invalid UTF-8 row


def test_process_pool_gives_the_same_report(mixed, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    path, expected = mixed
    monkeypatch.setattr(validate_mod, "POOL_THRESHOLD", 1)
    manifest = load_manifest(path)
    report = validate_rows(manifest, label_sets=find_label_sets(manifest), workers=2)
    _check_report(report, expected)


def test_bomb_is_refused_without_allocating(tmp_path: Path) -> None:
    from data_corpus import bomb_png

    (tmp_path / "b.png").write_bytes(bomb_png())
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "a", "split": "train", "image": "b.png"}) + "\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = validate_rows(load_manifest(tmp_path / "m.jsonl"), workers=1)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert report.invalid[0].field == "image" and "decompression bomb" in report.invalid[0].reason
    assert (after - before) < 100_000  # KiB; decoding 30000x30000 would take ~900 MB


def test_per_call_pixel_limit_from_config(tmp_path: Path) -> None:
    save_png(tmp_path / "big.png", rgb_array(100, 100))
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "a", "split": "train", "image": "big.png"}) + "\n")
    manifest = load_manifest(tmp_path / "m.jsonl")
    assert validate_rows(manifest).ok
    cfg = DataConfig.model_validate({"image": {"max_pixels": 5000}})
    report = validate_rows(manifest, options=cfg)
    assert "100x100 = 10,000 pixels, over the limit of 5,000" in report.invalid[0].reason
    from PIL import Image

    assert Image.MAX_IMAGE_PIXELS == 89478485  # the global guard is untouched


def test_required_modality_and_custom_splits(tmp_path: Path) -> None:
    save_png(tmp_path / "c.png", rgb_array())
    rows = [{"id": "a", "split": "dev", "text": "x"}, {"id": "b", "split": "train", "text": "y"},
            {"id": "c", "split": "dev", "image": "c.png"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = load_manifest(tmp_path / "m.jsonl")
    report = validate_rows(manifest, modalities=["image"], splits=["dev"])
    assert [(i.id, i.field, i.reason) for i in report.invalid] == [
        ("a", "image", "missing image"),
        ("b", "split", "unknown split 'train' (expected one of dev)"),
    ]
    # a column no row has is one error for the manifest, not one line per row (tests/data/test_columns.py)
    manifest.rows = manifest.rows[:2]
    with pytest.raises(DataError, match="no column 'image' for image"):
        validate_rows(manifest, modalities=["image"], splits=["dev"])
    with pytest.raises(DataError, match="unknown modality 'sound'"):
        validate_rows(manifest, modalities=["sound"])


def test_policy_fail_lists_rows_and_skip_quarantines(mixed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, expected = mixed
    manifest = load_manifest(path)
    report = validate_rows(manifest, label_sets=find_label_sets(manifest), decode=True)
    with pytest.raises(DataError) as err:
        apply_policy(report, "fail")
    message = str(err.value)
    assert "16 of 19 rows are invalid" in message
    assert "row 4 (id truncated-jpeg): image: files/truncated.jpg: truncated image" in message
    out = tmp_path / "q" / "quarantine.jsonl"
    kept = apply_policy(report, "skip", out)
    assert [r["id"] for r in kept] == ["good-png", "good-jpg", "good-wav"]
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 16 == report.quarantined
    assert lines[0]["id"] == "truncated-jpeg" and lines[0]["record"]["image"] == "files/truncated.jpg"
    assert "16 quarantined" in report.summary()
    with pytest.raises(DataError, match="on_error"):
        apply_policy(report, "ignore")


def test_decode_false_skips_file_contents(mixed) -> None:  # type: ignore[no-untyped-def]
    path, _ = mixed
    report = validate_rows(load_manifest(path), decode=False)
    reasons = {i.id: i.reason for i in report.invalid}
    assert "truncated-jpeg" not in reasons  # exists, only decoding would tell
    assert reasons["missing-path"] == "files/nope.png: file not found"


def test_resolve_inside_allows_inner_dotdot(tmp_path: Path) -> None:
    save_png(tmp_path / "a" / "x.png", rgb_array())
    assert resolve_inside(tmp_path, "a/../a/x.png") == (tmp_path / "a" / "x.png").resolve()
    for bad, reason in [("a/../../x.png", "escapes"), ("/etc/passwd", "absolute"), ("C:\\x.png", "absolute")]:
        with pytest.raises(DataError, match=reason):
            resolve_inside(tmp_path, bad)


def test_data_columns_maps_a_modality_to_another_column(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "split": "train", "text": "caption", "question": "what?", "label": "x"},
        {"id": "b", "split": "train", "text": "caption", "question": " ", "label": "x"},
    ]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = load_manifest(tmp_path / "m.jsonl")
    assert manifest.label_columns == ["label", "question"]
    cfg = DataConfig.model_validate({"columns": {"text": "question"}})
    report = validate_rows(manifest, options=cfg)
    # "question" is read as text (so b's blank question is empty text), not as a label
    assert [(i.id, i.field, i.reason) for i in report.invalid] == [("b", "question", "empty text")]


def test_pool_works_from_an_unguarded_script(mixed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # spawn/forkserver would re-run this script's top level in every worker
    import subprocess
    import sys

    path, expected = mixed
    script = tmp_path / "user_script.py"
    script.write_text(
        "from polymodal.data import validate as v\n"
        "from polymodal.data.sources import load_manifest\n"
        "v.POOL_THRESHOLD = 1\n"
        f"r = v.validate_rows(load_manifest({str(path)!r}), workers=2)\n"
        "print('invalid', len(r.invalid))\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # no label set given here, so the unknown-label row is valid
    assert proc.stdout.strip() == f"invalid {sum(1 for e in expected if e[2] is not None) - 1}"


def test_label_spaces_from_the_loader_work_as_label_sets(tmp_path: Path) -> None:
    from polymodal.data.loader import build_label_spaces

    rows = [
        {"id": "a", "split": "train", "text": "x", "label": "cat", "score": 0.5},
        {"id": "b", "split": "val", "text": "y", "label": "dog", "score": 1.5},
        {"id": "c", "split": "val", "text": "z", "label": "dog"},
    ]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = load_manifest(tmp_path / "m.jsonl")
    spaces = build_label_spaces(manifest.rows, ["label", "score"])
    assert spaces["score"] == []  # regression: no classes, so no class check either
    report = validate_rows(manifest, label_sets=spaces)
    assert [(i.id, i.field, i.reason) for i in report.invalid] == [
        ("c", "score", "missing label column 'score'")
    ]
    report = validate_rows(manifest, label_sets={"label": ["cat"]})
    assert [(i.id, i.reason) for i in report.invalid][0] == (
        "b",
        "unknown label 'dog' (not in the label set)",
    )


def test_empty_text_is_invalid_even_where_text_is_optional(tmp_path: Path) -> None:
    save_png(tmp_path / "a.png", rgb_array())
    rows = [{"id": "a", "split": "train", "image": "a.png", "text": ""},
            {"id": "b", "split": "train", "image": "a.png", "text": "   "},
            {"id": "c", "split": "train", "image": "a.png"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = validate_rows(load_manifest(tmp_path / "m.jsonl"))  # what `data validate` runs
    assert [(i.id, i.field, i.reason) for i in report.invalid] == [("a", "text", "empty text"),
                                                                   ("b", "text", "empty text")]
