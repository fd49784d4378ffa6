"""What `train` does with bad data, end to end on tiny random-init presets (issues 16.5, 16.6):
a NaN WAV and a corrupt later frame are quarantined instead of poisoning steps or killing the
run; a file that fails only while loading is quarantined by id in every modality; a row with
an unknown split is reported; labels.json is honoured; the quarantined count is reported."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from data_corpus import rgb_array, save_png, write_wav
from test_bad_samples import frames, nan_wav

from polymodal.config import config_from_dict
from polymodal.errors import DataError
from polymodal.train import train

PRESETS = {"image": "tiny-dual", "audio": "tiny-audio-text", "video": "tiny-video-text"}


def _write(root: Path, rows: list[dict[str, Any]], name: str = "manifest.jsonl") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / name


def _media(root: Path, modality: str, i: int) -> str:
    if modality == "image":
        save_png(root / f"{i}.png", rgb_array(16, 16, seed=i))
        return f"{i}.png"
    if modality == "audio":
        write_wav(root / f"{i}.wav", seconds=0.2, freq=200 + 40 * i)
        return f"{i}.wav"
    frames(root / f"clip{i}", n=4)
    return f"clip{i}"


def _rows(root: Path, modality: str, n: int = 14) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "split": "train" if i < n - 2 else "val", modality: _media(root, modality, i),
             "text": f"sample number {i}", "label": "ab"[i % 2]} for i in range(n)]


def _cfg(manifest: Path, modality: str = "image", **data: Any) -> Any:
    return config_from_dict({
        "model": {"preset": PRESETS[modality], "kind": "dual"},
        "data": {"manifest": str(manifest), "batch_size": 4, "image": {"size": 32},
                 "video": {"num_frames": 2}, **data},
        "objective": {"kind": "contrastive"},
        "train": {"epochs": 2, "lr": 1e-3, "progress": False, "log_every": 1, "mixed_precision": "no"},
    })


def _events(run: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if e["event"] == kind]


def _quarantined(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "quarantine.jsonl").read_text().splitlines()]


def test_a_nan_wav_is_quarantined_not_trained_into_nan_steps(tmp_path: Path) -> None:
    rows = _rows(tmp_path, "audio")
    nan_wav(tmp_path / "3.wav")
    result = train(_cfg(_write(tmp_path, rows), "audio", on_error="skip"), tmp_path / "run")
    assert _events(tmp_path / "run", "nan") == []  # before: 3 of 6 steps skipped as NaN
    [record] = _quarantined(tmp_path / "run")
    assert record["id"] == "r3" and record["stage"] == "validate" and "non-finite" in record["reason"]
    assert result.quarantined == 1
    assert _events(tmp_path / "run", "data")[-1]["quarantined"] == 1


def test_a_corrupt_later_frame_is_quarantined_and_the_run_goes_on(tmp_path: Path) -> None:
    rows = _rows(tmp_path, "video")
    frames(tmp_path / "clip4", n=4, corrupt=3)  # frame 0 decodes; frame 3 does not
    result = train(_cfg(_write(tmp_path, rows), "video", on_error="skip"), tmp_path / "run")
    assert result.steps > 0 and (tmp_path / "run" / "model").is_dir()
    [record] = _quarantined(tmp_path / "run")
    assert record["id"] == "r4" and "clip4: frame f3.png" in record["reason"]


def _unvalidated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation that does not decode files: what a file that breaks after validation looks like."""
    from polymodal.data import validate

    monkeypatch.setattr(validate, "validate_rows", functools.partial(validate.validate_rows, decode=False))


def _break(root: Path, modality: str, i: int) -> None:
    target = {"image": root / f"{i}.png", "audio": root / f"{i}.wav", "video": root / f"clip{i}" / "f3.png"}
    target[modality].write_bytes(b"RIFF\x00\x00\x00\x00 not a real file")


