"""``asr``: speech recognition scored by word and character error rate (jiwer), with intervals.

Any model with ``transcribe(paths, decoder=..., beam_width=...) -> list[str]`` runs it: a
polymodal CTC model, or a baseline (``tasks.asr_baselines``). References and hypotheses are
normalised alike before scoring (lower case, punctuation other than the apostrophe dropped,
a lone digit written as its word, since Whisper writes "7" where the transcript says
"seven"), so the score counts recognition errors, not spelling conventions.

The error rates are corpus rates (errors summed over clips / reference words summed), and the
bootstrap resamples clips: jiwer counts each clip's edits once, and a resample's rate is the
sum of its clips' counts, which keeps 1,000 resamples cheap and paired across models.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from polymodal.errors import DataError, ModelError
from polymodal.metrics import DEFAULT_BOOTSTRAP
from polymodal.tasks.data import EvalData
from polymodal.tasks.registry import Task
from polymodal.tasks.result import TaskResult, metrics_with_intervals

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
EXAMPLES = 24  # transcripts kept in the result (the report plays the first 8)


def normalize(text: str) -> str:
    """Lower case, no punctuation but the apostrophe, lone digits as words, single spaces."""
    text = re.sub(r"[^a-z0-9' ]+", " ", str(text).lower().replace("-", " "))
    return " ".join(DIGITS[int(w)] if w.isdigit() and len(w) == 1 else w for w in text.split())


def edit_counts(refs: list[str], hyps: list[str]) -> dict[str, np.ndarray]:
    """Per clip: word and character errors (jiwer) and reference lengths."""
    import jiwer

    out: dict[str, list[int]] = {"word_errors": [], "words": [], "char_errors": [], "chars": []}
    for ref, hyp in zip(refs, hyps, strict=True):
        if not ref:
            raise DataError("an empty reference transcript cannot be scored")
        w = jiwer.process_words(ref, hyp)
        c = jiwer.process_characters(ref, hyp)
        out["word_errors"].append(w.substitutions + w.deletions + w.insertions)
        out["words"].append(len(ref.split()))
        out["char_errors"].append(c.substitutions + c.deletions + c.insertions)
        out["chars"].append(len(ref))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def asr_result(refs: list[str], hyps: list[str], ids: list[str], *, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
               data: str = "", split: str = "", groups: list[str] | None = None,
               details: dict[str, Any] | None = None) -> TaskResult:
    """WER / CER (+ sentence error rate) with bootstrap intervals from normalised transcripts."""
    refs, hyps = [normalize(r) for r in refs], [normalize(h) for h in hyps]
    counts = edit_counts(refs, hyps)
    wrong = np.array([r != h for r, h in zip(refs, hyps, strict=True)], dtype=np.float64)

    def rate(errors: np.ndarray, total: np.ndarray) -> Any:
        return lambda idx: float(errors[idx].sum() / max(total[idx].sum(), 1.0))

    stats = {"wer": rate(counts["word_errors"], counts["words"]), "cer": rate(counts["char_errors"], counts["chars"]),
             "ser": lambda idx: float(wrong[idx].mean())}
    metrics, kept = metrics_with_intervals(stats, ids, n_boot=n_boot, seed=seed)
    info: dict[str, Any] = {**(details or {}), "n": len(ids), "transcripts": [
        {"id": i, "reference": r, "hypothesis": h} for i, r, h in list(zip(ids, refs, hyps, strict=True))[:EXAMPLES]]}
    if groups is not None:
        per: dict[str, float] = {}
        for g in sorted(set(groups)):
            idx = np.array([k for k, x in enumerate(groups) if x == g])
            per[g] = stats["wer"](idx)
        info["wer_by_group"] = per
    return TaskResult("asr", metrics, info, kept, data=data, split=split)


def run_asr(model: Any, data: EvalData, split: str = "test", *, decoder: str = "greedy", beam_width: int = 8,
            text_column: str = "text", group_by: str | None = "voice", n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
            batch_size: int = 16, cache: Any = None, progress: Any = None) -> TaskResult:
    transcribe = getattr(model, "transcribe", None)
    if not callable(transcribe):
        raise ModelError(f"{type(model).__name__} cannot transcribe speech (a CTC model can: model.kind: ctc)")
    rows = [r for r in data.split_rows(split) if r.get("audio") not in (None, "")]
    if not rows:
        raise DataError(f"{data.name}: no rows with audio in split {split!r}")
    missing = [str(r.get("id", i)) for i, r in enumerate(rows) if not str(r.get(text_column) or "").strip()]
    if missing:
        raise DataError(f"{data.name}: rows {missing[:5]} have no transcript in column {text_column!r}")
    paths = [data.item(r, "audio", i) for i, r in enumerate(rows)]
    hyps = list(transcribe(paths, decoder=decoder, beam_width=beam_width, batch_size=batch_size))
    ids = [str(r.get("id", i)) for i, r in enumerate(rows)]
    groups = None
    if group_by:
        found = [(r.get("meta") or {}).get(group_by, r.get(group_by)) for r in rows]
        groups = [str(g) for g in found] if all(g is not None for g in found) else None
    details = {"decoder": decoder if getattr(model, "vocab", None) else getattr(model, "decoding", decoder),
               "paths": {i: str(p) for i, p in list(zip(ids, paths, strict=True))[:EXAMPLES]}}
    if decoder == "beam":
        details["beam_width"] = beam_width
    return asr_result([str(r[text_column]) for r in rows], hyps, ids, n_boot=n_boot, seed=seed, data=data.name,
                      split=split, groups=groups, details=details)


ASR_TASK = Task(
    name="asr",
    description="speech recognition: word / character / sentence error rate (jiwer) of model.transcribe",
    metrics=("wer", "cer", "ser"),
    run=run_asr,
    needs="transcribe",
)
