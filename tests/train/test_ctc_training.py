"""Training a CTC model end to end on espeak-ng clips, with the bad rows speech recognition meets:
corrupt and silent audio, a transcript with characters outside the vocabulary, a clip shorter
than its transcript needs. Each is named in the quarantine file; training goes on, finite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import soundfile as sf

from polymodal.config import config_from_dict
from polymodal.train import train


def _manifest(phrases_dir: Path, out: Path) -> Path:
    rows = [json.loads(x) for x in (phrases_dir / "manifest.jsonl").read_text().splitlines()]
    rows = [{**r, "audio": str(phrases_dir / r["audio"])} for r in rows if r["split"] != "test"]
    good = rows[0]
    out.mkdir()
    sf.write(out / "silent.wav", np.zeros(16000, np.float32), 16000)
    (out / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really a wav file")
    sf.write(out / "short.wav", (np.random.default_rng(0).standard_normal(1600) * 0.1).astype(np.float32), 16000)
    bad = [
        {**good, "id": "silent", "audio": str(out / "silent.wav")},
        {**good, "id": "corrupt", "audio": str(out / "corrupt.wav")},
        {**good, "id": "accent", "text": "café noir"},
        {**good, "id": "short", "audio": str(out / "short.wav"), "text": "seven red circle and a blue square"},
    ]
    path = out / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + bad))
    return path


def test_ctc_training_quarantines_bad_rows_and_stays_finite(phrases_dir: Path, tmp_path: Path) -> None:
    manifest = _manifest(phrases_dir, tmp_path / "data")
    cfg = config_from_dict({
        "model": {"preset": None, "kind": "ctc",
                  "towers": [{"modality": "audio", "source": "builtin-audio",
                              "options": {"n_mels": 16, "depth": 2, "width": 4, "freq_pool": "flatten"}}],
                  "heads": {"text": {"kind": "ctc", "hidden_dim": 32}}},
        "data": {"manifest": str(manifest), "batch_size": 4, "on_error": "skip", "root": "/",
                 "audio": {"sample_rate": 16000}},
        "objective": {"kind": "ctc"},
        "train": {"epochs": 1, "max_steps": 1, "lr": 1e-3, "progress": False, "log_every": 1,
                  "mixed_precision": "no", "early_stopping_metric": "val/cer", "early_stopping_mode": "min"},
    })
    result = train(cfg, tmp_path / "run")
    run = tmp_path / "run"
    reasons = {q["id"]: (q["field"], q["reason"]) for q in map(json.loads, (run / "quarantine.jsonl").read_text().splitlines())}
    assert set(reasons) == {"silent", "corrupt", "accent", "short"}
    assert "silent" in reasons["silent"][1]
    assert "cannot decode" in reasons["corrupt"][1]
    assert reasons["accent"] == ("text", "transcript has characters outside the model's vocabulary: ['é']")
    assert reasons["short"][0] == "audio" and "clip too short for its transcript" in reasons["short"][1]
    events = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in events if e["event"] == "train"]
    assert len(losses) == 1 and all(math.isfinite(x) for x in losses)
    assert not [e for e in events if e["event"] == "nan"]
    assert math.isfinite(result.final_metrics["val/cer"])
    import polymodal
    from polymodal.models.ctc import CTCModel

    assert isinstance(polymodal.load(str(run / "model")), CTCModel)