@pytest.mark.parametrize("modality", ["image", "audio", "video"])
def test_a_sample_that_fails_while_loading_is_quarantined_by_id(
    modality: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(tmp_path, modality)
    _break(tmp_path, modality, 2)
    _unvalidated(monkeypatch)
    result = train(_cfg(_write(tmp_path, rows), modality, on_error="skip"), tmp_path / "run")
    assert result.steps == 6  # 12 train rows, batches of 4: three steps per epoch, the run went on
    [record] = _quarantined(tmp_path / "run")  # met in both epochs, recorded once
    assert record["id"] == "r2" and record["row"] == 3 and record["stage"] == "load"
    assert record["field"] == modality and record["record"]["id"] == "r2"
    assert result.quarantined == 1 and _events(tmp_path / "run", "data")[-1]["quarantined"] == 1
    # the batch that held r2 trained on one sample fewer, in each of the 2 epochs
    assert _events(tmp_path / "run", "train")[-1]["samples"] == 2 * 12 - 2


def test_under_fail_a_loading_failure_stops_the_run_naming_the_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(tmp_path, "image")
    _break(tmp_path, "image", 2)
    _unvalidated(monkeypatch)
    with pytest.raises(DataError, match=r"row 3 \(id r2\): image: 2\.png: .*data\.on_error=skip"):
        train(_cfg(_write(tmp_path, rows), "image"), tmp_path / "run")


def test_a_row_with_an_unknown_split_is_reported_not_dropped(tmp_path: Path) -> None:
    rows = _rows(tmp_path, "image")
    rows[5]["split"] = "training"
    manifest = _write(tmp_path, rows)
    with pytest.raises(DataError, match=r"row 6 \(id r5\): split: unknown split 'training'"):
        train(_cfg(manifest), tmp_path / "run")
    result = train(_cfg(manifest, on_error="skip"), tmp_path / "run2")
    [record] = _quarantined(tmp_path / "run2")
    assert record["id"] == "r5" and result.quarantined == 1


def _classifier(manifest: Path, **data: Any) -> Any:
    return config_from_dict({
        "model": {"preset": "tiny-dual", "kind": "classifier", "inputs": ["text"],
                  "heads": {"label": {"kind": "classification"}}},
        "data": {"manifest": str(manifest), "batch_size": 4, **data},
        "objective": {"kind": "classification"},
        "train": {"epochs": 1, "lr": 1e-3, "progress": False, "mixed_precision": "no"},
    })


def test_train_honours_labels_json(tmp_path: Path) -> None:
    from polymodal.train.run import build_parts

    rows = [{"id": f"t{i}", "split": "train" if i < 8 else "val", "text": f"text {i}", "label": "ab"[i % 2]}
            for i in range(10)]
    manifest = _write(tmp_path, rows)
    (tmp_path / "labels.json").write_text(json.dumps({"label": ["c", "b", "a"]}))
    # a class absent from the rows keeps its place in the label space
    assert build_parts(_classifier(manifest), tmp_path / "run").label_spaces["label"] == ["a", "b", "c"]
    rows[3]["label"] = "zebra"  # before: trained on as a fourth class
    with pytest.raises(DataError, match=r"row 4 \(id t3\): label: unknown label 'zebra' \(not in the label set\)"):
        train(_classifier(_write(tmp_path, rows)), tmp_path / "run2")


def test_a_label_column_under_another_name_is_one_error_then_maps(tmp_path: Path) -> None:
    rows = [{"id": f"t{i}", "split": "train" if i < 8 else "val", "text": f"text {i}",
             "topic": ["sport", "food"][i % 2]} for i in range(10)]
    manifest = _write(tmp_path, rows, "topics.jsonl")
    with pytest.raises(DataError) as err:
        train(_classifier(manifest), tmp_path / "run")
    message = str(err.value)
    assert "no label column 'label'" in message and "data.columns.label=topic" in message
    assert "the manifest's columns are: id, split, text, topic" in message
    assert "on_error=skip" not in message and message.count("\n") < 6  # one error, not a line per row
    result = train(_classifier(manifest, columns={"label": "topic"}), tmp_path / "run2")
    assert result.steps == 2
    import polymodal

    model = polymodal.load(str(tmp_path / "run2" / "model"))
    assert list(model.heads["label"].labels) == ["food", "sport"]


def test_an_image_column_under_another_name_is_one_error_then_maps(tmp_path: Path) -> None:
    rows = _rows(tmp_path, "image")
    for row in rows:
        row["filepath"] = row.pop("image")
    manifest = _write(tmp_path, rows)
    with pytest.raises(DataError, match=r"no column 'image' for image: map yours with data\.columns\.image=filepath"):
        train(_cfg(manifest), tmp_path / "run")
    result = train(_cfg(manifest, columns={"image": "filepath"}), tmp_path / "run2")
    assert result.steps == 6


def test_quarantine_count_is_zero_and_logged_when_nothing_is_wrong(tmp_path: Path) -> None:
    result = train(_cfg(_write(tmp_path, _rows(tmp_path, "image"))), tmp_path / "run")
    assert result.quarantined == 0 and _events(tmp_path / "run", "data")[-1]["quarantined"] == 0
    assert not (tmp_path / "run" / "quarantine.jsonl").exists()
    assert result.steps == 6


# ------------------------------------------------------------------ exact resume with a failing sample
_UNVALIDATED_CLI = (
    "import functools, sys\n"
    "from polymodal.data import validate\n"
    "validate.validate_rows = functools.partial(validate.validate_rows, decode=False)\n"
    "from polymodal.cli.main import app\n"
    "app(sys.argv[1:], prog_name='polymodal')\n"
)


def _cli_run(manifest: Path, out: Path, *extra: str, fault: str | None = None) -> Any:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "POLYMODAL_FAULT"}
    env["OMP_NUM_THREADS"] = "1"  # same reduction order in every run
    if fault:
        env["POLYMODAL_FAULT"] = fault
    sets = [f"--set=data.manifest={manifest}", "--set=train.checkpoint_every=2", "--set=train.keep_last=5"]
    config = Path(__file__).parent / "_resume.yaml"
    return subprocess.run([sys.executable, "-c", _UNVALIDATED_CLI, "train", str(config), *sets, "--out", str(out),
                           *extra], env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_run_killed_and_resumed_with_a_failing_sample_ends_bitwise_equal(tmp_path: Path) -> None:
    """The batch that holds the broken row shrinks the same way after a SIGKILL and --resume."""
    import signal

    from safetensors.torch import load_file

    from polymodal.train.order import epoch_permutation

    # r2 (row index 2) sits in step 5 (epoch 2, second batch of 4): the step the resumed run replays
    assert epoch_permutation(12, 0, 1).index(2) // 4 == 1
    rows = _rows(tmp_path / "data", "image")
    _break(tmp_path / "data", "image", 2)
    manifest = _write(tmp_path / "data", rows)
    ref = _cli_run(manifest, tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    killed = _cli_run(manifest, tmp_path / "run", fault="5:0")  # mid step 5, last checkpoint at step 4
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = _cli_run(manifest, tmp_path / "run", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_file(str(tmp_path / "ref" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    assert [r["id"] for r in _quarantined(tmp_path / "run")] == ["r2"]
    samples = [e["samples"] for e in _events(tmp_path / "run", "train")]
    assert samples == [e["samples"] for e in _events(tmp_path / "ref", "train")] and samples[-1] == 22
