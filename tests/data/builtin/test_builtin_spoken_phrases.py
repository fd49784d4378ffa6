"""spoken-phrases: espeak-ng phrases whose test voices (and a tenth of the phrases) are never trained on."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf

from polymodal.data.builtin import spoken_phrases
from polymodal.data.sources import load_manifest
from polymodal.data.validate import find_label_sets, validate_rows


def test_made_set_validates_and_holds_out_voices(phrases_dir: Path) -> None:
    manifest = load_manifest(phrases_dir / "manifest.jsonl")
    report = validate_rows(manifest, label_sets=find_label_sets(manifest), decode=True)
    assert report.invalid == [] and report.rows == 10
    rows = [json.loads(x) for x in (phrases_dir / "manifest.jsonl").read_text().splitlines()]
    assert [sum(r["split"] == s for r in rows) for s in ("train", "val", "test")] == [7, 1, 2]
    for r in rows:
        voice = r["meta"]["voice"]
        assert (voice in spoken_phrases.TEST_VOICES) == (r["split"] == "test")
        assert r["meta"]["phrase_seen"] or r["split"] == "test"
        assert r["label"] == r["text"].split()[-1]
        assert sf.info(str(phrases_dir / r["audio"])).samplerate == spoken_phrases.SAMPLE_RATE


def test_plan_keeps_unseen_phrases_out_of_training() -> None:
    rows = spoken_phrases.plan_rows(600, seed=3)
    unseen = {r["text"] for r in rows if not r["meta"]["phrase_seen"]}
    trained = {r["text"] for r in rows if r["split"] != "test"}
    assert unseen and not unseen & trained
    assert {r["meta"]["voice"] for r in rows if r["split"] == "test"} <= set(spoken_phrases.TEST_VOICES)
    assert len({r["id"] for r in rows}) == 600
    assert rows == spoken_phrases.plan_rows(600, seed=3)
