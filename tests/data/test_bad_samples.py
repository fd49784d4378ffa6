"""Bad samples that used to slip past validation (issue 16.5): non-finite audio, a corrupt later
frame of a frame-folder video, and any sample that fails to decode while training: it is
quarantined by id and the batch shrinks (the same way on every pass), or the run fails naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from data_corpus import rgb_array, save_png, write_wav

from polymodal.config import DataConfig
from polymodal.data.audio import load_audio
from polymodal.data.decode import DecodeOptions, decode_value
from polymodal.data.loader import MultimodalDataset, make_collate
from polymodal.data.sources import load_manifest
from polymodal.data.validate import validate_rows
from polymodal.data.video import check_video
from polymodal.errors import DataError


def nan_wav(path: Path, *, inf: bool = False) -> Path:
    """A float WAV that soundfile reads back with NaN (or inf) samples in it."""
    wave = (0.5 * np.sin(np.arange(4000) / 5)).astype(np.float32)
    wave[100] = np.inf if inf else np.nan
    sf.write(str(path), wave, 16000, subtype="FLOAT")
    return path


def frames(folder: Path, n: int = 6, corrupt: int | None = None) -> Path:
    for k in range(n):
        save_png(folder / f"f{k}.png", rgb_array(16, 16, seed=k))
    if corrupt is not None:
        (folder / f"f{corrupt}.png").write_bytes(b"\x89PNG\r\n\x1a\n then garbage")
    return folder


def test_non_finite_audio_is_refused_by_the_loader(tmp_path: Path) -> None:
    for name, inf in (("nan.wav", False), ("inf.wav", True)):
        path = nan_wav(tmp_path / name, inf=inf)
        with pytest.raises(DataError, match=rf"{name}: audio holds 1 non-finite sample \(NaN or inf\)"):
            load_audio(path, 16000)
    # the same rule for a waveform handed over in memory (the runtime's path)
    wave = np.ones(800, np.float32)
    wave[3] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        decode_value("audio", (wave, 16000), DecodeOptions())


def test_validation_flags_the_nan_wav(tmp_path: Path) -> None:
    write_wav(tmp_path / "ok.wav")
    nan_wav(tmp_path / "nan.wav")
    rows = [{"id": "ok", "split": "train", "audio": "ok.wav"}, {"id": "bad", "split": "train", "audio": "nan.wav"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = validate_rows(load_manifest(tmp_path / "m.jsonl"))
    assert [(i.row, i.id, i.field) for i in report.invalid] == [(2, "bad", "audio")]
    assert "non-finite" in report.invalid[0].reason


def test_validation_decodes_every_frame_of_a_frame_folder(tmp_path: Path) -> None:
    frames(tmp_path / "good")
    frames(tmp_path / "bad", corrupt=5)  # the first frame is fine, the last is not
    check_video(tmp_path / "good")
    with pytest.raises(DataError, match="f5.png"):
        check_video(tmp_path / "bad")
    rows = [{"id": "g", "split": "train", "video": "good"}, {"id": "b", "split": "train", "video": "bad"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = validate_rows(load_manifest(tmp_path / "m.jsonl"))
    assert [(i.id, i.field) for i in report.invalid] == [("b", "video")]
    assert "f5.png" in report.invalid[0].reason


# ------------------------------------------------------------------ failures while loading
def _image_rows(root: Path, bad: set[int]) -> list[dict[str, Any]]:
    rows = []
    for i in range(6):
        save_png(root / f"{i}.png", rgb_array(8, 8, seed=i))
        if i in bad:  # passed validation, then broke (or a decoder refuses it only now)
            (root / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n broken since")
        rows.append({"id": f"r{i}", "split": "train", "image": f"{i}.png", "label": "ab"[i % 2]})
    return rows


def Quarantine(path: Path, lines: dict[str, int] | None = None) -> Any:  # noqa: N802 -- imported late
    from polymodal.data.quarantine import Quarantine as Q

    return Q(path, lines)


def _to_tensor(images: list[Any]) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.array(im)).permute(2, 0, 1) for im in images])


def test_a_sample_that_fails_to_load_is_quarantined_and_its_batch_shrinks(tmp_path: Path) -> None:
    rows = _image_rows(tmp_path, bad={2})
    quarantine = Quarantine(tmp_path / "run" / "quarantine.jsonl", lines={f"r{i}": 10 + i for i in range(6)})
    spaces = {"label": ["a", "b"]}
    ds = MultimodalDataset(rows, tmp_path, ["image"], spaces, DataConfig(on_error="skip"), quarantine=quarantine)
    collate = make_collate({"image": _to_tensor}, spaces)
    batch = collate([ds[i] for i in range(4)])
    assert batch["id"] == ["r0", "r1", "r3"]  # r2 dropped, the others in order
    assert batch["image"].shape[0] == 3 and batch["label"].tolist() == [0, 1, 1]
    again = collate([ds[i] for i in range(4)])  # a second pass (a resumed run) shrinks the same way
    assert again["id"] == batch["id"] and torch.equal(again["image"], batch["image"])
    records = [json.loads(x) for x in quarantine.path.read_text().splitlines()]
    assert len(records) == 1  # recorded once, however often it is read
    assert records[0]["id"] == "r2" and records[0]["row"] == 12 and records[0]["field"] == "image"
    assert records[0]["stage"] == "load" and "2.png" in records[0]["reason"]
    assert records[0]["record"]["image"] == "2.png"
    assert quarantine.count() == 1


def test_a_batch_with_no_usable_sample_fails_naming_the_rows(tmp_path: Path) -> None:
    rows = _image_rows(tmp_path, bad={0, 1})
    ds = MultimodalDataset(rows, tmp_path, ["image"], {}, DataConfig(on_error="skip"),
                           quarantine=Quarantine(tmp_path / "q.jsonl"))
    with pytest.raises(DataError, match=r"every sample of a batch failed to load \(r0, r1\)"):
        make_collate({"image": _to_tensor}, {})([ds[0], ds[1]])


def test_on_error_fail_names_the_row_and_the_way_out(tmp_path: Path) -> None:
    rows = _image_rows(tmp_path, bad={2})
    ds = MultimodalDataset(rows, tmp_path, ["image"], {}, DataConfig(),
                           quarantine=Quarantine(tmp_path / "q.jsonl", lines={"r2": 4}))
    with pytest.raises(DataError, match=r"row 4 \(id r2\): image: .*2\.png.*data\.on_error=skip"):
        ds[2]
    assert not (tmp_path / "q.jsonl").exists()


def test_a_corrupt_later_frame_is_quarantined_while_loading(tmp_path: Path) -> None:
    frames(tmp_path / "v0")
    frames(tmp_path / "v1", corrupt=5)
    rows = [{"id": "v0", "video": "v0"}, {"id": "v1", "video": "v1"}]
    cfg = DataConfig(on_error="skip", video={"num_frames": 3})
    ds = MultimodalDataset(rows, tmp_path, ["video"], {}, cfg, quarantine=Quarantine(tmp_path / "q.jsonl"))
    batch = make_collate({}, {})([ds[0], ds[1]])
    assert batch["id"] == ["v0"] and len(batch["video"][0]) == 3
    assert json.loads((tmp_path / "q.jsonl").read_text())["id"] == "v1"


def test_missing_cached_features_record_the_real_reason(tmp_path: Path) -> None:
    rows = _image_rows(tmp_path, bad={1})
    features = {"image": {"r0": torch.zeros(4)}}  # r1's file failed when the cache was filled
    ds = MultimodalDataset(rows[:2], tmp_path, ["image"], {}, DataConfig(on_error="skip"),
                           quarantine=Quarantine(tmp_path / "q.jsonl"), features=features)
    assert "_failed" in ds[1]
    assert "1.png" in json.loads((tmp_path / "q.jsonl").read_text())["reason"]


def test_validation_rewrite_keeps_failures_found_while_loading(tmp_path: Path) -> None:
    from polymodal.data.validate import RowIssue, ValidationReport, apply_policy

    quarantine = Quarantine(tmp_path / "q.jsonl")
    quarantine.add("r9", "image", "9.png: cannot open image", {"id": "r9"})
    report = ValidationReport(rows=3, valid=[{"id": "a"}, {"id": "r9"}], invalid=[RowIssue(2, "b", "id", "x")],
                              invalid_records=[{"id": "b"}])
    apply_policy(report, "skip", quarantine.path)  # a resumed run validates again
    ids = [json.loads(x)["id"] for x in quarantine.path.read_text().splitlines()]
    assert ids == ["b", "r9"] and quarantine.count() == 2
