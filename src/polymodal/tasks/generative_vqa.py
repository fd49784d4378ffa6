"""``generative-vqa``: a captioning model answers each row's question as text.

The question is the decoder's prompt; the generated continuation, lower-cased and stripped of
punctuation, must equal the row's answer. Accuracy (overall and per ``question_type``) carries a
bootstrap interval and per-sample statistics, so ``compare`` can test it against the
classification-head fusion model's ``classification`` accuracy on the same rows.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from polymodal.errors import DataError
from polymodal.metrics import DEFAULT_BOOTSTRAP, bootstrap_metric
from polymodal.tasks.captioning import generation_options
from polymodal.tasks.data import EvalData
from polymodal.tasks.registry import Task
from polymodal.tasks.result import SampleStatistic, TaskResult

_PUNCT = re.compile(r"[^\w\s]")


def normalize_answer(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", str(text).lower()).split())


def run_generative_vqa(model: Any, data: EvalData, split: str = "test", *, question_column: str = "question",
                       answer_column: str = "answer", n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                       batch_size: int = 32, limit: int | None = None, cache: Any = None, progress: Any = None,
                       **opts: Any) -> TaskResult:
    rows = [r for r in data.split_rows(split)
            if r.get("image") not in (None, "") and r.get(question_column) and r.get(answer_column) not in (None, "")]
    if not rows:
        raise DataError(f"{data.name}: no rows with an image, a {question_column!r} and an {answer_column!r} "
                        f"in split {split!r}")
    rows = rows[:limit] if limit else rows
    images = [data.item(r, "image", i) for i, r in enumerate(rows)]
    answers = model.generate(images, [str(r[question_column]) for r in rows], batch_size=batch_size, seed=seed,
                             **generation_options(opts))
    truth = [normalize_answer(r[answer_column]) for r in rows]
    hits = np.array([normalize_answer(a) == t for a, t in zip(answers, truth, strict=True)], dtype=np.float64)
    ids = [str(r.get("id", i)) for i, r in enumerate(rows)]

    def accuracy(idx: np.ndarray) -> float:
        return float(hits[idx].mean())

    metrics = {"accuracy": bootstrap_metric(accuracy, len(ids), n_boot=n_boot, seed=seed)}
    stats = {"accuracy": SampleStatistic(ids, accuracy)}
    kinds = [str(r.get("question_type", "")) for r in rows]
    for kind in sorted(set(kinds) - {""}):
        mask = np.array([k == kind for k in kinds], dtype=np.float64)

        def by_kind(idx: np.ndarray, mask: np.ndarray = mask) -> float:
            n = mask[idx].sum()
            return float((hits[idx] * mask[idx]).sum() / n) if n else float("nan")

        metrics[f"{kind}/accuracy"] = bootstrap_metric(by_kind, len(ids), n_boot=n_boot, seed=seed)
        stats[f"{kind}/accuracy"] = SampleStatistic(ids, by_kind)
    majority, count = Counter(truth).most_common(1)[0]
    details = {
        "generation": generation_options(opts) or {"strategy": "greedy"},
        "majority_answer": majority, "majority_accuracy": count / len(truth),
        "outside_answer_set": int(sum(normalize_answer(a) not in set(truth) for a in answers)),
        "generated_examples": [{"id": ids[i], "image": str(rows[i]["image"]), "path": images[i],
                                "prompt": rows[i][question_column], "generated": answers[i],
                                "reference": rows[i][answer_column]} for i in range(min(12, len(ids)))],
    }
    return TaskResult("generative-vqa", metrics, details, stats, data=data.name, split=split)


GENERATIVE_VQA_TASK = Task(
    name="generative-vqa",
    description="a captioning model answers each row's question as text; exact-match accuracy",
    metrics=("accuracy", "<question_type>/accuracy"),
    run=run_generative_vqa,
    needs="generate",
)
